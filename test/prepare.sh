#!/usr/bin/env bash
# What the test command and the demo need first, on a fresh machine or not:
# npm packages from the lockfile, the lab's programs (test/setup.sh), a build,
# the agent's image.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash test/setup.sh
npm run --silent build
npm run --silent build:all
# The agent's image (npm run image): the lab runs the agent from it, as a cluster would.
node dist/tools/image.js >&2
