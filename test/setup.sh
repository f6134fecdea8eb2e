#!/usr/bin/env bash
# Installs the programs extip's tests and demo drive, when they are missing:
# Debian packages as root; nothing else is fetched.
set -euo pipefail

need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v yamllint >/dev/null || need+=(yamllint)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: missing ${need[*]}; run as root (or install them with apt-get) and try again" >&2
    exit 3
  fi
  echo "test/setup.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
