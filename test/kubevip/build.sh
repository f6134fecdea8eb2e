#!/usr/bin/env bash
# Builds kube-vip (the version go.mod pins) for the failover benchmark's side
# by side, once per go.sum: later runs find it in the cache. kube-vip's module
# is served by the Go proxy but not by the checksum database, so go.sum (made
# with GOSUMDB=off) is the pin, and Go checks every download against it.
# Static (CGO_ENABLED=0), as kube-vip's image has it: the lab kubelet runs it
# from an image that holds the program alone (test/kubevip/images.ts).
# The cache is $EXTIP_CACHE_DIR or ~/.cache/extip. Prints the program's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null || { echo "kubevip/build.sh: Go is needed to build kube-vip (Go 1.24 or newer)" >&2; exit 3; }
version="$(awk '$1 == "require" && $2 == "github.com/kube-vip/kube-vip" {print $3}' "$here/go.mod")"
sum="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
out="${EXTIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/extip}/kube-vip/$version-$sum-static/kube-vip"
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
echo "kubevip/build.sh: building kube-vip $version; the first time takes a few minutes" >&2
start=$SECONDS
mkdir -p "${out%/*}"
(cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod GONOSUMDB=github.com/kube-vip/kube-vip go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/kube-vip/kube-vip)
mv "$out.tmp" "$out"
echo "kubevip/build.sh: built kube-vip $version in $((SECONDS - start)) s" >&2
echo "$out"
