// Reads vitest's JSON report and exits 1 unless every test and every file
// passed. The runner's own exit code has been 0 with failing tests, so CI
// decides from the report as well:
//
//   node .ci/check-test-report.mjs <report.json>           # the suite must pass
//   node .ci/check-test-report.mjs --expect-failure <file> # the self-check must fail
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const expectFailure = args[0] === '--expect-failure';
const file = expectFailure ? args[1] : args[0];
if (!file) {
  console.error('usage: check-test-report.mjs [--expect-failure] <vitest-json-report>');
  process.exit(2);
}

let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  // No report means the run died before it finished: that is a failure.
  console.error(`ci: no readable test report at ${file}: ${error.message}`);
  process.exit(1);
}

const failedFiles = (report.testResults ?? []).filter((f) => f.status !== 'passed');
const failed =
  report.success !== true ||
  report.numFailedTests > 0 ||
  report.numFailedTestSuites > 0 ||
  report.numRuntimeErrorTestSuites > 0 ||
  failedFiles.length > 0 ||
  report.numTotalTests === 0;
// A skipped test hides whatever it tests; CI provides every service they need.
const skipped = report.numPendingTests + report.numTodoTests;
const summary =
  `${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped or todo, ` +
  `${failedFiles.length} of ${(report.testResults ?? []).length} files not passed`;

if (expectFailure) {
  if (failed) {
    console.log(`ci: self-check: the gate sees the fixture's failure (${summary})`);
    process.exit(0);
  }
  console.error(`ci: self-check FAILED: a deliberately failing test was reported as passing (${summary})`);
  process.exit(1);
}
if (failed || skipped > 0) {
  console.error(`ci: tests failed (${summary}):`);
  for (const f of failedFiles) console.error(`  ${f.name}: ${f.status}${f.message ? ` (${f.message.split('\n')[0]})` : ''}`);
  process.exit(1);
}
console.log(`ci: tests passed (${summary})`);
