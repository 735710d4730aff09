// Package api is the wire contract between chaosctl and chaosd: the run
// record and the JSON bodies of chaosd's HTTP API.
package api

import (
	"time"

	"github.com/chaosd/chaosd/probes"
)

// Phases of a run, in order.
const (
	PhasePending     = "pending"
	PhasePreflight   = "preflight"
	PhaseSteadyState = "steady-state"
	PhaseInjecting   = "injecting"
	PhaseEffects     = "effects" // proving the faults took hold
	PhaseObserving   = "observing"
	PhaseReverting   = "reverting"
	PhaseRecovering  = "recovering"
	PhaseDone        = "done"
)

// Verdicts.
const (
	VerdictPass    = "pass"    // steady state held, no abort, recovered within RTO
	VerdictFail    = "fail"    // the system under test failed the experiment
	VerdictAborted = "aborted" // an abort condition fired; faults reverted at once
	VerdictError   = "error"   // the tool could not do its job (or the run was interrupted)
)

// Triggers.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
)

// Run is the record of one experiment run. It is persisted by chaosd after
// every change and survives restarts.
type Run struct {
	ID         string `json:"id"`
	Experiment string `json:"experiment"`
	Trigger    string `json:"trigger"`
	DryRun     bool   `json:"dryRun,omitempty"`
	Phase      string `json:"phase"`
	Verdict    string `json:"verdict,omitempty"`
	// Reason explains the verdict in one sentence.
	Reason string `json:"reason,omitempty"`
	// Interrupted is set when chaosd restarted while the run was going.
	Interrupted bool `json:"interrupted,omitempty"`

	CreatedAt  time.Time  `json:"createdAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`

	Times Times `json:"times"`
	RTO   RTO   `json:"rto"`

	Faults []FaultRecord `json:"faults"`
	Phases []PhaseResult `json:"phases"`
	// Current holds the latest result of every probe evaluated in the
	// current phase (live progress).
	Current []probes.Result `json:"current,omitempty"`
	Events  []Event         `json:"events"`
}

// Times are the moments the run measured (nil when they did not happen).
type Times struct {
	Started     *time.Time `json:"started,omitempty"`
	Injected    *time.Time `json:"injected,omitempty"`
	FirstImpact *time.Time `json:"firstImpact,omitempty"`
	Reverted    *time.Time `json:"reverted,omitempty"`
	Recovered   *time.Time `json:"recovered,omitempty"`
}

// RTO is the measured recovery time against the target.
type RTO struct {
	// MeasuredSeconds = recovered - firstImpact (0 when there was no
	// impact); nil when the system did not recover.
	MeasuredSeconds *float64 `json:"measuredSeconds"`
	TargetSeconds   float64  `json:"targetSeconds"`
	// ResolutionSeconds is the probe interval: every time is measured to
	// within this.
	ResolutionSeconds float64 `json:"resolutionSeconds"`
}

// FaultRecord is one fault on one node.
type FaultRecord struct {
	Name         string     `json:"name"`
	Kind         string     `json:"kind"`
	Cluster      string     `json:"cluster"`
	Node         string     `json:"node"`
	Instance     string     `json:"instance,omitempty"` // service/instance for service targets
	AgentFaultID string     `json:"agentFaultId"`
	InjectedAt   *time.Time `json:"injectedAt,omitempty"`
	RevertedAt   *time.Time `json:"revertedAt,omitempty"`
	RevertReason string     `json:"revertReason,omitempty"`
	// Verified: the agent confirmed no kernel state of the fault is left.
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

// PhaseResult summarises every probe evaluated in one phase.
type PhaseResult struct {
	Phase  string         `json:"phase"` // steady-state, observing (slo), abort, recovering
	Probes []ProbeSummary `json:"probes"`
}

// ProbeSummary is what one probe did in one phase.
type ProbeSummary struct {
	Name         string        `json:"name"`
	Query        string        `json:"query"`
	Condition    string        `json:"condition"` // e.g. ">= 0.99"
	Evaluations  int           `json:"evaluations"`
	Failures     int           `json:"failures"`
	FirstFailure *time.Time    `json:"firstFailure,omitempty"`
	Last         probes.Result `json:"last"`
}

// Event is one line of the run's timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase"`
	Message string    `json:"message"`
}

// StartRequest is the body of POST /v1/runs.
type StartRequest struct {
	Experiment string `json:"experiment"`
	DryRun     bool   `json:"dryRun,omitempty"`
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
	AbortedRuns []string     `json:"abortedRuns"`
	Agents      []HaltedNode `json:"agents"`
}

// HaltedNode is one agent's part of a halt.
type HaltedNode struct {
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	Reverted int    `json:"reverted"` // faults the agent reverted
	// Error says why the agent could not be halted (it reverts on its own
	// at its faults' lease or deadline).
	Error string `json:"error,omitempty"`
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
//	POST /v1/runs                  StartRequest -> 201 Run (404 unknown experiment, 409 already running)
//	GET  /v1/runs                  []Run (newest first, without Events/Current)
//	GET  /v1/runs/{id}             Run
//	POST /v1/runs/{id}/abort       202 Run
//	POST /v1/halt[?cluster=NAME]   200 HaltResult (abort every run, revert every fault)
//	GET  /v1/agents                []AgentInfo (every configured agent, asked now)
