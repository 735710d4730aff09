package api

import "time"

// StartRequest is the body of POST /v1/runs.
type StartRequest struct {
	Experiment string `json:"experiment"`
	DryRun     bool   `json:"dryRun,omitempty"`
	// Force starts the run inside a freeze window (else refused with
	// 409); the record names the window (Run.ForcedFreeze).
	Force bool `json:"force,omitempty"`
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
//	POST /v1/runs                  StartRequest -> 201 Run (404 unknown experiment, 409 already running)
//	GET  /v1/runs                  []Run (newest first, without Events/Current)
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
//
// POST /v1/runs inside a freeze window answers 409 unless the request
// has "force": true.
