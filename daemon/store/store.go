// Package store keeps chaosd's run records, its schedules' state and its
// skipped triggers so that a restart (or, in Kubernetes, a new leader)
// loses none. Store (standalone mode) keeps them on disk: one JSON file
// per run, replaced atomically (write, fsync, rename, fsync directory) on
// every save, schedules.json, and an append-only log of skipped schedule
// triggers, and suite run records under suite-runs/. KubeStore
// (Kubernetes mode) keeps runs as ExperimentRun objects, KubeSuiteRuns
// suite runs as SuiteRun objects, and KubeSchedules keeps the schedules' state and the skip log
// in one ConfigMap (chaosd-schedules).
//
// Why one ConfigMap rather than the Experiment objects' status for the
// schedule state: the skip log is one log across experiments and wants
// one place with one bound (the newest MaxKubeSkips); the state is keyed
// by name, not by object, so deleting and re-applying an Experiment does
// not resume a paused schedule nor forget the last trigger handled (a
// re-created one would otherwise run missed triggers again), and any
// future scheduled kind (suites) uses the same store unchanged; the
// Experiment's status stays the validity report chaosd writes and
// `kubectl apply` of a spec never races with a trigger's write; and
// chaosd's RBAC grows by one named object instead of needing update on
// every Experiment's status for a second purpose. The cost is one object
// for every schedule: writes are read, change, write with the
// resourceVersion, retried on conflict, and only a few per trigger (the
// leader writes; a pause may come from any replica), well within what
// one object takes; its size is bounded by the skip log's bound and the
// number of schedules.
//
// How often a record is written is the runner's choice, not the store's
// (experiments/runner, recordWriter): coalesced saves. Updates only mark
// the record changed; one writer per run saves the latest whole record
// at most every runner.Options.SaveInterval (500ms), and at once, with
// the step waiting for it to be on disk, where a restart needs the
// change before the run goes on: the record naming every planned fault
// before any agent is asked, a fault's undo document (Chaos Monkey
// faults) before the next agent is asked, every phase change (so
// "reverting" before the first revert), and the verdict. A run of N
// faults therefore makes a number of durable writes that does not grow
// with N (about ten, plus one per fault that has an undo document, plus
// one per probe round — at most one per SaveInterval — while it
// observes and recovers) and writes O(N) bytes, where it made three
// whole-record writes per fault before (685 fsyncs at 100 faults, 6,077
// and 476 MiB at 1,000: bytes growing with N²).
//
// Coalesced saves rather than a journal (append-only events per run,
// compacted): both stores then stay "write this record" — KubeStore
// cannot append to an object's status — a record on disk is always one
// the runner made, whole (readers and restart recovery need no replay),
// and the durable points are exactly the ones the safety promise names.
// What a crash can lose is the last SaveInterval of probe rounds, events
// and revert outcomes; restart recovery needs none of them: it reverts
// every fault not marked reverted by its agent fault ID (a fault
// reverted twice is a 404, "unknown to agent"), falls back on the undo
// document, and expires silences (created before the durable
// "injecting" phase).
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaosd/chaosd/api"
)

// runsDir holds one JSON file per run.
const runsDir = "runs"

// Store is a directory of run records. It is safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex

	writes, syncs, bytes atomic.Int64
}

// Stats counts what a Store wrote since it was opened: record files
// replaced, fsyncs (of files and of the directory) and bytes.
type Stats struct {
	Writes, Syncs, Bytes int64
}

// Stats returns what the store wrote so far.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Syncs: s.syncs.Load(), Bytes: s.bytes.Load()}
}

// Skip records a schedule trigger that did not start a run.
type Skip = api.SkipInfo

// maxIDBytes bounds a run ID (a file name is at most 255 bytes).
const maxIDBytes = 128

// Open creates dir if needed and returns a store on it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, runsDir), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Save writes a run record atomically and durably.
func (s *Store) Save(r api.Run) error {
	return saveRecord(s, runsDir, "run", r.ID, r)
}

// Get reads one run record.
func (s *Store) Get(id string) (api.Run, error) {
	return getRecord[api.Run](s, runsDir, "run", id)
}

// List returns every run record, newest first. A record that cannot be
// read is reported in the error but does not hide the others.
func (s *Store) List() ([]api.Run, error) {
	return listRecords(s, runsDir, "run", func(r api.Run) (time.Time, string) { return r.CreatedAt, r.ID })
}

// AddSkip appends a skipped schedule trigger to the skip log (fsynced).
func (s *Store) AddSkip(k Skip) error {
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, "skips.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("open skip log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("append skip log: %w", err)
	}
	s.bytes.Add(int64(len(data)) + 1)
	s.syncs.Add(1)
	return f.Sync()
}

// Skips returns every recorded skip, oldest first. A torn last line (a
// crash mid-append) is ignored.
func (s *Store) Skips() ([]Skip, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "skips.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read skip log: %w", err)
	}
	var out []Skip
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var k Skip
		if json.Unmarshal([]byte(line), &k) == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func (s *Store) writeFileAtomic(path string, data []byte) error {
	s.writes.Add(1)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	s.bytes.Add(int64(len(data)))
	s.syncs.Add(1)
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	s.syncs.Add(1)
	return d.Sync()
}
