package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chaosd/chaosd/api"
)

// schedulesFile holds every schedule's state (schedules.json, next to
// the skip log): the last trigger handled and whether it is paused.
const schedulesFile = "schedules.json"

// ScheduleState returns an experiment's schedule state (zero when none
// is kept).
func (s *Store) ScheduleState(experiment string) (api.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.readSchedules()
	return all[experiment], err
}

// UpdateScheduleState changes an experiment's schedule state and keeps
// it, durably (written atomically and fsynced); it returns the state
// written.
func (s *Store) UpdateScheduleState(experiment string, change func(*api.ScheduleState)) (api.ScheduleState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.readSchedules()
	if err != nil {
		return api.ScheduleState{}, err
	}
	st := all[experiment]
	change(&st)
	all[experiment] = st
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return st, fmt.Errorf("encode schedule state: %w", err)
	}
	return st, s.writeFileAtomic(filepath.Join(s.dir, schedulesFile), data)
}

func (s *Store) readSchedules() (map[string]api.ScheduleState, error) {
	all := map[string]api.ScheduleState{}
	data, err := os.ReadFile(filepath.Join(s.dir, schedulesFile))
	if errors.Is(err, os.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return all, fmt.Errorf("read schedule state: %w", err)
	}
	if err := json.Unmarshal(data, &all); err != nil {
		return map[string]api.ScheduleState{}, fmt.Errorf("decode schedule state %s: %w", schedulesFile, err)
	}
	return all, nil
}
