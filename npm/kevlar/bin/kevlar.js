#!/usr/bin/env node
// Runs Kevlar's native binary, from the per-platform package npm installed beside this one
// (`@kevlar/linux-x64`, …), with the same arguments, standard streams and exit status. Signals are
// passed on, so that `npx kevlar run -- node server.js` stops and reloads like `kevlar run` does.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function binary() {
  if (process.env.KEVLAR_BINARY) return process.env.KEVLAR_BINARY;
  const platform = `${process.platform}-${process.arch}`;
  const pkg = `@kevlar/${platform}`;
  let file;
  try {
    file = require.resolve(`${pkg}/bin/kevlar`);
  } catch {
    const known = Object.keys(require('../package.json').optionalDependencies || {});
    console.error(
      `kevlar: no native binary for ${platform}: the optional dependency ${pkg} is not installed.\n` +
        `  Platforms this release has: ${known.join(', ') || 'none'}.\n` +
        '  If yours is one of them, install again without --omit=optional (or --no-optional);\n' +
        '  otherwise build Kevlar with cargo and set KEVLAR_BINARY to its path.',
    );
    process.exit(1);
  }
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    // Some package managers drop the executable bit on extraction.
    try {
      fs.chmodSync(file, 0o755);
    } catch {}
  }
  return file;
}

const file = binary();
const child = spawn(file, process.argv.slice(2), { stdio: 'inherit' });
for (const signal of SIGNALS) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}
child.on('error', (e) => {
  console.error(`kevlar: cannot run ${file}: ${e.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so that whoever started us sees what happened.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code === null ? 1 : code);
  }
});
