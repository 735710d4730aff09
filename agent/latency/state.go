package latency

import (
	"encoding/json"
	"fmt"

	"github.com/chaosd/chaosd/agent/kubepod"
)

// State is the driver's ledger state for one fault: per interface, the
// CIDRs shaped there, the root qdisc it had before and, once applied, the
// slot the fault occupies in the agent's HTB root.
type State struct {
	Interfaces []IfaceState `json:"interfaces"`
	// NetNS is the identity of the pod's network namespace the fault is
	// in (pod-scoped faults only; the pod itself is in the fault). Its
	// interfaces are the pod's, not the node's.
	NetNS *kubepod.NSID `json:"netns,omitempty"`
	// Table is the fault's nftables table (TableName), which marks its
	// packets, in the same namespace.
	Table string `json:"table,omitempty"`
}

// IfaceState is one shaped interface of a fault.
type IfaceState struct {
	Name  string   `json:"name"`
	Index int      `json:"index"`
	CIDRs []string `json:"cidrs"`
	// Previous is the root qdisc seen by Prepare: a kernel default
	// (handle 0:), restored by deleting the agent's root, or the agent's
	// own root when another latency fault already shapes the interface.
	Previous Qdisc `json:"previousRoot"`
	// Slot is 0 until Apply installed the fault here.
	Slot int `json:"slot,omitempty"`
}

// DecodeState reads a state written by Prepare or Apply; empty input is
// an empty state.
func DecodeState(raw json.RawMessage) (State, error) {
	var st State
	if len(raw) == 0 || string(raw) == "null" {
		return st, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return State{}, fmt.Errorf("decode latency state: %w", err)
	}
	for _, is := range st.Interfaces {
		if is.Slot != 0 && (is.Slot < FirstSlot || is.Slot > LastSlot) {
			return State{}, fmt.Errorf("decode latency state: interface %s: slot %d out of range", is.Name, is.Slot)
		}
	}
	return st, nil
}

// Owned returns, per interface name of the node's namespace, the slots the
// given states hold (states of pod-scoped faults are in other namespaces
// and own nothing here).
func Owned(states []json.RawMessage) map[string]map[int]bool {
	owned := map[string]map[int]bool{}
	for _, raw := range states {
		st, err := DecodeState(raw)
		if err != nil || st.NetNS != nil {
			continue
		}
		for _, is := range st.Interfaces {
			if is.Slot == 0 {
				continue
			}
			if owned[is.Name] == nil {
				owned[is.Name] = map[int]bool{}
			}
			owned[is.Name][is.Slot] = true
		}
	}
	return owned
}

// OwnedTables returns the nftables tables of the node's namespace the
// given states hold (pod-scoped faults' tables are in other namespaces).
func OwnedTables(states []json.RawMessage) map[string]bool {
	owned := map[string]bool{}
	for _, raw := range states {
		st, err := DecodeState(raw)
		if err == nil && st.NetNS == nil && st.Table != "" {
			owned[st.Table] = true
		}
	}
	return owned
}
