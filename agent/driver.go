package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// Driver applies and reverts one kind of fault. The agent core owns the
// ledger, the deadline and lease timers, the per-fault serialisation and
// the API; a driver only knows its kind's mechanics. Every method but Kind
// may be called after a crash with state from the ledger, so they must be
// idempotent: "already gone" is success.
//
// State is the driver's own JSON (e.g. a table name, the qdisc an
// interface had before, a stressor's PID and start time, the actuator
// settings a service had before). Prepare's state is written to the
// ledger (fsynced) before Apply touches anything; Apply's returned state,
// if any, replaces it once applied.
//
// Concurrency. The agent calls a driver for different faults at the same
// time (it holds no lock of its own across a driver call), but never
// twice at once for the same fault: Prepare then Apply, later Revert then
// Remaining, one after the other. A driver whose faults share something
// (one qdisc tree per interface, one actuator per service) serialises
// that itself.
//
// Contexts. ctx ends when the agent no longer wants the call to go on: an
// inject's Prepare and Apply get a context that is cancelled when a
// revert, a halt or the shutdown asks for the fault while it is being
// applied, and that ends at the fault's deadline; Revert, Remaining,
// Probe and Prune get a context with a timeout. A driver should return
// promptly once ctx ends; an Apply that returns early must leave nothing
// Revert(f, state) could not remove. A driver that ignores ctx delays only
// its own fault: the agent reverts that fault as soon as the call
// returns.
type Driver interface {
	// Kind is the fault kind served (agentapi.Kind*).
	Kind() agentapi.Kind
	// Probe reports once, at start-up, whether this node can run the
	// kind; the error says what is missing ("no sch_netem in this
	// kernel"). Faults of a kind whose probe failed are refused before
	// anything is applied, and GET /v1/status reports the reason.
	Probe(ctx context.Context) error
	// Prepare validates the fault's parameters (errors name the field,
	// e.g. "latency.delayMs: must be > 0") and captures what Revert will
	// need, without changing anything. It may fill in defaults of its
	// kind's parameters in f (the partition driver sets the effective
	// direction), so the ledger and the fault's status show what is
	// applied; it must not change the fields every fault has (ID, Kind,
	// RunID, Deadline, LeaseSeconds).
	Prepare(ctx context.Context, f *agentapi.Fault) (state json.RawMessage, err error)
	// Apply makes the fault real. On error it must leave nothing behind
	// that Revert(f, state) could not remove.
	Apply(ctx context.Context, f agentapi.Fault, state json.RawMessage) (json.RawMessage, error)
	// Revert removes the fault.
	Revert(ctx context.Context, f agentapi.Fault, state json.RawMessage) error
	// Remaining reports what of the fault is still in place after a
	// revert (empty when nothing is).
	Remaining(ctx context.Context, f agentapi.Fault, state json.RawMessage) (string, error)
	// Prune removes tagged state of this kind that no active fault owns
	// (keep lists the active faults' states) and returns what it removed.
	Prune(ctx context.Context, keep []json.RawMessage) ([]string, error)
}

// Undoer is implemented by drivers whose faults another party can undo
// without the agent (Chaos Monkey faults, through the service's
// actuator): Undo returns what that takes, handed out in the fault's
// status (agentapi.FaultStatus.Undo).
type Undoer interface {
	Undo(f agentapi.Fault, state json.RawMessage) (json.RawMessage, error)
}

// SelfExpiring is implemented by drivers whose faults end by themselves
// when no agent reverts them: the agent may be dead (SIGKILL, OOM kill),
// hung or unable to act, and its own lease timer then never fires. A
// partition's and a latency fault's CIDRs and ports are nftables set
// elements that time out (agent/nftexpiry); the memory stressor holds a
// deadline of its own.
//
// Contract: Apply sets the fault's own expiry to
// agentapi.LeaseEnd(now, f.Deadline, f.LeaseSeconds) plus the margin, now
// being taken during Apply (so no later than the agent's LeaseExpires plus
// the margin); each Renew moves it to until plus the margin. The margin
// lets the agent's own revert at the lease's end come first while it is
// alive. The agent reports both in the fault's status (SelfExpiry,
// SelfExpiresAt = LeaseExpires + margin, an upper bound).
type SelfExpiring interface {
	// SelfExpiry names what ends the driver's faults
	// (agentapi.SelfExpiryKernel or agentapi.SelfExpiryProcess) and the
	// most they outlive their lease by.
	SelfExpiry() (how string, margin time.Duration)
	// Renew checks the fault is wholly in place and moves its own expiry
	// to until plus the margin. It returns what is in place, or "" when
	// the fault is not (wholly) there any more: then it extended nothing,
	// and the agent cleans up and reports it vanished. An error means the
	// expiry may not have moved: the agent does not extend the lease.
	// Renew runs while the fault is active, possibly at the same time as
	// another Renew or, when the lease runs out meanwhile, its Revert.
	Renew(ctx context.Context, f agentapi.Fault, state json.RawMessage, until time.Time) (string, error)
}

// NodeBound is implemented by drivers whose faults exist only in this
// node's kernel (nftables tables, qdiscs, processes, cgroups, in the
// node's or its pods' namespaces), so that a crash of the node's kernel
// ends them too. The agent writes such a fault's revert record to the
// ledger without waiting for the disk: that record can only be lost with
// the node's kernel (a killed agent loses nothing it wrote), which took
// the fault with it, and the revert the next start repeats then finds
// nothing to do. A driver whose faults live elsewhere (springboot: in the
// service) does not implement it: its revert record is on disk before the
// revert answers, since repeating that revert much later could undo a
// change made since (another fault's assault on the same service).
type NodeBound interface {
	// NodeBound reports whether the driver's faults end with this node's
	// kernel.
	NodeBound() bool
}

// nodeBound says whether drv's faults end with this node's kernel.
func nodeBound(drv Driver) bool {
	nb, ok := drv.(NodeBound)
	return ok && nb.NodeBound()
}
