package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
)

// Reverter is the part of an agent's API a revert needs.
type Reverter interface {
	Revert(ctx context.Context, id string) (agentapi.FaultStatus, error)
}

// revertAttempts and revertBackoff: a revert is retried, since a fault
// left behind is the one failure chaosd must never shrug off.
const (
	revertAttempts = 3
	revertBackoff  = 500 * time.Millisecond
)

// UnknownToAgent is the revert reason recorded when the agent never heard
// of the fault (it was never applied, or the agent's ledger was lost with
// its kernel state): there is nothing to revert.
const UnknownToAgent = "unknown to agent"

// RevertFault asks the agent holding fr to revert it, up to three times
// (each call bounded by timeout), and records the outcome in fr: when and
// why it was reverted and whether the agent verified that no state is
// left, or the error. It returns an error when the fault could not be
// confirmed gone; the agent then still reverts it at its lease or
// deadline. The runner's revert and chaosd's restart recovery both use it.
func RevertFault(ctx context.Context, a Reverter, fr *api.FaultRecord, timeout time.Duration) error {
	if a == nil {
		err := errors.New("no agent for this node: cannot confirm the revert")
		fr.Error = joinReasons(fr.Error, "revert: "+err.Error())
		return err
	}
	var st agentapi.FaultStatus
	var err error
	for attempt := range revertAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(revertBackoff):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		st, err = a.Revert(cctx, fr.AgentFaultID)
		cancel()
		var ae *agentapi.APIError
		if errors.As(err, &ae) && ae.Status == 404 {
			st, err = agentapi.FaultStatus{State: agentapi.StateReverted, Verified: true, RevertReason: UnknownToAgent}, nil
		}
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		fr.Error = joinReasons(fr.Error, "revert: "+err.Error())
		return fmt.Errorf("%w (the agent reverts it by itself at its lease or deadline)", err)
	}
	at := st.RevertedAt
	if at.IsZero() {
		at = time.Now()
	}
	fr.RevertedAt, fr.RevertReason, fr.Verified = &at, st.RevertReason, st.Verified
	if !st.Verified {
		return errors.New("agent could not verify removal")
	}
	return nil
}
