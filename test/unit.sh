#!/usr/bin/env bash
# The unit tier (npm run test:unit): the tests that need no root and no lab
# (the role's filter plugins by pytest; rules, loader, generated files, the CLI's parsing and rendering, the role's
# validation and filters run by ansible-playbook on localhost). npm test runs
# these too, with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
PATH="$(bash test/ansible/venv.sh newest):$PATH"
export PATH
python -m pytest -q -p no:cacheprovider roles/externalip/tests/unit
# Two workers: role-validation (ansible-playbook runs) overlaps the rest.
NODE_OPTIONS=--experimental-vm-modules exec npx jest --maxWorkers=2 \
  test/rules.test.ts test/loader.test.ts test/generated.test.ts test/calico-plan.test.ts \
  test/claims.test.ts test/agent-unit.test.ts test/nodes.test.ts test/cli-unit.test.ts test/agent-kubeconfig.test.ts test/policy.test.ts test/tenancy.test.ts test/failover.test.ts test/timings.test.ts test/ledger-schema.test.ts test/status-report.test.ts test/pools.test.ts test/cli.test.ts test/data-vars.test.ts test/render.test.ts test/role-validation.test.ts "$@"
