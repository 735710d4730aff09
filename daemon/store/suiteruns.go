package store

import (
	"time"

	"github.com/chaosd/chaosd/api"
)

// suiteRunsDir holds one JSON file per suite run, next to runs/.
const suiteRunsDir = "suite-runs"

// SaveSuiteRun writes a suite run record atomically and durably, like
// Save does a run's.
func (s *Store) SaveSuiteRun(r api.SuiteRun) error {
	return saveRecord(s, suiteRunsDir, "suite run", r.ID, r)
}

// GetSuiteRun reads one suite run record (os.ErrNotExist when unknown).
func (s *Store) GetSuiteRun(id string) (api.SuiteRun, error) {
	return getRecord[api.SuiteRun](s, suiteRunsDir, "suite run", id)
}

// ListSuiteRuns returns every suite run record, newest first; a record
// that cannot be read is in the error and does not hide the others.
func (s *Store) ListSuiteRuns() ([]api.SuiteRun, error) {
	return listRecords(s, suiteRunsDir, "suite run", func(r api.SuiteRun) (time.Time, string) { return r.CreatedAt, r.ID })
}
