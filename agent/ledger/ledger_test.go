package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

func fault(id string) *agentapi.Fault {
	return &agentapi.Fault{ID: id, Kind: agentapi.KindPartition, Deadline: time.Unix(2000000000, 0).UTC(), LeaseSeconds: 5,
		Partition: &agentapi.Partition{CIDRs: []string{"10.1.0.0/16"}}}
}

func TestLedger(t *testing.T) {
	tests := []struct {
		name        string
		ops         []Record
		tail        string // raw bytes appended after the records
		wantLive    []string
		wantSkipped int
	}{
		{name: "empty"},
		{
			name:     "intent only is live",
			ops:      []Record{{Op: OpIntent, ID: "a", Fault: fault("a")}},
			wantLive: []string{"a"},
		},
		{
			name: "applied then reverted",
			ops: []Record{
				{Op: OpIntent, ID: "a", Fault: fault("a")}, {Op: OpApplied, ID: "a"},
				{Op: OpIntent, ID: "b", Fault: fault("b")}, {Op: OpApplied, ID: "b"},
				{Op: OpReverted, ID: "a", Reason: "requested"},
			},
			wantLive: []string{"b"},
		},
		{
			name:        "torn last line",
			ops:         []Record{{Op: OpIntent, ID: "a", Fault: fault("a")}, {Op: OpApplied, ID: "a"}},
			tail:        `{"op":"reverted","id":"a","rea`,
			wantLive:    []string{"a"},
			wantSkipped: 1,
		},
		{
			name:     "reused id after revert",
			ops:      []Record{{Op: OpIntent, ID: "a", Fault: fault("a")}, {Op: OpReverted, ID: "a"}, {Op: OpIntent, ID: "a", Fault: fault("a")}},
			wantLive: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "ledger.jsonl")
			l, entries, _, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Fatalf("fresh ledger has %d entries", len(entries))
			}
			for _, r := range tt.ops {
				if err := l.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			if tt.tail != "" {
				f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString(tt.tail)
				f.Close()
			}
			l, entries, skipped, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if skipped != tt.wantSkipped {
				t.Errorf("skipped = %d, want %d", skipped, tt.wantSkipped)
			}
			live := liveOf(entries)
			if strings.Join(ids(live), ",") != strings.Join(tt.wantLive, ",") {
				t.Fatalf("live = %v, want %v", ids(live), tt.wantLive)
			}
			// Appending after a torn line must still parse.
			if err := l.Append(Record{Op: OpIntent, ID: "z", Fault: fault("z")}); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			entries, _ = Replay(data)
			if got := ids(liveOf(entries)); len(got) == 0 || got[len(got)-1] != "z" {
				t.Fatalf("record after reopen lost: %v", got)
			}
			// Compaction keeps exactly the live faults.
			if err := l.Compact(liveOf(entries)); err != nil {
				t.Fatal(err)
			}
			data, _ = os.ReadFile(path)
			entries2, skipped2 := Replay(data)
			if skipped2 != 0 || strings.Join(ids(entries2), ",") != strings.Join(sortedIDs(liveOf(entries)), ",") {
				t.Fatalf("after compaction: %v (skipped %d), want %v", ids(entries2), skipped2, ids(liveOf(entries)))
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			// Still appendable after compaction.
			if err := l.Append(Record{Op: OpReverted, ID: "z", Reason: "requested"}); err != nil {
				t.Fatal(err)
			}
			data, _ = os.ReadFile(path)
			entries3, _ := Replay(data)
			for _, e := range liveOf(entries3) {
				if e.Fault.ID == "z" {
					t.Fatal("z still live after revert record")
				}
			}
		})
	}
}

func TestCompactEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	l, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Append(Record{Op: OpIntent, ID: "a", Fault: fault("a")})
	l.Append(Record{Op: OpReverted, ID: "a"})
	if err := l.Compact(nil); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("size %d after compacting to nothing", fi.Size())
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".ledger-compact-*"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func liveOf(es []Entry) []Entry {
	var out []Entry
	for _, e := range es {
		if !e.Reverted {
			out = append(out, e)
		}
	}
	return out
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Fault.ID)
	}
	return out
}

