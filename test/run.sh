#!/usr/bin/env bash
# The test command (README quick start, .ci/run): installs what the tests need
# on a fresh machine, builds, checks the generated files, lints and runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/setup.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
npm run --silent typecheck
node dist/cli/tools/generate.js --check
NODE_OPTIONS=--experimental-vm-modules npx jest "$@"
