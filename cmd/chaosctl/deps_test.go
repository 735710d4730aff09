package main

import (
	"testing"

	"github.com/chaosd/chaosd/internal/deptest"
)

// TestDeps is chaosctl's dependency fence: the CLI talks HTTP and JSON and
// must not carry the agent's kernel code or a Prometheus client.
func TestDeps(t *testing.T) {
	deptest.Forbid(t, "github.com/chaosd/chaosd/cmd/chaosctl",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"github.com/google/nftables",
		"github.com/mdlayher/netlink",
		"github.com/prometheus/client_golang",
		"github.com/chaosd/chaosd/agent/partition",
		"github.com/chaosd/chaosd/agent/latency",
		"github.com/chaosd/chaosd/agent/memory",
	)
}
