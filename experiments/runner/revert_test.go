package runner

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
)

// flakyAgent answers Revert with the errors in errs, one per call, then
// with a verified revert.
type flakyAgent struct {
	errs     []error
	calls    int
	verified bool
}

func (a *flakyAgent) Revert(_ context.Context, id string) (agentapi.FaultStatus, error) {
	a.calls++
	if len(a.errs) > 0 {
		err := a.errs[0]
		a.errs = a.errs[1:]
		return agentapi.FaultStatus{}, err
	}
	return agentapi.FaultStatus{State: agentapi.StateReverted, RevertedAt: time.Now(), RevertReason: agentapi.ReasonRequested, Verified: a.verified}, nil
}

func TestRevertFault(t *testing.T) {
	unreachable := errors.Join(agentapi.ErrUnreachable, errors.New("connection refused"))
	tests := []struct {
		name       string
		agent      *flakyAgent
		nilAgent   bool
		wantErr    string
		wantCalls  int
		wantReason string
		selfExpiry string
	}{
		{name: "reverted and verified", agent: &flakyAgent{verified: true}, wantCalls: 1, wantReason: agentapi.ReasonRequested},
		{name: "a transient failure is retried", agent: &flakyAgent{errs: []error{unreachable}, verified: true}, wantCalls: 2, wantReason: agentapi.ReasonRequested},
		{name: "unknown to the agent is nothing to revert", agent: &flakyAgent{errs: []error{&agentapi.APIError{Status: 404, Message: "not known"}}},
			wantCalls: 1, wantReason: UnknownToAgent},
		{name: "unverified removal is an error", agent: &flakyAgent{}, wantCalls: 1, wantErr: "could not verify", wantReason: agentapi.ReasonRequested},
		{name: "three failures give up, saying only the agent can end it", agent: &flakyAgent{errs: []error{unreachable, unreachable, unreachable, unreachable}},
			wantCalls: 3, wantErr: "only its agent can end it"},
		{name: "three failures of a kernel fault say the kernel ends it", selfExpiry: agentapi.SelfExpiryKernel,
			agent: &flakyAgent{errs: []error{unreachable, unreachable, unreachable, unreachable}}, wantCalls: 3, wantErr: "the kernel drops it by itself"},
		{name: "three failures of a memory fault say its process ends it", selfExpiry: agentapi.SelfExpiryProcess,
			agent: &flakyAgent{errs: []error{unreachable, unreachable, unreachable, unreachable}}, wantCalls: 3, wantErr: "its process ends by itself"},
		{name: "no agent", nilAgent: true, wantErr: "no agent for this node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fr := api.FaultRecord{Name: "cut", AgentFaultID: "r-1.cut", SelfExpiry: tt.selfExpiry}
				var a Reverter = tt.agent
				if tt.nilAgent {
					a = nil
				}
				err := RevertFault(context.Background(), a, &fr, time.Second)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.agent != nil && tt.agent.calls != tt.wantCalls {
					t.Errorf("%d revert calls, want %d", tt.agent.calls, tt.wantCalls)
				}
				if got := fr.RevertedAt != nil; got != (tt.wantReason != "") || fr.RevertReason != tt.wantReason {
					t.Errorf("record: reverted %v reason %q, want reason %q", got, fr.RevertReason, tt.wantReason)
				}
				if (err != nil) != (fr.Error != "" || !fr.Verified) {
					t.Errorf("record does not show the outcome: %+v", fr)
				}
			})
		})
	}
}
