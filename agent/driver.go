package agent

import (
	"encoding/json"
	"fmt"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/partition"
)

// Driver applies and reverts one kind of fault. The agent core owns the
// ledger, the deadline and lease timers, locking and the API; a driver
// only knows its kind's mechanics. Every method but Kind may be called
// after a crash with state from the ledger, so they must be idempotent:
// "already gone" is success.
//
// State is the driver's own JSON (e.g. a table name, the qdisc an
// interface had before, a stressor's PID and start time, the actuator
// settings a service had before). Prepare's state is written to the
// ledger (fsynced) before Apply touches anything; Apply's returned state,
// if any, replaces it once applied.
type Driver interface {
	// Kind is the fault kind served (agentapi.Kind*).
	Kind() agentapi.Kind
	// Probe reports once, at start-up, whether this node can run the
	// kind; the error says what is missing ("no sch_netem in this
	// kernel"). Faults of a kind whose probe failed are refused before
	// anything is applied.
	Probe() error
	// Prepare validates the fault's parameters (errors name the field,
	// e.g. "latency.delayMs: must be > 0") and captures what Revert will
	// need, without changing anything.
	Prepare(f agentapi.Fault) (state json.RawMessage, err error)
	// Apply makes the fault real. On error it must leave nothing behind
	// that Revert(f, state) could not remove.
	Apply(f agentapi.Fault, state json.RawMessage) (json.RawMessage, error)
	// Revert removes the fault.
	Revert(f agentapi.Fault, state json.RawMessage) error
	// Remaining reports what of the fault is still in place after a
	// revert (empty when nothing is).
	Remaining(f agentapi.Fault, state json.RawMessage) (string, error)
	// Prune removes tagged state of this kind that no active fault owns
	// (keep lists the active faults' states) and returns what it removed.
	Prune(keep []json.RawMessage) ([]string, error)
}

// backend is the nftables seam of the partition driver: the real applier
// in production, a stateful fake in unprivileged tests.
type backend interface {
	Apply(partition.Plan) error
	Remove(table string) error
	Exists(table string) (bool, error)
	ListTagged() ([]string, error)
	Probe() error
}

// partitionDriver cuts traffic with one nftables table per fault.
type partitionDriver struct {
	be backend
	// exempt returns the TCP ports of the agent's own control channel,
	// which no partition may cut.
	exempt func() []uint16
}

type partitionState struct {
	Table string `json:"table"`
}

func (d *partitionDriver) Kind() agentapi.Kind { return agentapi.KindPartition }

func (d *partitionDriver) Probe() error { return d.be.Probe() }

func (d *partitionDriver) Prepare(f agentapi.Fault) (json.RawMessage, error) {
	if _, err := partition.Parse(f.Partition); err != nil {
		return nil, err
	}
	return json.Marshal(partitionState{Table: partition.TableName(f.ID)})
}

func (d *partitionDriver) Apply(f agentapi.Fault, _ json.RawMessage) (json.RawMessage, error) {
	spec, err := partition.Parse(f.Partition)
	if err != nil {
		return nil, err
	}
	var exempt []uint16
	if d.exempt != nil {
		exempt = d.exempt()
	}
	if err := d.be.Apply(partition.PlanFault(f.ID, spec, exempt)); err != nil {
		return nil, fmt.Errorf("apply partition: %w", err)
	}
	return nil, nil
}

func (d *partitionDriver) table(f agentapi.Fault, state json.RawMessage) string {
	var st partitionState
	if json.Unmarshal(state, &st) == nil && st.Table != "" {
		return st.Table
	}
	return partition.TableName(f.ID)
}

func (d *partitionDriver) Revert(f agentapi.Fault, state json.RawMessage) error {
	return d.be.Remove(d.table(f, state))
}

func (d *partitionDriver) Remaining(f agentapi.Fault, state json.RawMessage) (string, error) {
	t := d.table(f, state)
	exists, err := d.be.Exists(t)
	if err != nil || !exists {
		return "", err
	}
	return "nftables table " + t, nil
}

func (d *partitionDriver) Prune(keep []json.RawMessage) ([]string, error) {
	owned := map[string]bool{}
	for _, s := range keep {
		var st partitionState
		if json.Unmarshal(s, &st) == nil {
			owned[st.Table] = true
		}
	}
	tables, err := d.be.ListTagged()
	if err != nil {
		return nil, fmt.Errorf("list leftover tables: %w", err)
	}
	var removed []string
	for _, t := range tables {
		if owned[t] {
			continue
		}
		if err := d.be.Remove(t); err != nil {
			return removed, fmt.Errorf("remove leftover table %s: %w", t, err)
		}
		removed = append(removed, "nftables table "+t)
	}
	return removed, nil
}
