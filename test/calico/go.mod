// Calico's CRDs for the lab, from Calico's own Go module (its
// libcalico-go/config/crd/). Calico tags releases v3.x.y on a module path
// without /v3, so Go reaches them as pseudo-versions only; this is the one
// "latest" resolved to. Read by crd.sh; nothing here is built.
module extip.test/calico

go 1.24

require github.com/projectcalico/calico v1.11.0-cni-plugin.0.20250813170300-a0db560f0520
