#!/usr/bin/env bash
# The demo (README quick start): installs what the lab needs on a fresh machine,
# builds, and runs test/lab/demo.ts. Pass --keep to leave the lab up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash test/setup.sh
npm run --silent build
npm run --silent build:all
exec node dist/test/lab/demo.js "$@"
