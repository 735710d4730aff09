package daemon

import (
	"testing"

	"github.com/chaosd/chaosd/internal/deptest"
)

// TestDeps is chaosd's dependency fence: the daemon talks to agents over
// their API and never touches the kernel itself.
func TestDeps(t *testing.T) {
	deptest.Forbid(t, "github.com/chaosd/chaosd/daemon",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"github.com/google/nftables",
		"github.com/mdlayher/netlink",
		"github.com/chaosd/chaosd/agent/partition",
		"github.com/chaosd/chaosd/agent/latency",
		"github.com/chaosd/chaosd/agent/memory",
		"github.com/chaosd/chaosd/agent/nftexpiry",
	)
	// Nothing under experiments/ may import the daemon (the runner is a
	// lower layer).
	for _, pkg := range []string{"github.com/chaosd/chaosd/experiments", "github.com/chaosd/chaosd/experiments/runner", "github.com/chaosd/chaosd/experiments/library"} {
		deptest.Forbid(t, pkg, "github.com/chaosd/chaosd/daemon")
	}
}
