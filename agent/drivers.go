package agent

import (
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/latency"
	"github.com/chaosd/chaosd/agent/memory"
	"github.com/chaosd/chaosd/agent/partition"
	"github.com/chaosd/chaosd/agent/springboot"
)

// defaultDrivers builds every fault driver of a production agent for the
// network namespace in cfg, and a function that releases them.
func defaultDrivers(cfg Config, lg *zap.Logger) ([]Driver, func(), error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	ap, err := partition.NewApplier(cfg.NetNSPath)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, ap.Close)
	drivers := []Driver{&partitionDriver{be: ap}}
	ld, err := latency.New(cfg.NetNSPath, lg.Named("latency"))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, ld.Close)
	drivers = append(drivers, ld)
	for _, kind := range []agentapi.Kind{agentapi.KindException, agentapi.KindAppLatency} {
		d, err := springboot.New(kind, nil, lg.Named("springboot"))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, d.Close)
		drivers = append(drivers, d)
	}
	// The stressor is this binary in a hidden mode (chaosd agent-stressor);
	// Owner tells this agent's stressors from those of other agents in the
	// same PID namespace.
	md, err := memory.New(memory.Config{ArgPrefix: []string{StressorCommand}, Owner: cfg.Node}, lg.Named("memory"))
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, md.Close)
	drivers = append(drivers, md)
	return drivers, closeAll, nil
}

// StressorCommand is the hidden subcommand of the chaosd binary that runs
// a memory stressor (memory.StressorMain).
const StressorCommand = "agent-stressor"
