package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/nftexpiry"
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
	k.Apply(ctx, Plan{Table: TableName("orphan")}, time.Minute)
	k.Apply(ctx, Plan{Table: "someone_else"}, time.Minute)
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

// TestDriverPodScopedOnFake: a pod-scoped partition lands in the pod's
// namespace only, without the node's control-port exemption; its state
// names the namespace; a pod gone or a namespace recreated counts as
// reverted and the new namespace is never touched.
func TestDriverPodScopedOnFake(t *testing.T) {
	ctx := context.Background()
	node := NewFake()
	pods := NewFakePods()
	podK := pods.Add("uid-1")
	d, err := New(Config{Backend: node, Pods: pods, ExemptTCP: func() []uint16 { return []uint16{7070} }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pod := &agentapi.Pod{Namespace: "petclinic", Name: "visits-0", UID: "uid-1", QOSClass: "Burstable"}
	f := agentapi.Fault{ID: "run.pod", Kind: agentapi.KindPartition, Pod: pod,
		Partition: &agentapi.Partition{CIDRs: []string{"10.0.0.0/16"}}, Deadline: time.Now().Add(time.Minute), LeaseSeconds: 5}
	st, err := d.Prepare(ctx, &f)
	if err != nil {
		t.Fatal(err)
	}
	var s state
	if err := json.Unmarshal(st, &s); err != nil || s.NetNS == nil || s.Table != TableName(f.ID) {
		t.Fatalf("state %s: %v", st, err)
	}
	if _, err := d.Apply(ctx, f, st); err != nil {
		t.Fatal(err)
	}
	if node.Has(f.ID) || !podK.Has(f.ID) {
		t.Fatalf("table in node %v, in pod %v; want only in the pod", node.Has(f.ID), podK.Has(f.ID))
	}
	p, _ := podK.Plan(TableName(f.ID))
	if strings.Contains(p.String(), "7070") {
		t.Fatalf("the node's control port is exempt in a pod's namespace:\n%s", p)
	}
	left, err := d.Remaining(ctx, f, st)
	if err != nil || !strings.Contains(left, "petclinic/visits-0") {
		t.Fatalf("Remaining = %q, %v", left, err)
	}
	// The node's Prune never removes a pod fault's table, nor keeps a
	// node table because a pod fault has the same name.
	node.Apply(ctx, Plan{Table: TableName(f.ID)}, time.Minute)
	if removed, err := d.Prune(ctx, []json.RawMessage{st}); err != nil || len(removed) != 1 || !podK.Has(f.ID) {
		t.Fatalf("Prune = %v, %v; pod table kept: %v", removed, err, podK.Has(f.ID))
	}
	if err := d.Revert(ctx, f, st); err != nil || podK.Has(f.ID) {
		t.Fatalf("Revert: %v (still there: %v)", err, podK.Has(f.ID))
	}

	// Recreated sandbox: the old namespace is gone with its table; the new
	// one is not touched.
	if _, err := d.Apply(ctx, f, st); err != nil {
		t.Fatal(err)
	}
	newK := pods.Add("uid-1")
	if err := d.Revert(ctx, f, st); err != nil {
		t.Fatalf("Revert after the namespace changed: %v", err)
	}
	if left, err := d.Remaining(ctx, f, st); err != nil || left != "" {
		t.Fatalf("Remaining after the namespace changed = %q, %v", left, err)
	}
	if _, err := d.Apply(ctx, f, st); err == nil || newK.Has(f.ID) {
		t.Fatalf("Apply into a recreated namespace: %v (installed in the new one: %v)", err, newK.Has(f.ID))
	}

	// Pod gone: revert succeeds.
	pods.Remove("uid-1")
	if err := d.Revert(ctx, f, st); err != nil {
		t.Fatalf("Revert of a gone pod: %v", err)
	}
	if _, err := d.Prepare(ctx, &f); err == nil || !strings.HasPrefix(err.Error(), "pod:") {
		t.Fatalf("Prepare for a pod not on this node: %v", err)
	}
	bad := f
	bad.Pod = &agentapi.Pod{UID: "../x"}
	if _, err := d.Prepare(ctx, &bad); err == nil || !strings.HasPrefix(err.Error(), "pod.uid") {
		t.Fatalf("Prepare with a bad uid: %v", err)
	}
	noPods, _ := New(Config{Backend: node}, nil)
	if _, err := noPods.Prepare(ctx, &f); err == nil || !strings.Contains(err.Error(), "cannot reach pods") {
		t.Fatalf("Prepare without pod lookup: %v", err)
	}
}

// TestDriverRenewOnFake: Apply sets the elements' timeout to the lease
// plus the margin; Renew moves it to until plus the margin; a table
// whose sets were emptied, whose elements timed out, or that is gone
// renews as not in place (""), and so does a pod whose namespace is gone.
func TestDriverRenewOnFake(t *testing.T) {
	ctx := context.Background()
	k := NewFake()
	d, err := New(Config{Backend: k, ExemptTCP: func() []uint16 { return []uint16{7070} }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if how, margin := d.SelfExpiry(); how != agentapi.SelfExpiryKernel || margin != nftexpiry.Margin {
		t.Fatalf("SelfExpiry = %s, %v", how, margin)
	}
	f := agentapi.Fault{ID: "run.renew", Kind: agentapi.KindPartition, Partition: &agentapi.Partition{CIDRs: []string{"10.1.0.0/16"}, Ports: []uint16{80}},
		Deadline: time.Now().Add(time.Minute), LeaseSeconds: 2}
	st, err := d.Prepare(ctx, &f)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if st, err = d.Apply(ctx, f, st); err != nil {
		t.Fatal(err)
	}
	table := TableName(f.ID)
	exp, _ := k.ExpiresAt(table)
	if lo, hi := before.Add(2*time.Second+nftexpiry.Margin-time.Millisecond), time.Now().Add(2*time.Second+nftexpiry.Margin); exp.Before(lo) || exp.After(hi) {
		t.Fatalf("elements expire at apply + %v, want lease + margin", exp.Sub(before))
	}
	until := time.Now().Add(10 * time.Second)
	if left, err := d.Renew(ctx, f, st, until); err != nil || left == "" {
		t.Fatalf("Renew of a fault in place = %q, %v", left, err)
	}
	if exp, _ := k.ExpiresAt(table); exp.After(until.Add(nftexpiry.Margin)) || exp.Before(until.Add(nftexpiry.Margin-time.Millisecond)) {
		t.Fatalf("after Renew the elements expire %v after until, want the margin %v", exp.Sub(until), nftexpiry.Margin)
	}
	k.EmptySets(table)
	if left, err := d.Renew(ctx, f, st, until); err != nil || left != "" {
		t.Fatalf("Renew of a fault whose sets were flushed = %q, %v", left, err)
	}

	// Elements that timed out (the agent was too late) are not in place.
	f.ID, f.LeaseSeconds = "run.timedout", 0.001
	if st, err = d.Prepare(ctx, &f); err != nil {
		t.Fatal(err)
	}
	if st, err = d.Apply(ctx, f, st); err != nil {
		t.Fatal(err)
	}
	time.Sleep(nftexpiry.Margin + 10*time.Millisecond)
	if left, err := d.Renew(ctx, f, st, until); err != nil || left != "" {
		t.Fatalf("Renew after the elements timed out = %q, %v", left, err)
	}
	k.Remove(ctx, TableName(f.ID))
	if left, err := d.Renew(ctx, f, st, until); err != nil || left != "" {
		t.Fatalf("Renew of a removed table = %q, %v", left, err)
	}
}
