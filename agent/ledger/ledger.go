// Package ledger is the agent's write-ahead log: an append-only JSON-lines
// file that records the intent to apply a fault (fsynced before the kernel
// is touched) and, after the fact, that the fault was applied or reverted.
// At start-up the agent replays it to revert whatever a crash left behind.
package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// Record operations.
const (
	OpIntent   = "intent"   // about to touch the kernel; Fault is set
	OpApplied  = "applied"  // the kernel state is in place
	OpReverted = "reverted" // the kernel state is gone; Reason is set
)

// Record is one line of the ledger.
type Record struct {
	Op     string          `json:"op"`
	ID     string          `json:"id"`
	Time   time.Time       `json:"time"`
	Fault  *agentapi.Fault `json:"fault,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Error  string          `json:"error,omitempty"`
	// State is the fault driver's state (intent: what Revert needs;
	// applied: an update, e.g. a stressor's PID and start time).
	State json.RawMessage `json:"state,omitempty"`
	// SelfExpiry (applied) says what ends the fault if no agent reverts
	// it: agentapi.SelfExpiryKernel, agentapi.SelfExpiryProcess, or empty
	// (only an agent can).
	SelfExpiry string `json:"selfExpiry,omitempty"`
}

// Entry is the folded state of one fault after replaying the ledger.
type Entry struct {
	Fault    agentapi.Fault
	Applied  bool
	Reverted bool
	Reason   string
	// State is the latest driver state recorded for the fault.
	State json.RawMessage
	// SelfExpiry is what ends the fault without an agent (see Record).
	SelfExpiry string
}

// Ledger is an open ledger file. It is safe for concurrent use.
type Ledger struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// Open opens (creating if needed) the ledger at path and returns it with
// the entries replayed from it, ordered as first seen. A torn or corrupt
// line is skipped and counted in skipped: a crash in the middle of a write
// must never prevent start-up.
func Open(path string) (l *Ledger, entries []Entry, skipped int, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, 0, fmt.Errorf("create ledger directory: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, 0, fmt.Errorf("read ledger %s: %w", path, err)
	}
	entries, skipped = Replay(data)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open ledger %s: %w", path, err)
	}
	// A torn last line has no newline: terminate it so the next record
	// starts on a line of its own.
	if len(data) > 0 && data[len(data)-1] != '\n' {
		if _, err := f.Write([]byte("\n")); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("terminate torn ledger line: %w", err)
		}
	}
	return &Ledger{path: path, f: f}, entries, skipped, nil
}

// Replay folds ledger bytes into entries, skipping lines it cannot parse.
func Replay(data []byte) (entries []Entry, skipped int) {
	byID := map[string]*Entry{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.ID == "" {
			skipped++
			continue
		}
		e, ok := byID[r.ID]
		if !ok {
			if r.Op != OpIntent || r.Fault == nil {
				// Applied/reverted without intent: nothing to revert from it.
				skipped++
				continue
			}
			e = &Entry{}
			byID[r.ID] = e
			order = append(order, r.ID)
		}
		switch r.Op {
		case OpIntent:
			if r.Fault != nil {
				// A re-used ID starts a new life.
				*e = Entry{Fault: *r.Fault, State: r.State}
			}
		case OpApplied:
			e.Applied = true
			if len(r.State) > 0 {
				e.State = r.State
			}
			e.SelfExpiry = r.SelfExpiry
		case OpReverted:
			e.Reverted = true
			e.Reason = r.Reason
		default:
			skipped++
		}
	}
	for _, id := range order {
		entries = append(entries, *byID[id])
	}
	return entries, skipped
}

// Append writes one record and fsyncs the file before returning.
func (l *Ledger) Append(r Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode ledger record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("ledger is closed")
	}
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("write ledger %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("fsync ledger %s: %w", l.path, err)
	}
	return nil
}

// Compact rewrites the ledger so that it holds only the given still-live
// faults (as intent, plus applied where set). It writes a temporary file,
// fsyncs it, renames it over the ledger and fsyncs the directory.
func (l *Ledger) Compact(live []Entry) error {
	var buf bytes.Buffer
	now := time.Now().UTC()
	sorted := append([]Entry(nil), live...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Fault.ID < sorted[j].Fault.ID })
	for _, e := range sorted {
		f := e.Fault
		recs := []Record{{Op: OpIntent, ID: f.ID, Time: now, Fault: &f, State: e.State}}
		if e.Applied {
			recs = append(recs, Record{Op: OpApplied, ID: f.ID, Time: now, SelfExpiry: e.SelfExpiry})
		}
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode ledger record: %w", err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("ledger is closed")
	}
	dir := filepath.Dir(l.path)
	tmp, err := os.CreateTemp(dir, ".ledger-compact-*")
	if err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if err := tmp.Chmod(0o600); err != nil {
		cleanup()
		return fmt.Errorf("compact ledger: %w", err)
	}
	if _, err := io.Copy(tmp, &buf); err != nil {
		cleanup()
		return fmt.Errorf("compact ledger: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		cleanup()
		return fmt.Errorf("compact ledger: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("compact ledger: close: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("compact ledger: rename: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopen ledger after compaction: %w", err)
	}
	l.f.Close()
	l.f = nf
	return nil
}

// Close closes the file.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
