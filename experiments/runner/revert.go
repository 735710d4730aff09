package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/springboot"
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
		if fr.Undo != nil {
			return undoWithoutAgent(ctx, fr, err, timeout)
		}
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
		if fr.Undo != nil {
			return undoWithoutAgent(ctx, fr, err, timeout)
		}
		fr.Error = joinReasons(fr.Error, "revert: "+err.Error()+"; "+selfExpiryFact(fr))
		return fmt.Errorf("%w (%s)", err, selfExpiryFact(fr))
	}
	at := st.RevertedAt
	if at.IsZero() {
		at = time.Now()
	}
	fr.RevertedAt, fr.RevertReason, fr.Verified, fr.RevertedBy = &at, st.RevertReason, st.Verified, "agent"
	if !st.Verified {
		return errors.New("agent could not verify removal")
	}
	return nil
}

// ReasonUndoneByChaosd is the revert reason of a fault chaosd undid itself
// because its agent did not answer.
const ReasonUndoneByChaosd = "agent unreachable: undone by chaosd"

// undoWithoutAgent undoes a fault whose agent did not answer from the
// undo document the agent handed out at inject (Chaos Monkey assaults:
// straight through the service's actuator), and reads the settings back.
func undoWithoutAgent(ctx context.Context, fr *api.FaultRecord, agentErr error, timeout time.Duration) error {
	var err error
	var left string
	for attempt := range revertAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(revertBackoff):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		left, err = springboot.UndoWithoutAgent(cctx, nil, fr.Undo)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		fr.Error = joinReasons(fr.Error, fmt.Sprintf("revert: agent: %v; chaosd's own undo: %v", agentErr, err))
		return fmt.Errorf("agent: %w; chaosd's own undo failed too: %v", agentErr, err)
	}
	now := time.Now()
	fr.RevertedAt, fr.RevertReason, fr.RevertedBy, fr.Verified = &now, ReasonUndoneByChaosd, "chaosd", left == ""
	fr.Error = joinReasons(fr.Error, "agent did not answer the revert: "+agentErr.Error())
	if left != "" {
		fr.Error = joinReasons(fr.Error, "still in place after chaosd's undo: "+left)
		return fmt.Errorf("chaosd undid the fault without its agent, but %s", left)
	}
	return nil
}

// selfExpiryFact says what ends a fault whose agent did not confirm the
// revert, from what the agent last said about it.
func selfExpiryFact(fr *api.FaultRecord) string {
	by := "within a lease of chaosd's last renewal"
	if t := fr.SelfExpiresAt; t != nil && t.After(time.Now()) {
		by = "by " + t.UTC().Format(time.RFC3339Nano)
	}
	switch fr.SelfExpiry {
	case agentapi.SelfExpiryKernel:
		return "the kernel drops it by itself " + by + " (nftables set timeout), agent or not"
	case agentapi.SelfExpiryProcess:
		return "its process ends by itself " + by + " (its own deadline), agent or not"
	}
	return "only its agent can end it, at its lease or deadline, if the agent is alive"
}