func sortedIDs(es []Entry) []string {
	out := ids(es)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestSelfExpirySurvivesCompaction: what ends a fault without an agent
// is on its applied record, replayed and kept by a compaction.
func TestSelfExpirySurvivesCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	l, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Append(Record{Op: OpIntent, ID: "a", Fault: fault("a")})
	l.Append(Record{Op: OpApplied, ID: "a", SelfExpiry: agentapi.SelfExpiryKernel})
	data, _ := os.ReadFile(path)
	entries, _ := Replay(data)
	if len(entries) != 1 || entries[0].SelfExpiry != agentapi.SelfExpiryKernel {
		t.Fatalf("replayed: %+v", entries)
	}
	if err := l.Compact(entries); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if entries, _ = Replay(data); len(entries) != 1 || !entries[0].Applied || entries[0].SelfExpiry != agentapi.SelfExpiryKernel {
		t.Fatalf("after compaction: %+v", entries)
	}
}

// TestWriteAndSync: a record written is in the file at once; it is known
// on disk (Durable: what a crash of the node would leave) only after a
// Sync of its ticket or a later one, or a compaction. A crash at any
// moment leaves every synced record and never a torn one in the middle.
func TestWriteAndSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// crash is what the node's crash now would leave: the durable prefix.
	crash := func() []string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d := l.Durable()
		if d > int64(len(data)) {
			t.Fatalf("Durable %d is past the end of the file (%d bytes)", d, len(data))
		}
		entries, skipped := Replay(data[:d])
		if skipped != 0 {
			t.Errorf("the durable prefix has %d torn or bad lines", skipped)
		}
		var live []string
		for _, e := range entries {
			if !e.Reverted {
				live = append(live, e.Fault.ID)
			}
		}
		return live
	}
	write := func(r Record) Ticket {
		t.Helper()
		tk, err := l.Write(r)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	ta := write(Record{Op: OpIntent, ID: "a", Fault: fault("a")})
	if got := crash(); len(got) != 0 {
		t.Errorf("before any Sync a crash leaves %v, want nothing", got)
	}
	tb := write(Record{Op: OpIntent, ID: "b", Fault: fault("b")})
	if err := l.Sync(tb); err != nil {
		t.Fatal(err)
	}
	if got := crash(); strings.Join(got, ",") != "a,b" {
		t.Errorf("after Sync of b a crash leaves %v, want a,b (one fsync covers what was written before)", got)
	}
	if err := l.Sync(ta); err != nil {
		t.Fatal(err)
	}
	write(Record{Op: OpReverted, ID: "a", Reason: "requested"})
	if got := crash(); strings.Join(got, ",") != "a,b" {
		t.Errorf("an unsynced revert: a crash leaves %v, want a,b (a is reverted again)", got)
	}
	if err := l.Compact([]Entry{{Fault: *fault("b")}}); err != nil {
		t.Fatal(err)
	}
	if got := crash(); strings.Join(got, ",") != "b" {
		t.Errorf("after a compaction a crash leaves %v, want b", got)
	}
	tc := write(Record{Op: OpIntent, ID: "c", Fault: fault("c")})
	if err := l.Sync(tc); err != nil {
		t.Fatal(err)
	}
	if got := crash(); strings.Join(got, ",") != "b,c" {
		t.Errorf("a crash leaves %v, want b,c", got)
	}
}

// TestConcurrentSyncs: faults recorded at once each get their record on
// disk (they may share an fsync).
func TestConcurrentSyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- l.Append(Record{Op: OpIntent, ID: fmt.Sprint(i), Fault: fault(fmt.Sprint(i))}) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Durable(); d != st.Size() {
		t.Errorf("Durable = %d after every Append returned, want the file's %d bytes", d, st.Size())
	}
	l.Close()
	l2, entries, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if len(entries) != n {
		t.Errorf("%d entries, want %d", len(entries), n)
	}
}

// BenchmarkRecord: writing a record (what survives the agent's death)
// against writing it and waiting for the disk (what survives the node's
// crash), on the disk under the test's temporary directory.
func BenchmarkRecord(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "write"
		if sync {
			name = "write+fsync"
		}
		b.Run(name, func(b *testing.B) {
			l, _, _, err := Open(filepath.Join(b.TempDir(), "ledger.jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := Record{Op: OpIntent, ID: "bench", Fault: fault("bench")}
			for b.Loop() {
				t, err := l.Write(r)
				if err == nil && sync {
					err = l.Sync(t)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
