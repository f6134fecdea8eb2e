#!/usr/bin/env bash
# The demo (README quick start): prepares the machine and the build, then runs
# test/lab/demo.ts. Pass --keep to leave the lab up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/prepare.sh
PATH="$(bash test/ansible/venv.sh newest):$PATH"
export PATH
exec node dist/test/lab/demo.js "$@"
