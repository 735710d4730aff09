// Package api is the wire contract between chaosctl and chaosd: the run
// record and the JSON bodies of chaosd's HTTP API. It imports only the
// standard library, so every layer (the runner, chaosd, chaosctl, the
// lab) can share it without linking the others' dependencies. The HTTP
// client is daemon/client.
package api

import (
	"encoding/json"
	"time"
)

// Phase is where a run is.
type Phase string

// Phases of a run, in order.
const (
	PhasePending     Phase = "pending"
	PhasePreflight   Phase = "preflight"
	PhaseSteadyState Phase = "steady-state"
	PhaseInjecting   Phase = "injecting"
	PhaseEffects     Phase = "effects" // proving the faults took hold
	PhaseObserving   Phase = "observing"
	PhaseReverting   Phase = "reverting"
	PhaseRecovering  Phase = "recovering"
	PhaseDone        Phase = "done"
)

// PhaseAbort names the abort conditions' entry in Run.Phases (they are
// evaluated during PhaseObserving, summarised apart).
const PhaseAbort Phase = "abort"

// Verdict is how a run ended.
type Verdict string

// Verdicts.
const (
	VerdictPass    Verdict = "pass"    // steady state held, no abort, recovered within RTO
	VerdictFail    Verdict = "fail"    // the system under test failed the experiment
	VerdictAborted Verdict = "aborted" // an abort condition fired; faults reverted at once
	VerdictError   Verdict = "error"   // the tool could not do its job (or the run was interrupted)
)

// Verdicts lists every verdict, in the order reports show them.
var Verdicts = []Verdict{VerdictPass, VerdictFail, VerdictAborted, VerdictError}

// Trigger says who started a run.
type Trigger string

// Triggers.
const (
	TriggerManual   Trigger = "manual"
	TriggerSchedule Trigger = "schedule"
)

// Run is the record of one experiment run. It is persisted by chaosd after
// every change and survives restarts.
type Run struct {
	ID         string  `json:"id"`
	Experiment string  `json:"experiment"`
	Trigger    Trigger `json:"trigger"`
	DryRun     bool    `json:"dryRun,omitempty"`
	// AdHoc is set when the experiment came with the request (chaosctl
	// run -f FILE) instead of from chaosd's library: it keeps the
	// experiment exactly as it ran.
	AdHoc *AdHoc `json:"adHoc,omitempty"`
	// ScheduledAt is the schedule trigger a scheduled run is for.
	// MissedPolicy is set when that trigger was missed while chaosd was
	// down and the run started late by the schedule's missedRuns policy
	// ("runOnce").
	ScheduledAt  *time.Time `json:"scheduledAt,omitempty"`
	MissedPolicy string     `json:"missedPolicy,omitempty"`
	// ForcedFreeze names the freeze window a run on request was forced
	// through (StartRequest.Force).
	ForcedFreeze string `json:"forcedFreeze,omitempty"`
	// SuiteRun is the suite run (SuiteRun.ID) this run is part of.
	SuiteRun string  `json:"suiteRun,omitempty"`
	Phase    Phase   `json:"phase"`
	Verdict  Verdict `json:"verdict,omitempty"`
	// Reason explains the verdict in one sentence.
	Reason string `json:"reason,omitempty"`
	// Interrupted is set when chaosd restarted while the run was going.
	Interrupted bool `json:"interrupted,omitempty"`
	// BlindSeconds is how long the probes could not be evaluated
	// (Prometheus unreachable or failing queries) while the run judged the
	// system: those rounds count neither for nor against it.
	BlindSeconds float64 `json:"blindSeconds,omitempty"`

	CreatedAt  time.Time  `json:"createdAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`

	Times Times `json:"times"`
	RTO   RTO   `json:"rto"`

	Faults []FaultRecord `json:"faults"`
	Phases []PhaseResult `json:"phases"`
	// Alerts are the expected and forbidden alerts and what they did;
	// Silences the Alertmanager silences the run created.
	Alerts   []AlertCheck `json:"alerts,omitempty"`
	Silences []Silence    `json:"silences,omitempty"`
	// DataLoss is the RPO check, when the experiment has one.
	DataLoss *DataLoss `json:"dataLoss,omitempty"`
	// Current holds the latest result of every probe evaluated in the
	// current phase (live progress).
	Current []ProbeResult `json:"current,omitempty"`
	Events  []Event       `json:"events"`
}

// AdHoc is the experiment an ad hoc run ran: the text of the experiment
// file chaosctl sent, as chaosd validated and ran it.
type AdHoc struct {
	// File is the file's name on the client (informative: it names the
	// file in messages, nothing is read from it).
	File string `json:"file,omitempty"`
	// SHA256 is the hex SHA-256 of Spec.
	SHA256 string `json:"sha256"`
	// Spec is the experiment file (YAML), byte for byte.
	Spec string `json:"spec"`
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
	// RevertedBy says who undid the fault: "agent" (asked by chaosd, or on
	// its own at its lease or deadline), or "chaosd" (through the
	// service's actuator, when the agent stopped answering).
	RevertedBy string `json:"revertedBy,omitempty"`
	// Verified: whoever reverted it checked that nothing of the fault is
	// left (the agent: no kernel state; chaosd: the settings read back).
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
	// SelfExpiry says what ends the fault with no agent and no chaosd:
	// "kernel" (partition, latency: nftables set elements that time out),
	// "process" (memory: the stressor's own deadline); empty for Chaos
	// Monkey assaults (chaosd undoes those itself, see Undo).
	// SelfExpiresAt is the latest time that ends it, as of the agent's
	// last answer.
	SelfExpiry    string     `json:"selfExpiry,omitempty"`
	SelfExpiresAt *time.Time `json:"selfExpiresAt,omitempty"`
	// Undo, for faults chaosd can undo without the agent (Chaos Monkey
	// assaults), is the agent's undo document: the actuator URL and the
	// settings to put back.
	Undo json.RawMessage `json:"undo,omitempty"`
	// TargetChanged says what happened to the target during the run (in
	// Kubernetes: its pod was deleted or stopped being Ready).
	TargetChanged string `json:"targetChanged,omitempty"`
}

// PhaseResult summarises every probe evaluated in one phase.
type PhaseResult struct {
	Phase  Phase          `json:"phase"` // steady-state, observing (slo), abort, recovering
	Probes []ProbeSummary `json:"probes"`
}

// ProbeSummary is what one probe did in one phase.
type ProbeSummary struct {
	Name         string      `json:"name"`
	Query        string      `json:"query"`
	Condition    string      `json:"condition"` // e.g. ">= 0.99"
	Evaluations  int         `json:"evaluations"`
	Failures     int         `json:"failures"`
	FirstFailure *time.Time  `json:"firstFailure,omitempty"`
	Last         ProbeResult `json:"last"`
}

// Event is one line of the run's timeline.
type Event struct {
	Time    time.Time `json:"time"`
	Phase   Phase     `json:"phase"`
	Message string    `json:"message"`
}
