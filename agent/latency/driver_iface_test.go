package latency_test

import (
	"github.com/chaosd/chaosd/agent"
	"github.com/chaosd/chaosd/agent/latency"
)

// The driver satisfies the agent's contract.
var _ agent.Driver = (*latency.Driver)(nil)
