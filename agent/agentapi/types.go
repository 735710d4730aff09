// Package agentapi is the wire contract between chaosd and the node agent:
// JSON types for the agent's HTTP API, the fault kind names, and the rules
// for network targets (CIDRs and ports) that the experiment spec and the
// agent's drivers share. It imports only the standard library; the client
// is agent/agentclient.
package agentapi

import (
	"encoding/json"
	"time"
)

// Kind names a fault kind. The names are declared here once; the
// experiment spec, chaosd and the agent's drivers all use these constants.
type Kind string

// Fault kinds the agent knows.
const (
	KindPartition  Kind = "partition"   // drop traffic to/from CIDRs (nftables)
	KindLatency    Kind = "latency"     // delay/loss toward CIDRs (HTB + u32 + netem)
	KindMemory     Kind = "memory"      // a stressor process in a cgroup
	KindException  Kind = "exception"   // Chaos Monkey for Spring Boot exception assault
	KindAppLatency Kind = "app-latency" // Chaos Monkey for Spring Boot latency assault
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
	// ReasonVanished: a renewal found the fault's state gone from the
	// kernel or the service (flushed tables, a restarted service, a killed
	// stressor): the fault did not hold to its end, and the agent cleaned
	// up whatever was left of it.
	ReasonVanished = "vanished"
)

// What ends a fault by itself when no agent reverts it (the agent died,
// hangs, or chaosd stopped renewing and the agent cannot act):
// FaultStatus.SelfExpiry.
const (
	// SelfExpiryKernel: the fault's CIDRs and ports are nftables set
	// elements with a timeout (partition, latency). The kernel drops them
	// at SelfExpiresAt unless the agent renews them, and the fault ends:
	// nothing matches its drop or mark rules any more.
	SelfExpiryKernel = "kernel"
	// SelfExpiryProcess: the fault is a process of its own holding its own
	// deadline (the memory stressor). It frees its memory and exits at
	// SelfExpiresAt unless the agent renews it (and at once when the agent
	// dies).
	SelfExpiryProcess = "process"
)

// LeaseEnd is when a lease of leaseSeconds taken at now ends: never after
// deadline; a lease too long to represent ends at the deadline.
func LeaseEnd(now, deadline time.Time, leaseSeconds float64) time.Time {
	left := deadline.Sub(now)
	if leaseSeconds < left.Seconds() {
		return now.Add(time.Duration(leaseSeconds * float64(time.Second)))
	}
	return deadline
}

// Fault is what chaosd asks an agent to apply.
type Fault struct {
	// ID is unique per agent, chosen by chaosd ("<runID>.<faultName>").
	ID         string      `json:"id"`
	RunID      string      `json:"runId,omitempty"`
	Experiment string      `json:"experiment,omitempty"`
	Kind       Kind        `json:"kind"`
	Partition  *Partition  `json:"partition,omitempty"`
	Latency    *Latency    `json:"latency,omitempty"`
	Memory     *Memory     `json:"memory,omitempty"`
	SpringBoot *SpringBoot `json:"springBoot,omitempty"` // exception and app-latency
	// Pod, when set, scopes the fault to one pod on the agent's node:
	// partition and latency act in the pod's network namespace, memory in
	// the pod's cgroup. Nil: the node itself.
	Pod *Pod `json:"pod,omitempty"`
	// Deadline is absolute: the agent reverts at this time whatever happens.
	Deadline time.Time `json:"deadline"`
	// LeaseSeconds: the agent reverts if the lease is not renewed within
	// this many seconds of the last renewal (or of the apply).
	LeaseSeconds float64 `json:"leaseSeconds"`
}

// Pod names a pod on the agent's node. The agent finds the pod's cgroup
// from its UID and QoS class (under the cgroupfs or the systemd cgroup
// driver, cgroup v1 or v2) and the pod's network namespace from a process
// in that cgroup.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// QOSClass is the pod's status.qosClass: Guaranteed, Burstable or
	// BestEffort (it places the pod's cgroup).
	QOSClass string `json:"qosClass,omitempty"`
	// ContainerIDs are the runtime IDs of the pod's containers, without
	// the "containerd://" scheme.
	ContainerIDs []string `json:"containerIds,omitempty"`
}

// Partition drops traffic to and from CIDRs in the agent's network namespace.
type Partition struct {
	CIDRs     []string `json:"cidrs"`               // e.g. "10.1.0.0/16"
	Direction string   `json:"direction,omitempty"` // egress|ingress|both (default both)
	Ports     []uint16 `json:"ports,omitempty"`     // empty: all ports, all protocols
	// AllowWide lets the partition cut CIDRs that would cut the node off:
	// every address (0.0.0.0/0, ::/0) or the networks the agent protects
	// (its --protect-cidr: the management and Prometheus networks).
	// Without it the agent refuses such a fault with 400.
	AllowWide bool `json:"allowWide,omitempty"`
}

