#!/usr/bin/env bash
# Prints the path of one of Calico's CRDs (default: bgpconfigurations), taken
# from Calico's Go module as go.mod/go.sum here pin it (downloaded once into
# Go's module cache, checked against go.sum).
set -euo pipefail
cd "$(dirname "$0")"
name="${1:-bgpconfigurations}"
dir="$(GOFLAGS=-mod=mod go mod download -json github.com/projectcalico/calico | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
file="$dir/libcalico-go/config/crd/crd.projectcalico.org_${name}.yaml"
if [ ! -f "$file" ]; then
  echo "crd.sh: no CRD $name in Calico's module at $dir" >&2
  exit 1
fi
echo "$file"
