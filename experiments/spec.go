// Package experiments holds the experiment specification: typed, strictly
// decoded YAML that is defaulted and validated once at load. The built-in
// experiments live in the library subpackage.
//
// # Files
//
// An experiment file holds exactly one YAML document with one Experiment
// (apiVersion chaosd.io/v1alpha1, kind Experiment). A file with several
// documents is rejected rather than split, so that a file name always
// names one experiment. [Parse], [LoadFile], [LoadDir] and [LoadFS] load
// files; [ValidateFiles] backs "chaosctl validate -f".
//
// # Suites
//
// A [Suite] (kind Suite, same apiVersion and metadata) is a game day:
// library experiments run in order as one unit, with stopOnFailure
// (default true) and a pause between them of at least the next
// experiment's steady-state baseline (see suite.go). Suites live next to
// experiments: [LoadLibraryDir] loads both from chaosd's experiments
// directory and checks every suite against the experiments; a suite
// naming an unknown experiment fails the load like any field error.
//
// Decoding is strict (github.com/goccy/go-yaml with DisallowUnknownField):
// unknown fields, values of the wrong type, durations, CIDRs and modes that
// do not parse are errors. Durations are Prometheus-style strings ("30s",
// "1h30m"), CIDRs are netip.Prefix without host bits, blast-radius modes are
// "all", "one", "fixed:N" or "percent:P", rates are tc-style ("10mbit",
// "100kbps", see [ParseByteRate]) and sizes Kubernetes-style ("256Mi",
// "1G", see [ParseByteSize]).
//
// # Errors
//
// Every problem of a file is reported, not only the first, as an
// [ErrorList] of [FieldError]s sorted by position, one per line:
//
//	FILE:LINE:COL: field.path: message
//
// A missing field is reported at the mapping it should be in.
//
// # Defaults
//
// Fields left out (or null) get: probeInterval 2s, target mode all,
// partition direction both, exception.level and appLatency.level 1,
// effects.within 30s, recovery.rto 15m, recovery.rpo 5m,
// recovery.holdFor 3 probe intervals, recovery.timeout rto + holdFor,
// recovery.probes a copy of the steady-state probes, schedule.timeZone
// UTC, dataLoss.interval 1s, dataLoss.leadIn 10s, dataLoss.timeout 2s,
// dataLoss.write.method POST, dataLoss.read.method GET. A field written with a zero
// value keeps it and is then rejected where zero is invalid.
//
// # Fault kinds
//
// Each fault kind is one unit in its own file (kind_partition.go,
// kind_latency.go, ...): its parameter block, defaults, validation and
// conversion to the agent's wire form ([Fault.ToAgent]), listed in one
// table (kinds.go) that decoding, defaults, validation and the runner
// read. Kind names are agentapi.Kind constants; CIDRs and ports follow
// agentapi's rules, the same the agent's drivers apply.
//
// # Data loss (RPO)
//
// spec.dataLoss ([DataLoss]) makes chaosd write to the system under test
// during the run (HTTP requests templated with a per-write marker) and
// read the writes back after recovery; the span of acknowledged writes
// that were lost is the measured RPO, judged against spec.recovery.rpo.
// The runner does the writing and judging (runner/dataloss.go).
//
// # Probe conditions
//
// A probe's condition (op with threshold, or between min and max) says when
// the probe holds. Steady-state and recovery probes describe the healthy
// state. Abort probes ([AbortProbe]) describe the bad state: the abort fires
// when the condition holds, or the probe cannot be evaluated, for For.
package experiments

import (
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/probes"
)

// APIVersion is the only apiVersion this release accepts.
const APIVersion = "chaosd.io/v1alpha1"

