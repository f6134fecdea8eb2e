#!/usr/bin/env bash
# The test command (README quick start, .ci/run): prepares the machine and the
# build, checks the generated files, and runs every test with jest, ending with
# one plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/prepare.sh
node dist/cli/tools/generate.js --check
results="$(mktemp)"
status=0
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" || true
rm -f "$results"
exit "$status"
