#!/usr/bin/env bash
# Pins a Kubernetes version for the lab's control plane: writes
# versions/<version>/go.mod (k8s.io/kubernetes at that version, every staging
# module it replaces with a local path replaced with its published v0.x.y) and
# go.sum. Run it when adding a version; build.sh only reads what it wrote.
#   test/controlplane/pin.sh v1.36.3
set -euo pipefail
cd "$(dirname "$0")"
version="${1:?usage: pin.sh vX.Y.Z}"
[[ "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "pin.sh: $version is not vX.Y.Z" >&2; exit 2; }
staging="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
modfile="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
dir="versions/$version"
mkdir -p "$dir"
{
  echo "// The lab's control plane: Kubernetes $version, built by test/controlplane/build.sh."
  echo "// Written by test/controlplane/pin.sh; k8s.io/kubernetes replaces its staging"
  echo "// modules with local paths, so each is pinned here to its published $staging."
  echo "module extip.test/controlplane"
  echo
  echo "go $(sed -n 's/^go //p' "$modfile")"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$modfile" | awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " '"$staging"'"}'
  echo ")"
  echo
  echo "tool ("
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do echo "	k8s.io/kubernetes/cmd/$cmd"; done
  echo ")"
} > "$dir/go.mod"
(cd "$dir" && rm -f go.sum && go mod tidy)
echo "pinned $version in $dir"
