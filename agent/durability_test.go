package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/ledger"
)

// The durability tests prove the ledger's promise against a crash of the
// node, which loses what was written but not yet on disk (a killed agent
// loses nothing it wrote: TestIntegrationRandomKill): at every point of a
// fault's life, what is on disk (ledger.Ledger.Durable) names the fault
// whenever it may be in place, and a revert record lost with the node
// only makes the next start revert the fault again, which is harmless.

// crashKind is a fault kind only these tests know.
const crashKind agentapi.Kind = "test-crash"

// crashDriver is a stateful fake driver of crashKind. At each of its
// calls that touch the fault (Apply, Revert) it records what a crash of
// the node at that moment would leave of the ledger (see at). nodeBound
// says whether it claims NodeBound.
type crashDriver struct {
	nodeBound bool
	// durable returns the ledger's bytes on disk (set before use).
	durable func() []byte

	mu      sync.Mutex
	inPlace map[string]bool
	reverts map[string]int
	// seen: call ("apply", "revert") → fault ID → whether the ledger on
	// disk named the fault as not reverted during that call.
	seen map[string]map[string]bool
}

func newCrashDriver(nodeBound bool) *crashDriver {
	return &crashDriver{nodeBound: nodeBound, inPlace: map[string]bool{}, reverts: map[string]int{},
		seen: map[string]map[string]bool{"apply": {}, "revert": {}}}
}

// named says whether ledger bytes name fault id as not reverted.
func named(data []byte, id string) bool {
	entries, _ := ledger.Replay(data)
	for _, e := range entries {
		if e.Fault.ID == id && !e.Reverted {
			return true
		}
	}
	return false
}

func (d *crashDriver) at(call, id string) {
	if d.durable == nil {
		return
	}
	d.seen[call][id] = named(d.durable(), id)
}

// onDisk is what a crash of the node now would leave of the ledger.
func (d *crashDriver) onDisk() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.durable()
}

func (d *crashDriver) Kind() agentapi.Kind         { return crashKind }
func (d *crashDriver) Probe(context.Context) error { return nil }
func (d *crashDriver) NodeBound() bool             { return d.nodeBound }

func (d *crashDriver) Prepare(_ context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	return json.Marshal(f.ID)
}

func (d *crashDriver) Apply(_ context.Context, f agentapi.Fault, _ json.RawMessage) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at("apply", f.ID) // the kernel is about to be touched
	d.inPlace[f.ID] = true
	return json.Marshal(map[string]any{"id": f.ID, "pid": 4242}) // an update, like a stressor's PID
}

func (d *crashDriver) Revert(_ context.Context, f agentapi.Fault, _ json.RawMessage) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at("revert", f.ID) // the fault is still in place
	delete(d.inPlace, f.ID)
	d.reverts[f.ID]++
	return nil
}

func (d *crashDriver) Remaining(_ context.Context, f agentapi.Fault, _ json.RawMessage) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inPlace[f.ID] {
		return "test fault " + f.ID, nil
	}
	return "", nil
}

func (d *crashDriver) Prune(context.Context, []json.RawMessage) ([]string, error) { return nil, nil }

// startCrashAgent runs an agent in-process with drv on the ledger at
// lpath and hooks drv to that agent's ledger.
func startCrashAgent(t *testing.T, drv *crashDriver, lpath string) *harness {
	t.Helper()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken), 0o600)
	cfg := Config{Node: "node-1", Socket: filepath.Join(dir, "a.sock"), TokenFile: tok, LedgerPath: lpath, Version: "test"}
	a, err := New(cfg, zaptest.NewLogger(t), drv)
	if err != nil {
		t.Fatal(err)
	}
	drv.mu.Lock()
	drv.durable = func() []byte {
		data, err := os.ReadFile(lpath)
		if err != nil {
			t.Error(err)
			return nil
		}
		return data[:min(a.led.Durable(), int64(len(data)))] // a.led: set by Run before any driver call
	}
	drv.mu.Unlock()
	return startWith(t, func(ctx context.Context, _ Config) error { return a.Run(ctx) }, cfg, dir)
}

func TestLedgerOnDiskNamesEveryFaultInPlace(t *testing.T) {
	for _, nb := range []bool{true, false} {
		name := "node-bound"
		if !nb {
			name = "outside the node"
		}
		t.Run(name, func(t *testing.T) {
			lpath := filepath.Join(t.TempDir(), "ledger.jsonl")
			drv := newCrashDriver(nb)
			h := startCrashAgent(t, drv, lpath)
			ctx := context.Background()
			f := agentapi.Fault{ID: "c1", RunID: "run-1", Kind: crashKind, Deadline: time.Now().Add(time.Hour), LeaseSeconds: 60}
			if _, err := h.client.Inject(ctx, f); err != nil {
				t.Fatal(err)
			}
			if !drv.seen["apply"]["c1"] {
				t.Error("during Apply, a crash of the node would leave a ledger that does not name the fault")
			}
			if !named(drv.onDisk(), "c1") {
				t.Error("once injected, a crash of the node would leave a ledger that does not name the fault")
			}
			st, err := h.client.Revert(ctx, f.ID)
			if err != nil || !st.Verified {
				t.Fatal(st, err)
			}
			if !drv.seen["revert"]["c1"] {
				t.Error("during Revert, a crash of the node would leave a ledger that does not name the fault")
			}
			onDisk := drv.onDisk()
			if !nb && named(onDisk, "c1") {
				t.Error("the revert of a fault outside the node answered before its record was on disk")
			}
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}

			// The node crashes now: only what was on disk is left. The
			// next start reverts whatever it names, again if need be.
			lost := filepath.Join(t.TempDir(), "ledger.jsonl")
			if err := os.WriteFile(lost, onDisk, 0o600); err != nil {
				t.Fatal(err)
			}
			again := named(onDisk, "c1")
			h2 := startCrashAgent(t, drv, lost)
			all, err := h2.client.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			drv.mu.Lock()
			reverts := drv.reverts["c1"]
			drv.mu.Unlock()
			if again {
				// A lost revert record: reverted a second time at start-up,
				// with nothing left to remove, and verified.
				if reverts != 2 || len(all) != 1 || all[0].RevertReason != agentapi.ReasonStartup || !all[0].Verified {
					t.Errorf("after losing the revert record: %d reverts, faults %+v; want a second, verified revert at start-up", reverts, all)
				}
			} else if reverts != 1 || len(all) != 0 {
				t.Errorf("revert record on disk: %d reverts, faults %+v; want none at start-up", reverts, all)
			}
			t.Logf("revert record lost with the node: %v", again)
		})
	}
}
