//go:build tools

// Package kubevip pins kube-vip, the peer the failover benchmark runs beside
// extip; go.sum is the pin, and build.sh builds its main package.
package kubevip

import _ "github.com/kube-vip/kube-vip"
