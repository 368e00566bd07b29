// Grades a site with the MDN HTTP Observatory's own retriever, tests and grader, on given ports:
//   NODE_EXTRA_CA_CERTS=ca.pem node grade.mjs HOST HTTP_PORT HTTPS_PORT
// Prints one JSON object: { grade, score, tests: { name: { pass, result, scoreModifier } } }.
// The scoring mirrors the package's scan(), which does not pass ports to its retriever.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

// The package downloads Chromium's HSTS preload list at install time; that needs the internet,
// which the tests do not have. An empty list is correct for the hosts graded here (localhost).
const pkgDir = path.dirname(createRequire(import.meta.url).resolve("@mdn/mdn-http-observatory/package.json"));
const preload = path.join(pkgDir, "conf", "hsts-preload.json");
if (!fs.existsSync(preload)) fs.writeFileSync(preload, "{}");

const { retrieve } = await import("@mdn/mdn-http-observatory/src/retriever/retriever.js");
import { ALL_TESTS } from "@mdn/mdn-http-observatory/src/constants.js";
import { MINIMUM_SCORE_FOR_EXTRA_CREDIT } from "@mdn/mdn-http-observatory/src/grader/charts.js";
import { getGradeForScore, getScoreModifier } from "@mdn/mdn-http-observatory/src/grader/grader.js";

const [host, httpPort, httpsPort] = process.argv.slice(2);
const r = await retrieve(host, { httpPort, httpsPort });
if (!r.responses.auto) {
  console.log(JSON.stringify({ error: "site down" }));
  process.exit(1);
}
let withExtra = 100;
let uncurved = 100;
const tests = {};
for (const test of ALL_TESTS) {
  const result = test(r);
  const modifier = result.result ? getScoreModifier(result.result) : 0;
  withExtra += modifier;
  if (modifier < 0) uncurved += modifier;
  tests[result.constructor.name] = { pass: result.pass, result: result.result, scoreModifier: modifier };
}
const score = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? withExtra : uncurved;
const final = getGradeForScore(score);
console.log(JSON.stringify({ grade: final.grade, score: final.score, status: r.responses.auto.status, verified: r.responses.auto.verified ?? null, tests }));
