// Package experiments holds the experiment specification: typed, strictly
// decoded YAML that is validated once at load, and the built-in library.
package experiments

import (
	"net/netip"

	"github.com/chaosd/chaosd/probes"
)

// APIVersion is the only apiVersion this release accepts.
const APIVersion = "chaosd.io/v1alpha1"

// Defaults applied at load when a field is left out.
const (
	DefaultRTO           = 15 * 60 // seconds
	DefaultProbeInterval = 2       // seconds
)

// Experiment is one chaos experiment as written by a user.
type Experiment struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// Source is where the experiment was read from (file path), set by the loader.
	Source string `yaml:"-" json:"source,omitempty"`
}

// Metadata names and describes an experiment.
type Metadata struct {
	Name        string            `yaml:"name" json:"name"`
	Description string            `yaml:"description,omitempty" json:"description,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Spec is what the experiment does.
type Spec struct {
	// Targets name sets of nodes that faults act on.
	Targets []Target `yaml:"targets" json:"targets"`
	// Faults to inject; all are injected together and held for Duration.
	Faults []Fault `yaml:"faults" json:"faults"`
	// Duration is how long the faults are held (the observe phase).
	Duration Duration `yaml:"duration" json:"duration"`
	// ProbeInterval is how often probes are evaluated (>= 1s). It is the
	// resolution of every time the run measures. Default 2s.
	ProbeInterval Duration `yaml:"probeInterval,omitempty" json:"probeInterval"`

	SteadyState SteadyState    `yaml:"steadyState" json:"steadyState"`
	AbortWhen   []AbortProbe   `yaml:"abortWhen,omitempty" json:"abortWhen,omitempty"`
	Recovery    Recovery       `yaml:"recovery" json:"recovery"`
	Schedule    *Schedule      `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// Target selects nodes of one cluster.
type Target struct {
	Name    string `yaml:"name" json:"name"`
	Cluster string `yaml:"cluster" json:"cluster"`
	// Nodes lists node names; empty means every node of the cluster that
	// matches Selector.
	Nodes []string `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	// Selector matches node labels (all must match).
	Selector map[string]string `yaml:"selector,omitempty" json:"selector,omitempty"`
	// Mode is the blast radius: "all" (default), "one", "fixed:N", "percent:P".
	Mode BlastRadius `yaml:"mode,omitempty" json:"mode"`
}

// BlastRadiusKind says how many of the selected nodes a fault hits.
type BlastRadiusKind string

const (
	BlastAll     BlastRadiusKind = "all"
	BlastOne     BlastRadiusKind = "one"
	BlastFixed   BlastRadiusKind = "fixed"
	BlastPercent BlastRadiusKind = "percent"
)

// BlastRadius is a parsed mode string ("all", "one", "fixed:N", "percent:P").
type BlastRadius struct {
	Kind    BlastRadiusKind
	N       int     // for fixed
	Percent float64 // for percent, 0 < P <= 100
}

// FaultKind names a fault implementation in the agent.
type FaultKind string

const (
	FaultPartition FaultKind = "partition"
)

// Fault is one fault applied to every node a target resolves to.
type Fault struct {
	Name   string    `yaml:"name" json:"name"`
	Kind   FaultKind `yaml:"kind" json:"kind"`
	Target string    `yaml:"target" json:"target"`
	// Partition holds the parameters when Kind is "partition".
	Partition *PartitionParams `yaml:"partition,omitempty" json:"partition,omitempty"`
}

// Direction of a partition.
type Direction string

const (
	DirectionBoth    Direction = "both"
	DirectionEgress  Direction = "egress"
	DirectionIngress Direction = "ingress"
)

// PartitionParams drop traffic to and from CIDRs.
type PartitionParams struct {
	CIDRs     []netip.Prefix `yaml:"cidrs" json:"cidrs"`
	Direction Direction      `yaml:"direction,omitempty" json:"direction"` // default both
	Ports     []uint16       `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// SteadyState probes must all hold before the fault is injected; during
// the fault the first failing one marks the first impact.
type SteadyState struct {
	Probes []probes.Probe `yaml:"probes" json:"probes"`
}

// AbortProbe fires when its condition holds (or cannot be evaluated) for
// For; firing reverts every fault at once and the run is aborted.
type AbortProbe struct {
	probes.Probe `yaml:",inline" json:",inline"`
	For          Duration `yaml:"for" json:"for"`
}

// Recovery says how recovery after revert is judged.
type Recovery struct {
	// RTO is the recovery time objective (default 15m).
	RTO Duration `yaml:"rto,omitempty" json:"rto"`
	// HoldFor is how long the probes must hold continuously to count as
	// recovered (default 3 probe intervals).
	HoldFor Duration `yaml:"holdFor,omitempty" json:"holdFor"`
	// Timeout bounds the recovery phase (default RTO + HoldFor).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout"`
	// Probes judge recovery; default: the steady-state probes.
	Probes []probes.Probe `yaml:"probes,omitempty" json:"probes,omitempty"`
}

// Schedule runs the experiment on a cron schedule.
type Schedule struct {
	Cron     string `yaml:"cron" json:"cron"`
	TimeZone string `yaml:"timeZone,omitempty" json:"timeZone,omitempty"` // IANA name, default UTC
}
