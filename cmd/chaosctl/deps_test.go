package main

import (
	"testing"

	"github.com/chaosd/chaosd/internal/deptest"
)

// TestDeps is chaosctl's dependency fence: the CLI talks HTTP and JSON and
// must not carry the agent's kernel code or a Prometheus client. (It does
// link Prometheus' PromQL parser, to refuse bad probe queries at validate
// time, and through it client_golang's metrics package: only the HTTP API
// client is fenced off.)
func TestDeps(t *testing.T) {
	deptest.Forbid(t, "github.com/chaosd/chaosd/cmd/chaosctl",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"github.com/google/nftables",
		"github.com/mdlayher/netlink",
		"github.com/prometheus/client_golang/api",
		"github.com/chaosd/chaosd/probes/prom",
		"github.com/chaosd/chaosd/agent/partition",
		"github.com/chaosd/chaosd/agent/latency",
		"github.com/chaosd/chaosd/agent/memory",
		"github.com/chaosd/chaosd/agent/nftexpiry",
	)
}
