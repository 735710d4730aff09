package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// suiteRunsDir holds one JSON file per suite run, next to runs/.
const suiteRunsDir = "suite-runs"

// SaveSuiteRun writes a suite run record atomically and durably, like
// Save does a run's.
func (s *Store) SaveSuiteRun(r api.SuiteRun) error {
	if !validFileID(r.ID) {
		return fmt.Errorf("save suite run: invalid id %q", r.ID)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode suite run %s: %w", r.ID, err)
	}
	dir := filepath.Join(s.dir, suiteRunsDir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return s.writeFileAtomic(filepath.Join(dir, r.ID+".json"), data)
}

// GetSuiteRun reads one suite run record (os.ErrNotExist when unknown).
func (s *Store) GetSuiteRun(id string) (api.SuiteRun, error) {
	var r api.SuiteRun
	if !validFileID(id) || strings.Contains(id, ".") {
		return r, fmt.Errorf("suite run %.64q: %w", id, os.ErrNotExist)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, suiteRunsDir, id+".json"))
	if err != nil {
		return r, fmt.Errorf("read suite run %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("decode suite run %s: %w", id, err)
	}
	return r, nil
}

// ListSuiteRuns returns every suite run record, newest first; a record
// that cannot be read is in the error and does not hide the others.
func (s *Store) ListSuiteRuns() ([]api.SuiteRun, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, suiteRunsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list suite runs: %w", err)
	}
	var (
		out  []api.SuiteRun
		errs []error
	)
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		r, err := s.GetSuiteRun(strings.TrimSuffix(name, ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID > out[j].ID
		}
		return out[i].CreatedAt.After(out[j].CreatedAt)
	})
	return out, errors.Join(errs...)
}

func validFileID(id string) bool {
	return id != "" && len(id) <= maxIDBytes && !strings.ContainsAny(id, "/\\\x00") && id[0] != '.'
}
