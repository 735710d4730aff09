package latency

import (
	"context"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

// PodNetNS opens pods' network namespaces (a *kubepod.Finder).
type PodNetNS interface {
	OpenNetNS(ctx context.Context, pod agentapi.Pod) (*kubepod.NetNS, error)
	FindNetNS(ctx context.Context, pod agentapi.Pod, id kubepod.NSID) (*kubepod.NetNS, error)
}

// Config configures the driver.
type Config struct {
	// NetNSPath is the node's network namespace (empty: the calling
	// thread's).
	NetNSPath string
	// Pods finds pods' network namespaces for faults with Fault.Pod set;
	// nil: such faults are refused.
	Pods PodNetNS
}
