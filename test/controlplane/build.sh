#!/usr/bin/env bash
# Builds the lab's control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler and a matching kubectl) from the Go module pinned in
# versions/<version>/, once per version and go.sum: later runs find it in the
# cache and print its directory without building.
#   EXTIP_KUBE_VERSION=v1.34.4 test/controlplane/build.sh   (or 1.34: the pinned 1.34.x)
# The version defaults to VERSION; the cache is $EXTIP_CACHE_DIR or ~/.cache/extip.
# Prints the directory that holds the four programs on stdout; progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
want="${EXTIP_KUBE_VERSION:-$(cat "$here/VERSION")}"
want="v${want#v}"
dir=""
for d in "$here"/versions/"$want" "$here"/versions/"$want".*; do
  [ -f "$d/go.mod" ] && dir="$d"
done
if [ -z "$dir" ]; then
  echo "build.sh: Kubernetes $want is not pinned; pinned: $(ls "$here/versions" | tr '\n' ' ')(add one with test/controlplane/pin.sh vX.Y.Z)" >&2
  exit 2
fi
version="$(basename "$dir")"
command -v go >/dev/null || { echo "build.sh: Go is needed to build the control plane (Go 1.24 or newer)" >&2; exit 3; }
sum="$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)"
cache="${EXTIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/extip}/controlplane/$version-$sum"
programs=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ok=1
for p in "${programs[@]}"; do [ -x "$cache/$p" ] || ok=0; done
if [ "$ok" = 1 ]; then
  echo "$cache"
  exit 0
fi
minor="${version#v1.}"; minor="${minor%%.*}"
echo "build.sh: building Kubernetes $version (${programs[*]}); the first time takes several minutes" >&2
start=$SECONDS
tmp="$(mktemp -d "${cache%/*}.tmp-XXXXXX" 2>/dev/null || { mkdir -p "${cache%/*}" && mktemp -d "${cache%/*}/.tmp-XXXXXX"; })"
trap 'rm -rf "$tmp"' EXIT
(
  cd "$dir"
  # -mod=mod: go.sum is the pin; nothing is vendored.
  go build -mod=mod -trimpath -o "$tmp/" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor" \
    "${programs[@]/#/k8s.io/kubernetes/cmd/}"
)
mkdir -p "${cache%/*}"
rm -rf "$cache"
chmod 755 "$tmp"
mv "$tmp" "$cache"
trap - EXIT
echo "build.sh: built Kubernetes $version in $((SECONDS - start)) s into $cache" >&2
echo "$cache"
