package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

func TestSaveGetListAndTornSkipLog(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"r-a", "r-b", "r-c"} {
		if err := s.Save(api.Run{ID: id, Experiment: "x", CreatedAt: base.Add(time.Duration(i) * time.Minute), Phase: api.PhaseDone}); err != nil {
			t.Fatal(err)
		}
	}
	// Overwrite is atomic and keeps one file per run.
	if err := s.Save(api.Run{ID: "r-b", Experiment: "x", CreatedAt: base.Add(time.Minute), Phase: api.PhaseDone, Verdict: api.VerdictPass}); err != nil {
		t.Fatal(err)
	}
	runs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != "r-c" || runs[2].ID != "r-a" || runs[1].Verdict != api.VerdictPass {
		t.Fatalf("list newest first: %+v", runs)
	}
	if _, err := s.Get("../etc/passwd"); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("path traversal id: %v", err)
	}
	// A corrupt record is reported but does not hide the others.
	if err := os.WriteFile(filepath.Join(s.dir, "runs", "r-bad.json"), []byte("{"), 0o640); err != nil {
		t.Fatal(err)
	}
	runs, err = s.List()
	if err == nil || len(runs) != 3 {
		t.Errorf("corrupt record: %d runs, err %v", len(runs), err)
	}
	if err := s.AddSkip(Skip{Time: base, Experiment: "x", Reason: "busy"}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(filepath.Join(s.dir, "skips.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-11-25T10:0`) // crash mid-append
	f.Close()
	skips, err := s.Skips()
	if err != nil || len(skips) != 1 || skips[0].Reason != "busy" {
		t.Fatalf("skips %+v %v", skips, err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// BenchmarkSave measures one durable record write: chaosd makes one per
// phase change and at most one per runner.Options.SaveInterval while a
// run goes (daemon BenchmarkRunRecordWrites counts them per run).
func BenchmarkSave(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	r := api.Run{ID: "r-bench", Experiment: "x", Phase: api.PhaseObserving, Events: make([]api.Event, 50)}
	for i := 0; i < b.N; i++ {
		if err := s.Save(r); err != nil {
			b.Fatal(err)
		}
	}
}
