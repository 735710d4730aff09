package api

import (
	"encoding/json"
	"time"
)

// StartRequest is the body of POST /v1/runs: a run of the library
// experiment named Experiment, or of the ad hoc experiment in Spec.
type StartRequest struct {
	// Experiment names an experiment of chaosd's library. With Spec it
	// may be left out; if given it must be Spec's metadata.name.
	Experiment string `json:"experiment,omitempty"`
	DryRun     bool   `json:"dryRun,omitempty"`
	// Spec is an ad hoc experiment: the text of an experiment file
	// (YAML). chaosd validates it with the loader it uses for its
	// library and runs it without adding it to the library. It needs a
	// credential of scope adhoc (or admin), and at most MaxAdHocSpecBytes.
	Spec string `json:"spec,omitempty"`
	// File is Spec's file name on the client, for messages (at most
	// MaxAdHocFileBytes; "" reads as "spec").
	File string `json:"file,omitempty"`
	// Force starts the run inside a freeze window (else refused with
	// 409); the record names the window (Run.ForcedFreeze).
	Force bool `json:"force,omitempty"`
}

// Bounds on an ad hoc experiment in a StartRequest.
const (
	MaxAdHocSpecBytes = 64 << 10
	MaxAdHocFileBytes = 256
)

// Query parameters of GET /v1/runs (see package daemon/runquery).
const (
	// QuerySelector is a label selector over the run's fields
	// (experiment, verdict, trigger, phase, adhoc, dryRun, interrupted,
	// suiteRun),
	// e.g. "experiment=partition-c1-c2,verdict!=pass".
	QuerySelector = "selector"
	// QuerySince keeps runs created within this duration before now
	// ("24h", "7d").
	QuerySince = "since"
	// QueryLimit keeps the newest N runs (after the other filters).
	QueryLimit = "limit"
)

// VersionInfo is the answer of GET /v1/version.
type VersionInfo struct {
	// Version is chaosd's version ("dev" when built without one).
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"` // GOOS/GOARCH
	// Mode is "standalone" or "kubernetes".
	Mode string `json:"mode,omitempty"`
}

// ExperimentPreview is the answer of GET /v1/experiments/{name}/preview:
// an experiment and what a run started now would touch, with targets
// resolved now and each node's agent asked (a dry run's preflight,
// without the Prometheus checks).
type ExperimentPreview struct {
	Experiment ExperimentInfo `json:"experiment"`
	// ResolvedAt is when targets were resolved.
	ResolvedAt time.Time `json:"resolvedAt"`
	// The spec in short.
	DurationSeconds      float64         `json:"durationSeconds"`
	ProbeIntervalSeconds float64         `json:"probeIntervalSeconds"`
	RTOSeconds           float64         `json:"rtoSeconds"`
	Probes               []PreviewProbe  `json:"probes"`
	Targets              []PreviewTarget `json:"targets"`
	Faults               []PreviewFault  `json:"faults"`
	// Problems are what would stop a run at preflight now (a target
	// selecting nothing, an agent down, a node that cannot run a kind).
	Problems []string `json:"problems"`
}

// PreviewProbe is one probe of the experiment.
type PreviewProbe struct {
	Phase     Phase  `json:"phase"` // steady-state, effects, abort, recovering
	Name      string `json:"name"`
	Query     string `json:"query"`
	Condition string `json:"condition"`
}

// PreviewTarget is a target resolved now.
type PreviewTarget struct {
	Name     string   `json:"name"`
	Cluster  string   `json:"cluster"`
	Selector string   `json:"selector,omitempty"` // k=v,... of the spec's node selector
	Nodes    []string `json:"nodes,omitempty"`    // the spec's node list
	Service  string   `json:"service,omitempty"`
	Mode     string   `json:"mode"` // blast radius
	// Eligible are the nodes (node/instance for service targets) the
	// target selects now, before the blast radius.
	Eligible []string `json:"eligible"`
	// Picked is how many of them a run would hit: all of them for mode
	// all, else that many chosen at random when the run starts.
	Picked int    `json:"picked"`
	Error  string `json:"error,omitempty"`
}

// PreviewFault is one fault and where it would land.
type PreviewFault struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Params is the fault kind's parameter block, with defaults applied.
	Params json.RawMessage `json:"params,omitempty"`
	// On lists every node (or instance) it could land on now, with what
	// its agent says.
	On []PreviewPlacement `json:"on"`
}

// PreviewPlacement is a fault on one eligible node.
type PreviewPlacement struct {
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	Instance string `json:"instance,omitempty"`
	// Ready: the node's agent answered and can run the fault's kind.
	Ready bool `json:"ready"`
	// Problem says why not.
	Problem string `json:"problem,omitempty"`
}

