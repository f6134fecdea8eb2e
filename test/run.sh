#!/usr/bin/env bash
# The test command (README quick start, .ci/run): prepares the machine and the
# build, checks the generated files, and runs every test with jest (and the
# role's tests again on kubespray's Ansible), ending with one plain
# "N passed, N failed" line. Arguments go to the first jest run only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/prepare.sh
node dist/tools/generate.js --check
# Every test on the newest ansible-core (and its linters); then the tests that
# drive the role, again on kubespray's pin, with the kubespray tests. One line sums both runs.
newest="$(bash test/ansible/venv.sh newest)"
kubespray="$(bash test/ansible/venv.sh kubespray)"
status=0
# The role's filter plugins, by pytest (their unit tests live in the role).
echo "== the role's unit tests (pytest)" >&2
"$newest/python" -m pytest -q -p no:cacheprovider roles/externalip/tests/unit >&2 || status=$?
# The tiers are folders (test/README.md): test/unit, test/role and test/e2e. The tests that
# drive the role run on both Ansibles: test/role/ and test/e2e/role/. kubespray refuses any
# Ansible outside its pin (playbooks/ansible_version.yml, tagged always), so the tests that
# run its playbooks, test/e2e/kubespray/, run on the pin alone.
role_tests=(test/role/ test/e2e/role/)
pin_only=(test/e2e/kubespray/)
results="$(mktemp)"
results18="$(mktemp)"
echo "== every test, ansible-core $("$newest/ansible-playbook" --version | sed -n 's/.*core \([0-9.]*\)].*/\1/p')" >&2
# Two workers: lab tests spend most of their time waiting on real daemons, and
# each lab has its own namespaces, ports and directories.
first=("$@")
[ $# -eq 0 ] && first=(--testPathIgnorePatterns "${pin_only[@]}")
PATH="$newest:$PATH" NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers=2 --json --outputFile="$results" "${first[@]}" || status=$?
if [ $# -eq 0 ]; then
  echo "== the role's tests, ansible-core $("$kubespray/ansible-playbook" --version | sed -n 's/.*core \([0-9.]*\)].*/\1/p') (kubespray's pin)" >&2
  PATH="$kubespray:$PATH" NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers=2 --json --outputFile="$results18" "${role_tests[@]}" "${pin_only[@]}" || status=$?
fi
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    const text = fs.readFileSync(f, "utf8");
    if (!text) continue;
    const r = JSON.parse(text);
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`jest: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" "$results18" || true
rm -f "$results" "$results18"
exit "$status"
