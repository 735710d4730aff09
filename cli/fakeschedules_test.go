package cli

import (
	"context"
	"net/http"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
)

// fakeSchedules is the fake chaosd's schedule state: exp-pass is
// scheduled (paused or not), and a freeze window may hold.
type fakeSchedules struct {
	paused   bool
	pausedAt time.Time
	// frozen, when set, is the freeze window every run on request is
	// refused in without force; forced lists the forced requests.
	frozen string
	forced []api.StartRequest
}

// refuse answers a run request like chaosd inside a freeze window.
// Called with f.mu held.
func (s *fakeSchedules) refuse(req api.StartRequest) error {
	if s.frozen == "" || req.DryRun {
		return nil
	}
	if !req.Force {
		return httpapi.Errorf(http.StatusConflict, "%s is inside freeze window %q (chaosd config) until 2026-12-27T00:00:00+01:00: "+
			"no run starts in a freeze; force it with --force (API: \"force\": true)", req.Experiment, s.frozen)
	}
	s.forced = append(s.forced, req)
	return nil
}

func (s *fakeSchedules) info() api.ScheduleInfo {
	at := func(v string) time.Time { t, _ := time.Parse(time.RFC3339, v); return t }
	in := api.ScheduleInfo{
		Experiment: "exp-pass", Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Paused: s.paused,
		MissedRuns: "runOnce", StartingDeadline: "2h", FreezeWindows: []string{"christmas", "peak-hours"},
		Next: []api.FireTime{
			{Time: at("2026-11-26T01:30:00Z")},
			{Time: at("2026-11-27T01:30:00Z"), Frozen: "release-1.4"},
			{Time: at("2026-11-28T01:30:00Z")},
		},
		LastRun: &api.RunSummary{ID: "r-0042", Trigger: api.TriggerSchedule, CreatedAt: at("2026-11-25T01:30:00Z"),
			Phase: api.PhaseDone, Verdict: api.VerdictPass},
		Skipped: []api.SkipInfo{
			{Time: at("2026-11-24T01:30:00Z"), Trigger: at("2026-11-24T01:30:00Z"), Experiment: "exp-pass", Cause: api.SkipFreeze,
				Window: "release-1.4", Reason: `inside freeze window "release-1.4" (chaosd config) until 2026-11-24T06:00:00Z`},
			{Time: at("2026-11-23T08:00:00Z"), Trigger: at("2026-11-23T01:30:00Z"), Experiment: "exp-pass", Cause: api.SkipMissed,
				Reason: "missed while chaosd was down; the latest (2026-11-23T01:30:00Z) is older than startingDeadline 2h (missedRuns: runOnce)"},
		},
	}
	if s.paused {
		in.PausedAt = &s.pausedAt
	}
	return in
}

func (f *fakeChaosd) Schedules(context.Context) ([]api.ScheduleInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return nil, err
	}
	return []api.ScheduleInfo{f.scheds.info()}, nil
}

func (f *fakeChaosd) PauseSchedule(_ context.Context, name string, paused bool) (api.ScheduleInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.forced(); err != nil {
		return api.ScheduleInfo{}, err
	}
	if _, ok := f.experiments[name]; !ok {
		return api.ScheduleInfo{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", name)
	}
	if name != "exp-pass" {
		return api.ScheduleInfo{}, httpapi.Errorf(http.StatusNotFound, "experiment without a schedule %q", name)
	}
	f.scheds.paused, f.scheds.pausedAt = paused, t0
	return f.scheds.info(), nil
}
