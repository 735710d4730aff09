package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

func TestDriverOnFake(t *testing.T) {
	ctx := context.Background()
	k := NewFake()
	ports := []uint16{7070}
	d, err := New(Config{Backend: k, ExemptTCP: func() []uint16 { return ports }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Kind() != agentapi.KindPartition || d.Probe(ctx) != nil {
		t.Fatal("kind or probe")
	}

	wire := &agentapi.Partition{CIDRs: []string{"10.1.0.0/16"}}
	f := agentapi.Fault{ID: "run.p", Kind: agentapi.KindPartition, Partition: wire, Deadline: time.Now().Add(time.Minute), LeaseSeconds: 5}
	st, err := d.Prepare(ctx, &f)
	if err != nil {
		t.Fatal(err)
	}
	if f.Partition.Direction != Both || wire.Direction != "" {
		t.Fatalf("Prepare: effective direction %q (want %q), caller's spec changed to %q", f.Partition.Direction, Both, wire.Direction)
	}
	if _, err := d.Prepare(ctx, &agentapi.Fault{ID: "x", Partition: &agentapi.Partition{CIDRs: []string{"10.1.0.0/16"}, Direction: "up"}}); err == nil ||
		!strings.Contains(err.Error(), "partition.direction") {
		t.Fatalf("bad direction: %v", err)
	}

	ports = []uint16{7071} // learnt after the driver was built: still exempt
	if _, err := d.Apply(ctx, f, st); err != nil {
		t.Fatal(err)
	}
	p, ok := k.Plan(TableName(f.ID))
	if !ok || !strings.Contains(p.String(), "tcp dport 7071 accept") {
		t.Fatalf("plan does not exempt the control port:\n%s", p)
	}
	if left, err := d.Remaining(ctx, f, st); err != nil || left == "" {
		t.Fatalf("Remaining while applied = %q, %v", left, err)
	}

	// Prune keeps the tables of kept states, removes other tagged ones
	// and never touches untagged tables.
	k.Apply(ctx, Plan{Table: TableName("orphan")})
	k.Apply(ctx, Plan{Table: "someone_else"})
	removed, err := d.Prune(ctx, []json.RawMessage{st})
	if err != nil || len(removed) != 1 || removed[0] != "nftables table "+TableName("orphan") {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	if ok, _ := k.Exists(ctx, "someone_else"); !ok || !k.Has(f.ID) {
		t.Fatal("Prune removed a table it does not own or a kept one")
	}

	for i := 0; i < 2; i++ { // idempotent
		if err := d.Revert(ctx, f, st); err != nil {
			t.Fatal(fmt.Errorf("revert %d: %w", i, err))
		}
	}
	if left, err := d.Remaining(ctx, f, st); err != nil || left != "" {
		t.Fatalf("Remaining after revert = %q, %v", left, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Apply(cctx, f, st); err == nil || k.Has(f.ID) {
		t.Fatalf("Apply with an ended context: %v (installed: %v)", err, k.Has(f.ID))
	}
}
