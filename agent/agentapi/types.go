// Package agentapi is the wire contract between chaosd and the node agent:
// JSON types for the agent's HTTP API and a client for it.
package agentapi

import "time"

// Fault kinds the agent knows.
const (
	KindPartition = "partition"
)

// Fault states.
const (
	StateActive   = "active"
	StateReverted = "reverted"
	StateFailed   = "failed" // apply failed; whatever was applied is reverted
)

// Revert reasons.
const (
	ReasonRequested = "requested"        // DELETE /v1/faults/{id}
	ReasonDeadline  = "deadline"         // the fault's absolute deadline passed
	ReasonLease     = "lease-expired"    // chaosd stopped renewing
	ReasonShutdown  = "shutdown"         // SIGTERM
	ReasonStartup   = "startup-recovery" // found in the ledger at start
	ReasonHalt      = "halt"             // POST /v1/halt
)

// Fault is what chaosd asks an agent to apply.
type Fault struct {
	// ID is unique per agent, chosen by chaosd ("<runID>.<faultName>").
	ID         string     `json:"id"`
	RunID      string     `json:"runId,omitempty"`
	Experiment string     `json:"experiment,omitempty"`
	Kind       string     `json:"kind"`
	Partition  *Partition `json:"partition,omitempty"`
	// Deadline is absolute: the agent reverts at this time whatever happens.
	Deadline time.Time `json:"deadline"`
	// LeaseSeconds: the agent reverts if the lease is not renewed within
	// this many seconds of the last renewal (or of the apply).
	LeaseSeconds float64 `json:"leaseSeconds"`
}

// Partition drops traffic to and from CIDRs in the agent's network namespace.
type Partition struct {
	CIDRs     []string `json:"cidrs"`               // e.g. "10.1.0.0/16"
	Direction string   `json:"direction,omitempty"` // egress|ingress|both (default both)
	Ports     []uint16 `json:"ports,omitempty"`     // empty: all ports, all protocols
}

// FaultStatus is the agent's view of one fault.
type FaultStatus struct {
	Fault        Fault     `json:"fault"`
	State        string    `json:"state"`
	AppliedAt    time.Time `json:"appliedAt,omitempty"`
	LeaseExpires time.Time `json:"leaseExpires,omitempty"`
	RevertedAt   time.Time `json:"revertedAt,omitempty"`
	RevertReason string    `json:"revertReason,omitempty"`
	// Verified is set after a revert once the agent has checked that no
	// kernel state of the fault is left.
	Verified bool   `json:"verified,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Status describes an agent.
type Status struct {
	Node         string          `json:"node"`
	Version      string          `json:"version"`
	StartedAt    time.Time       `json:"startedAt"`
	Capabilities map[string]bool `json:"capabilities"`
	Faults       []FaultStatus   `json:"faults"` // active faults
}

// RenewRequest extends a fault's lease.
type RenewRequest struct {
	LeaseSeconds float64 `json:"leaseSeconds"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
