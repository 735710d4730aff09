package api

import (
	"testing"

	"github.com/chaosd/chaosd/internal/deptest"
)

// TestDeps is the wire packages' dependency fence: every layer shares
// them, so they import only the standard library.
func TestDeps(t *testing.T) {
	for _, pkg := range []string{
		"github.com/chaosd/chaosd/api",
		"github.com/chaosd/chaosd/agent/agentapi",
		"github.com/chaosd/chaosd/probes",
	} {
		deptest.OnlyStd(t, pkg)
	}
}
