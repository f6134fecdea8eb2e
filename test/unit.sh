#!/usr/bin/env bash
# The unit tier (npm run test:unit): every test in test/unit/, which need no
# root, no lab, no Ansible and no virtualenv: the rules, the loader, the
# generated files, the CLI's parsing, the agent's and the CLI's pure
# decisions, and the shared case tables (Python 3 alone runs the role's Calico
# filters). A new file there joins the tier. npm test runs these too, with the
# role's tests (Ansible, and the role's pytest tests) and the lab's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
NODE_OPTIONS=--experimental-vm-modules exec npx jest --maxWorkers=2 test/unit/ "$@"
