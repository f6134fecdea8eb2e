#!/usr/bin/env bash
# The test command (README quick start, .ci/run): prepares the machine and the
# build, checks the generated files, and runs every test with jest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/prepare.sh
node dist/cli/tools/generate.js --check
NODE_OPTIONS=--experimental-vm-modules npx jest "$@"
