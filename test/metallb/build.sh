#!/usr/bin/env bash
# Builds MetalLB's controller and speaker, the version kubespray deploys
# (metallb_version in its roles/kubespray_defaults; VERSION here), for the
# install benchmark's side by side with kubespray's MetalLB add-on. Built in
# MetalLB's own module (from Go's module cache, checked against the checksum
# database), so its go.sum and replace directives pin every dependency; static
# (CGO_ENABLED=0), as MetalLB's images are. Once per version: later runs find
# the programs in the cache ($EXTIP_CACHE_DIR or ~/.cache/extip). Prints the
# directory holding controller and speaker.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v go >/dev/null || { echo "metallb/build.sh: Go is needed to build MetalLB" >&2; exit 3; }
version="$(cat "$here/VERSION")"
out="${EXTIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/extip}/metallb/$version"
if [ -x "$out/controller" ] && [ -x "$out/speaker" ]; then
  echo "$out"
  exit 0
fi
echo "metallb/build.sh: building MetalLB $version (controller, speaker); the first time takes a few minutes" >&2
start=$SECONDS
src="$(cd / && GOFLAGS=-mod=mod GO111MODULE=on go mod download -json "go.universe.tf/metallb@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[ -d "$src" ] || { echo "metallb/build.sh: go mod download gave no directory for go.universe.tf/metallb@$version" >&2; exit 1; }
mkdir -p "$out"
for prog in controller speaker; do
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/$prog.tmp" "./$prog")
  mv "$out/$prog.tmp" "$out/$prog"
done
echo "metallb/build.sh: built MetalLB $version in $((SECONDS - start)) s" >&2
echo "$out"
