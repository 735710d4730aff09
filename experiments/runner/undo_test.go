package runner

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
)

// actuator is a minimal Chaos Monkey for Spring Boot actuator: it keeps
// what was POSTed to /assaults and /watchers and the enabled status.
type actuator struct {
	mu       sync.Mutex
	enabled  bool
	assaults map[string]json.RawMessage
	watchers map[string]json.RawMessage
}

func newActuator() *actuator {
	return &actuator{
		assaults: map[string]json.RawMessage{"level": json.RawMessage(`1`), "exceptionsActive": json.RawMessage(`false`)},
		watchers: map[string]json.RawMessage{"restController": json.RawMessage(`false`)},
	}
}

func (a *actuator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	merge := func(into map[string]json.RawMessage) {
		var m map[string]json.RawMessage
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		for k, v := range m {
			into[k] = v
		}
	}
	switch r.Method + " " + strings.TrimPrefix(r.URL.Path, "/actuator/chaosmonkey") {
	case "GET /status":
		if a.enabled {
			_, _ = io.WriteString(w, "Ready to be evil!")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "You switched me off!")
	case "GET /assaults":
		_ = json.NewEncoder(w).Encode(a.assaults)
	case "GET /watchers":
		_ = json.NewEncoder(w).Encode(a.watchers)
	case "POST /assaults":
		merge(a.assaults)
	case "POST /watchers":
		merge(a.watchers)
	case "POST /enable":
		a.enabled = true
	case "POST /disable":
		a.enabled = false
	default:
		http.NotFound(w, r)
	}
}

// deadAgent answers nothing: its process was killed and never restarted.
type deadAgent struct{}

func (deadAgent) Revert(context.Context, string) (agentapi.FaultStatus, error) {
	return agentapi.FaultStatus{}, errors.New("dial unix agent.sock: connect: connection refused")
}

// TestChaosdUndoesAssaultsOfADeadAgent: the agent that applied a Chaos
// Monkey assault is dead; chaosd puts the service's settings back itself
// from the undo document and the record says so.
func TestChaosdUndoesAssaultsOfADeadAgent(t *testing.T) {
	act := newActuator()
	srv := httptest.NewServer(act)
	defer srv.Close()
	// What the agent handed out at inject; then the assault went in.
	undo, _ := json.Marshal(agentapi.SpringBootUndo{URL: srv.URL, Enabled: false,
		Assaults: map[string]json.RawMessage{"level": json.RawMessage(`1`), "exceptionsActive": json.RawMessage(`false`)},
		Watchers: map[string]json.RawMessage{"restController": json.RawMessage(`false`)}})
	act.enabled = true
	act.assaults["level"], act.assaults["exceptionsActive"] = json.RawMessage(`2`), json.RawMessage(`true`)
	act.watchers["restController"] = json.RawMessage(`true`)

	fr := api.FaultRecord{Name: "visits-throws", Kind: "exception", Node: "c2-n1", AgentFaultID: "r-1.visits-throws", Undo: undo}
	if err := RevertFault(context.Background(), deadAgent{}, &fr, time.Second); err != nil {
		t.Fatalf("RevertFault: %v", err)
	}
	if fr.RevertedAt == nil || fr.RevertedBy != "chaosd" || fr.RevertReason != ReasonUndoneByChaosd || !fr.Verified ||
		!strings.Contains(fr.Error, "connection refused") {
		t.Errorf("record %+v: want reverted by chaosd, verified, naming the agent's failure", fr)
	}
	act.mu.Lock()
	defer act.mu.Unlock()
	if act.enabled || string(act.assaults["level"]) != "1" || string(act.assaults["exceptionsActive"]) != "false" || string(act.watchers["restController"]) != "false" {
		t.Errorf("actuator after the undo: enabled %v assaults %s watchers %s", act.enabled, act.assaults, act.watchers)
	}

	// A kernel fault has no undo document: the record says the revert is
	// unconfirmed, never that it happened.
	kr := api.FaultRecord{Name: "cut", Kind: "partition", Node: "c1-n1", AgentFaultID: "r-1.cut"}
	if err := RevertFault(context.Background(), deadAgent{}, &kr, time.Second); err == nil || kr.RevertedAt != nil || kr.Verified {
		t.Errorf("partition with a dead agent: err %v record %+v", err, kr)
	}
}
