// Reads [[range, version], ...] from the file named on the command line and prints, for each
// pair, semver.satisfies(version, range) — or null when node-semver rejects the range.
const fs = require('fs');
const semver = require('semver');
const pairs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = pairs.map(([range, version]) => {
  if (semver.validRange(range) === null) return null;
  return semver.satisfies(version, range);
});
process.stdout.write(JSON.stringify(out));