// Defaults applied at load when a field is left out.
const (
	// DefaultRTO is spec.recovery.rto when left out, in seconds (15m).
	DefaultRTO = 15 * 60
	// DefaultRPO is spec.recovery.rpo when left out, in seconds (5m).
	DefaultRPO = 5 * 60
	// DefaultProbeInterval is spec.probeInterval when left out, in seconds.
	DefaultProbeInterval = 2
	// DefaultHoldForProbeIntervals is spec.recovery.holdFor when left out,
	// in probe intervals.
	DefaultHoldForProbeIntervals = 3
	// DefaultTimeZone is spec.schedule.timeZone when left out.
	DefaultTimeZone = "UTC"
	// DefaultLevel is the level of exception and appLatency when left
	// out: every request is attacked.
	DefaultLevel = 1
	// DefaultBaseline is spec.steadyState.baseline when left out, in
	// seconds.
	DefaultBaseline = 30
	// DefaultAlertWithin is expectAlerts[].within when left out, in
	// seconds; DefaultSilenceGrace silence.grace.
	DefaultAlertWithin  = 5 * 60
	DefaultSilenceGrace = 5 * 60
	// DefaultEffectsWithin is spec.effects.within when left out, in seconds.
	DefaultEffectsWithin = 30
	// MinProbeInterval is the shortest spec.probeInterval accepted.
	MinProbeInterval = time.Second
	// Kind is the only kind an experiment file may have.
	Kind = "Experiment"
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

// DescriptionAnnotation is the annotation that describes an experiment in
// a file that is also a Kubernetes object (`kubectl apply -f` of an
// Experiment): a Kubernetes object's metadata has no description field.
const DescriptionAnnotation = "chaosd.io/description"

// Metadata names and describes an experiment. It is the part of a
// Kubernetes object's metadata that experiment files use.
type Metadata struct {
	Name string `yaml:"name" json:"name"`
	// Description is what the experiment is for. Files meant for
	// Kubernetes too write it as the annotation chaosd.io/description
	// (metadata.description is not a Kubernetes field); the loader copies
	// that annotation here when description is left out.
	Description string            `yaml:"description,omitempty" json:"description,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
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

	// SteadyState must hold before the faults are injected.
	SteadyState SteadyState `yaml:"steadyState" json:"steadyState"`
	// Effects, when set, prove the faults took hold before the steady
	// state is judged during the fault.
	Effects *Effects `yaml:"effects,omitempty" json:"effects,omitempty"`
	// AbortWhen conditions end the run early; see AbortProbe.
	AbortWhen []AbortProbe `yaml:"abortWhen,omitempty" json:"abortWhen,omitempty"`
	// Recovery says how recovery after the revert is judged.
	Recovery Recovery `yaml:"recovery" json:"recovery"`
	// Schedule, when set, runs the experiment on a cron schedule.
	Schedule *Schedule `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// ExpectAlerts are the alerts the run must set off: each must fire
	// (Prometheus' ALERTS series, alertstate firing) within its Within of
	// the first impact, or the verdict fails. ForbidAlerts must not fire
	// at all from the inject to the end of the run.
	ExpectAlerts []AlertRule `yaml:"expectAlerts,omitempty" json:"expectAlerts,omitempty"`
	ForbidAlerts []AlertRule `yaml:"forbidAlerts,omitempty" json:"forbidAlerts,omitempty"`
	// Silence, when set, silences the expected alerts in Alertmanager for
	// the run, so the on-call team is not paged for what was planned.
	Silence *Silence `yaml:"silence,omitempty" json:"silence,omitempty"`
	// DataLoss, when set, is the data-loss (RPO) check: writes made
	// during the run are read back after recovery; see DataLoss.
	DataLoss *DataLoss `yaml:"dataLoss,omitempty" json:"dataLoss,omitempty"`
}

// Target returns the target named name.
func (s *Spec) Target(name string) (Target, bool) {
	for _, t := range s.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
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
	// Service selects the instances (pods) of a service instead of whole
	// nodes: faults of kind memory, exception and app-latency act on each
	// instance; network faults act on the nodes running one. Nodes and
	// Selector then narrow the nodes considered.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Mode is the blast radius: "all" (default), "one", "fixed:N", "percent:P".
	Mode BlastRadius `yaml:"mode,omitempty" json:"mode"`
}

// BlastRadiusKind says how many of the selected nodes a fault hits.
type BlastRadiusKind string

const (
	BlastAll     BlastRadiusKind = "all"     // every selected node (default)
	BlastOne     BlastRadiusKind = "one"     // one node picked at random
	BlastFixed   BlastRadiusKind = "fixed"   // N nodes picked at random
	BlastPercent BlastRadiusKind = "percent" // P percent of the selected nodes
)

// BlastRadius is a parsed mode string ("all", "one", "fixed:N", "percent:P").
type BlastRadius struct {
	Kind    BlastRadiusKind
	N       int     // for fixed
	Percent float64 // for percent, 0 < P <= 100
}

// Fault is one fault applied to every node a target resolves to.
type Fault struct {
	Name string `yaml:"name" json:"name"`
	// Kind is one of the agentapi.Kind* names.
	Kind   agentapi.Kind `yaml:"kind" json:"kind"`
	Target string        `yaml:"target" json:"target"`
	// Partition holds the parameters when Kind is "partition".
	Partition *PartitionParams `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Latency holds the parameters when Kind is "latency".
	Latency *LatencyParams `yaml:"latency,omitempty" json:"latency,omitempty"`
	// Memory holds the parameters when Kind is "memory".
	Memory *MemoryParams `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Exception holds the parameters when Kind is "exception".
	Exception *ExceptionParams `yaml:"exception,omitempty" json:"exception,omitempty"`
	// AppLatency holds the parameters when Kind is "app-latency".
	AppLatency *AppLatencyParams `yaml:"appLatency,omitempty" json:"appLatency,omitempty"`
}

// Effects are probes that prove the faults took hold. After the inject
// they are polled every probe interval until all hold, for at most
// Within; if they never do, the run reverts and ends with verdict error
// (the experiment proved nothing). Only then is the steady state judged
// during the fault (see SteadyState.MustHoldDuringFault).
type Effects struct {
	Probes []probes.Probe `yaml:"probes" json:"probes"`
	// Within bounds the wait (default 30s).
	Within Duration `yaml:"within,omitempty" json:"within"`
}

// SteadyState probes must all hold before the fault is injected; during
// the fault the first failing one marks the first impact.
type SteadyState struct {
	Probes []probes.Probe `yaml:"probes" json:"probes"`
	// Baseline is the window before the inject over which the steady
	// state is judged: every probe must hold at every step of it (every
	// scrape, when Prometheus scrapes more often than probeInterval), so
	// a system that failed some requests in the last Baseline is not in
	// its steady state. Default 30s.
	Baseline Duration `yaml:"baseline,omitempty" json:"baseline,omitempty"`
	// MustHoldDuringFault makes any failing round while the faults are in
	// place (after Effects, if any, held) fail the run: the system must
	// survive the fault, not merely recover from it. Default false: the
	// fault may hurt, and the run judges recovery and RTO.
	MustHoldDuringFault bool `yaml:"mustHoldDuringFault,omitempty" json:"mustHoldDuringFault,omitempty"`
}

// AlertRule names an alert by its alertname and, optionally, labels its
// ALERTS series must carry (equality).
type AlertRule struct {
	Name   string            `yaml:"name" json:"name"`
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Within is, for an expected alert, how long after the first impact
	// (the inject, when there was no impact) it may take to fire.
	// Default 5m. Not allowed in forbidAlerts.
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
}

// Silence configures the Alertmanager silence of the expected alerts.
type Silence struct {
	// Grace is added to the run's longest possible end (inject +
	// duration + recovery timeout) to form the silence's own end, so it
	// lapses by itself even if chaosd dies; chaosd expires it as soon as
	// the run ends. Default 5m.
	Grace Duration `yaml:"grace,omitempty" json:"grace,omitempty"`
}

// AbortProbe is an abort condition checked while the faults are in place.
//
// Unlike every other probe, its condition (Op with Threshold, or between
// Min and Max) describes the BAD state: the abort fires when the condition
// holds, or the probe cannot be evaluated (query error, NaN, empty result
// unless OnEmpty is pass, ambiguous multi-series result), continuously for
// For. Firing reverts every fault at once and marks the run aborted. For is
// required; 0s fires on the first such evaluation.
type AbortProbe struct {
	probes.Probe `yaml:",inline" json:",inline"`
	For          Duration `yaml:"for" json:"for"`
}

// Recovery says how recovery after revert is judged.
type Recovery struct {
	// RTO is the recovery time objective (default 15m).
	RTO Duration `yaml:"rto,omitempty" json:"rto"`
	// RPO is the recovery point objective (default 5m): the longest span
	// of acknowledged writes the system may lose. Only spec.dataLoss
	// measures it.
	RPO Duration `yaml:"rpo,omitempty" json:"rpo"`
	// HoldFor is how long the probes must hold continuously to count as
	// recovered (default 3 probe intervals).
	HoldFor Duration `yaml:"holdFor,omitempty" json:"holdFor"`
	// Timeout bounds the recovery phase (default RTO + HoldFor).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout"`
	// Probes judge recovery; default: the steady-state probes.
	Probes []probes.Probe `yaml:"probes,omitempty" json:"probes,omitempty"`
}

// Schedule runs the experiment on a cron schedule (see schedule.go).
type Schedule struct {
	Cron     string `yaml:"cron" json:"cron"`
	TimeZone string `yaml:"timeZone,omitempty" json:"timeZone,omitempty"` // IANA name, default UTC
	// MissedRuns says what chaosd does with triggers it missed while it
	// was down (or had no leader): skip (default) records them as
	// skipped; runOnce runs the latest one once, if it is no older than
	// StartingDeadline, and records the others as skipped.
	MissedRuns MissedRunsPolicy `yaml:"missedRuns,omitempty" json:"missedRuns,omitempty"`
	// StartingDeadline is how late a missed trigger may still start
	// (required with missedRuns: runOnce), like a CronJob's
	// startingDeadlineSeconds.
	StartingDeadline Duration `yaml:"startingDeadline,omitempty" json:"startingDeadline,omitempty"`
	// FreezeWindows are this experiment's freeze windows, besides those
	// of chaosd's configuration: no scheduled run starts inside one, and
	// a run on request needs force.
	FreezeWindows []FreezeWindow `yaml:"freezeWindows,omitempty" json:"freezeWindows,omitempty"`
}
