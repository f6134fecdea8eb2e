#!/usr/bin/env bash
# The test command (README quick start, .ci/run): installs what the tests need
# on a fresh machine, builds, checks the generated files, lints and runs jest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash test/setup.sh
npm run --silent build
npm run --silent build:all
node dist/cli/tools/generate.js --check
NODE_OPTIONS=--experimental-vm-modules npx jest "$@"