// Latency delays (and optionally drops) traffic toward CIDRs, leaving all
// other traffic on the interface untouched.
type Latency struct {
	// Interface to shape; empty: every interface the kernel routes the
	// CIDRs through.
	Interface string   `json:"interface,omitempty"`
	CIDRs     []string `json:"cidrs"`
	Ports     []uint16 `json:"ports,omitempty"` // remote ports; empty: all traffic to the CIDRs
	DelayMs   float64  `json:"delayMs"`
	JitterMs  float64  `json:"jitterMs,omitempty"`
	// CorrelationPercent applies to delay and loss (0-100).
	CorrelationPercent float64 `json:"correlationPercent,omitempty"`
	LossPercent        float64 `json:"lossPercent,omitempty"` // 0-100
	// RateBytesPerSecond caps the shaped class; 0: no cap.
	RateBytesPerSecond uint64 `json:"rateBytesPerSecond,omitempty"`
}

// Memory runs a stressor that allocates and touches memory.
type Memory struct {
	// Cgroup is the target cgroup path relative to the cgroup root (v2)
	// or the memory controller's root (v1), e.g. "kubepods/pod123/abc";
	// empty: the node (the agent's own cgroup root).
	Cgroup string `json:"cgroup,omitempty"`
	// Exactly one of SizeBytes and Fraction: Fraction is of the cgroup's
	// memory limit, or of node memory when it has none.
	SizeBytes uint64  `json:"sizeBytes,omitempty"`
	Fraction  float64 `json:"fraction,omitempty"`
	// RampSeconds spreads the allocation; 0: at once.
	RampSeconds float64 `json:"rampSeconds,omitempty"`
}

// SpringBoot configures a Chaos Monkey for Spring Boot assault on one
// service instance through its actuator.
type SpringBoot struct {
	// URL is the service's base URL, e.g. "http://10.1.1.10:8082"; the
	// actuator is at URL + "/actuator/chaosmonkey".
	URL string `json:"url"`
	// Level: 1 in Level requests is attacked (1-10000).
	Level         int  `json:"level"`
	Deterministic bool `json:"deterministic,omitempty"`
	// LatencyRangeStartMs/EndMs for app-latency.
	LatencyRangeStartMs int `json:"latencyRangeStartMs,omitempty"`
	LatencyRangeEndMs   int `json:"latencyRangeEndMs,omitempty"`
	// Exception for the exception kind; nil: Chaos Monkey's default.
	Exception *SpringException `json:"exception,omitempty"`
	// Watchers to enable (see SpringWatchers); empty: DefaultSpringWatchers.
	Watchers []string `json:"watchers,omitempty"`
}

// SpringException is the exception Chaos Monkey throws.
type SpringException struct {
	Type      string               `json:"type"`
	Method    string               `json:"method,omitempty"`
	Arguments []SpringExceptionArg `json:"arguments,omitempty"`
}

// SpringExceptionArg is one constructor argument of the exception.
type SpringExceptionArg struct {
	Type  string `json:"type"`
	Value string `json:"value"`
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
	// Undo, for faults another party can undo without the agent
	// (exception and app-latency: a SpringBootUndo), is what that takes:
	// chaosd keeps it in the run record and undoes the fault itself when
	// the agent stops answering.
	Undo json.RawMessage `json:"undo,omitempty"`
	// SelfExpiry says what ends the fault without any agent:
	// SelfExpiryKernel (partition, latency), SelfExpiryProcess (memory),
	// or empty when nothing on the node ends it (exception, app-latency:
	// if the agent is gone, chaosd undoes those itself with Undo).
	SelfExpiry string `json:"selfExpiry,omitempty"`
	// SelfExpiresAt (with SelfExpiry set) is when that mechanism ends the
	// fault at the latest, as set by the apply or the last renewal:
	// LeaseExpires plus the driver's margin (250 ms), so that a live
	// agent's own revert at LeaseExpires comes first and a renewal that
	// arrives in time always finds the fault in place. It keeps its last
	// value after the fault ended.
	SelfExpiresAt time.Time `json:"selfExpiresAt,omitzero"`
}

// SpringBootUndo undoes a Chaos Monkey fault through the service's
// actuator: if Chaos Monkey was off, POST /disable; POST Assaults to
// /assaults and Watchers to /watchers (the captured values of exactly the
// fields the fault wrote); if it was on, POST /enable.
type SpringBootUndo struct {
	URL      string                     `json:"url"` // the service's base URL
	Enabled  bool                       `json:"enabled"`
	Assaults map[string]json.RawMessage `json:"assaults"`
	Watchers map[string]json.RawMessage `json:"watchers"`
}

// Status describes an agent.
type Status struct {
	Node         string          `json:"node"`
	Version      string          `json:"version"`
	StartedAt    time.Time       `json:"startedAt"`
	Capabilities map[string]bool `json:"capabilities"`
	// Unavailable says, per fault kind this node cannot run, why.
	Unavailable map[string]string `json:"unavailable,omitempty"`
	Faults      []FaultStatus     `json:"faults"` // active faults
}

// RenewRequest extends a fault's lease.
type RenewRequest struct {
	LeaseSeconds float64 `json:"leaseSeconds"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}
