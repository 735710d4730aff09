// Package ledger is the agent's write-ahead log: an append-only JSON-lines
// file that records the intent to apply a fault (on disk before the kernel
// is touched) and, after the fact, that the fault was applied or reverted.
// At start-up the agent replays it to revert whatever a crash left behind.
//
// Writing a record (Write) and making it durable (Sync) are separate
// steps, so the caller decides per record whether it must reach the disk
// (see agent/README.md, "Never a fault left behind") and can wait for the
// disk without holding its own locks: concurrent Syncs share one fsync
// (group commit). A record written is safe from the agent's own death (it
// is in the kernel's page cache) as soon as Write returns; Sync guards it
// against the node's crash.
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
	// syncMu is held across an fsync of the file and a compaction's swap
	// of it, so one fsync runs at a time (later Syncs find their records
	// written by it) and never on a file being replaced. Taken before mu.
	syncMu sync.Mutex
	mu     sync.Mutex
	path   string
	f      *os.File
	// written counts the records written, synced those known on disk
	// (Tickets; a compaction puts them all on disk).
	written, synced Ticket
	// size is the file's length, durable the length of its prefix known
	// to be on disk.
	size, durable int64
	// syncErr is the error of a failed fsync: the kernel may have dropped
	// the pages it could not write, and a later fsync would not say so.
	// Every Sync fails until a compaction rewrites the file.
	syncErr error
}

// Ticket identifies a record written, for Sync.
type Ticket uint64

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
	size := int64(len(data))
	// A torn last line has no newline: terminate it so the next record
	// starts on a line of its own.
	if len(data) > 0 && data[len(data)-1] != '\n' {
		if _, err := f.Write([]byte("\n")); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("terminate torn ledger line: %w", err)
		}
		size++
	}
	// What a killed agent wrote may not be on disk yet.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("fsync ledger %s: %w", path, err)
	}
	return &Ledger{path: path, f: f, size: size, durable: size}, entries, skipped, nil
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

// Append writes one record and returns once it is on disk (Write, then
// Sync).
func (l *Ledger) Append(r Record) error {
	t, err := l.Write(r)
	if err != nil {
		return err
	}
	return l.Sync(t)
}

// Write appends one record to the file, without waiting for the disk: it
// survives the agent's death once Write returns, and the node's crash
// once a Sync of its ticket (or of a later one) returns.
func (l *Ledger) Write(r Record) (Ticket, error) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode ledger record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, errors.New("ledger is closed")
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return 0, fmt.Errorf("write ledger %s: %w", l.path, err)
	}
	l.written++
	return l.written, nil
}

// Sync returns once the record of ticket t, and every record written
// before it, is on disk. Callers waiting together share one fsync, which
// covers whatever was written when it started.
func (l *Ledger) Sync(t Ticket) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.syncErr != nil {
		err := l.syncErr
		l.mu.Unlock()
		return err
	}
	if l.synced >= t {
		l.mu.Unlock()
		return nil
	}
	if l.f == nil {
		l.mu.Unlock()
		return errors.New("ledger is closed")
	}
	f, upTo, size := l.f, l.written, l.size
	l.mu.Unlock()
	err := f.Sync() // writes go on meanwhile; a compaction waits (syncMu)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.syncErr = fmt.Errorf("fsync ledger %s: %w", l.path, err)
		return l.syncErr
	}
	l.synced, l.durable = max(l.synced, upTo), max(l.durable, size)
	return nil
}

// Durable is the length of the file's prefix known to be on disk: what a
// crash of the node now would leave of it.
func (l *Ledger) Durable() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// Compact rewrites the ledger so that it holds only the given still-live
// faults (as intent, plus applied where set). It writes a temporary file,
// fsyncs it, renames it over the ledger and fsyncs the directory: every
// record written before is then as good as synced (a live fault's is in
// the new file, the others are no longer needed). The caller must make
// sure no record of a live fault is written between its choice of live
// and Compact's return (the agent holds its lock across both).
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
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
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
	n := int64(buf.Len())
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
	l.synced, l.syncErr = l.written, nil
	l.size, l.durable = n, n
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
