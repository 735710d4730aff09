package agent

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
	"github.com/chaosd/chaosd/agent/latency"
	"github.com/chaosd/chaosd/agent/memory"
	"github.com/chaosd/chaosd/agent/partition"
	"github.com/chaosd/chaosd/agent/springboot"
)

// DefaultDrivers builds every fault driver of a production agent for the
// network namespace in cfg, and a function that releases them (it reverts
// nothing: the agent does that before Run returns). A new fault kind is one
// package implementing Driver and one entry here.
//
// The partition driver exempts the control channel: it reads the TCP
// ports from cfg.Control, where Run publishes them once it listens.
func DefaultDrivers(cfg Config, lg *zap.Logger) ([]Driver, func() error, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	var drivers []Driver
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	fail := func(err error) ([]Driver, func() error, error) {
		closeAll()
		return nil, nil, err
	}
	keep := func(d Driver, close func() error) {
		drivers = append(drivers, d)
		closers = append(closers, close)
	}

	// Pod-scoped faults (Fault.Pod): partition and latency act in the
	// pod's network namespace, memory in the pod's cgroup, all found from
	// the pod's UID and QoS class on this node's cgroup hierarchy.
	driver, err := kubepod.ParseDriver(cfg.CgroupDriver)
	if err != nil {
		return fail(fmt.Errorf("agent: %w", err))
	}
	pods, err := kubepod.NewFinder(kubepod.Config{CgroupRoot: cfg.CgroupRoot, Driver: driver, NodeNetNS: cfg.NetNSPath})
	if err != nil {
		return fail(fmt.Errorf("agent: %w", err))
	}
	pd, err := partition.New(partition.Config{NetNSPath: cfg.NetNSPath, ExemptTCP: cfg.Control.TCP,
		Pods: partition.PodAppliers(pods)}, lg.Named("partition"))
	if err != nil {
		return fail(err)
	}
	keep(pd, pd.Close)
	ld, err := latency.NewWithConfig(latency.Config{NetNSPath: cfg.NetNSPath, Pods: pods}, lg.Named("latency"))
	if err != nil {
		return fail(err)
	}
	keep(ld, ld.Close)
	for _, kind := range []agentapi.Kind{agentapi.KindException, agentapi.KindAppLatency} {
		sd, err := springboot.New(kind, nil, lg.Named("springboot"))
		if err != nil {
			return fail(err)
		}
		keep(sd, sd.Close)
	}
	// The stressor is this binary in a hidden mode (chaosd agent-stressor);
	// Owner tells this agent's stressors from those of other agents in the
	// same PID namespace.
	md, err := memory.New(memory.Config{ArgPrefix: []string{StressorCommand}, Owner: cfg.Node,
		CgroupRoot: cfg.CgroupRoot, CgroupDriver: driver, CgroupNS: cfg.CgroupNS}, lg.Named("memory"))
	if err != nil {
		return fail(err)
	}
	keep(md, md.Close)
	return drivers, closeAll, nil
}

// StressorCommand is the hidden subcommand of the chaosd binary that runs
// a memory stressor (memory.StressorMain).
const StressorCommand = "agent-stressor"