// ExperimentInfo is one entry of GET /v1/experiments.
type ExperimentInfo struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Source      string     `json:"source,omitempty"`
	Schedule    string     `json:"schedule,omitempty"`
	TimeZone    string     `json:"timeZone,omitempty"`
	NextRun     *time.Time `json:"nextRun,omitempty"`
}

// AgentInfo is one entry of GET /v1/agents: a node's agent as chaosd sees
// it now.
type AgentInfo struct {
	Cluster   string `json:"cluster"`
	Node      string `json:"node"`
	Reachable bool   `json:"reachable"`
	// Error says why the agent could not be asked.
	Error        string            `json:"error,omitempty"`
	Version      string            `json:"version,omitempty"`
	Capabilities map[string]bool   `json:"capabilities,omitempty"`
	Unavailable  map[string]string `json:"unavailable,omitempty"` // fault kind → why not on this node
	ActiveFaults int               `json:"activeFaults"`
}

// HaltResult is the answer of POST /v1/halt: every run in progress was
// aborted and every agent asked to revert everything it holds.
type HaltResult struct {
	AbortedRuns []string `json:"abortedRuns"`
	// AbortedSuiteRuns are the suite runs stopped: their current
	// experiment is among AbortedRuns, the rest never start.
	AbortedSuiteRuns []string     `json:"abortedSuiteRuns,omitempty"`
	Agents           []HaltedNode `json:"agents"`
}

// HaltedNode is one agent's part of a halt.
type HaltedNode struct {
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	Reverted int    `json:"reverted"` // faults the agent reverted
	// Error says why the agent could not be halted. Its faults still end
	// within a lease: partitions and latency in the kernel, memory
	// stressors by their own deadline; chaosd undoes Chaos Monkey
	// assaults of the runs it aborts through the service's actuator.
	Error string `json:"error,omitempty"`
}

// SkipInfo is one entry of GET /v1/skips: a schedule trigger that did not
// start a run (a run of the same experiment was still going, a freeze
// window, a paused schedule, a trigger missed while chaosd was down).
type SkipInfo struct {
	// Time is when the skip was recorded; Trigger the fire time skipped.
	Time       time.Time `json:"time"`
	Experiment string    `json:"experiment"`
	Reason     string    `json:"reason"`
	Trigger    time.Time `json:"trigger,omitzero"`
	// Cause is one of the Skip* constants; Window the freeze window's
	// name (cause freeze).
	Cause  string `json:"cause,omitempty"`
	Window string `json:"window,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Endpoints (all require "Authorization: Bearer TOKEN"):
//
//	GET  /healthz                  200 "ok"
//	GET  /metrics                  Prometheus exposition
//	GET  /v1/experiments           []ExperimentInfo
//	GET  /v1/version               VersionInfo
//	GET  /v1/experiments/{name}/preview  ExperimentPreview (targets resolved now, agents asked)
//	POST /v1/runs                  StartRequest -> 201 Run (404 unknown experiment, 409 already running;
//	                               with Spec: scope adhoc, 400 naming the field of an invalid spec,
//	                               422 when its name is a library experiment's)
//	GET  /v1/runs[?selector=&since=&limit=]  []Run (newest first, without Events/Current; filtered,
//	                               400 naming the parameter when one is invalid)
//	GET  /v1/runs/{id}             Run
//	GET  /v1/runs/{id}/timeline    Timeline (probe values over the run, from Prometheus; 200 with
//	                               Timeline.Error when Prometheus cannot answer)
//	POST /v1/runs/{id}/abort       202 Run
//	POST /v1/halt[?cluster=NAME]   200 HaltResult (abort every run, revert every fault)
//	GET  /v1/agents                []AgentInfo (every configured agent, asked now)
//	GET  /v1/skips                 []SkipInfo (skipped schedule triggers, oldest first)
//	GET  /v1/schedules             []ScheduleInfo (every scheduled experiment: next fire times, last run, skips)
//	POST /v1/schedules/{name}/pause   200 ScheduleInfo (scope run; 404 unknown or unscheduled experiment)
//	POST /v1/schedules/{name}/resume  200 ScheduleInfo
//	GET  /v1/suites                []SuiteInfo (the suites of the library)
//	POST /v1/suite-runs            SuiteStartRequest -> 201 SuiteRun (scope run; 404 unknown suite,
//	                               409 a run of it in progress or inside a freeze without force)
//	GET  /v1/suite-runs            []SuiteRun (newest first)
//	GET  /v1/suite-runs/{id}       SuiteRun (live while it runs)
//	POST /v1/suite-runs/{id}/abort 202 SuiteRun (the current experiment is aborted, the rest never
//	                               start); POST /v1/runs/{id}/abort with a suite run ID does the same
//
// POST /v1/runs inside a freeze window answers 409 unless the request
// has "force": true.
