package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"runtime"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/experiments"
)

// service is the Daemon as the Service of its HTTP API (httpapi.Handler).
type service struct{ d *Daemon }

var _ httpapi.Service = service{}

// Experiments lists the experiments chaosd knows.
func (s service) Experiments(context.Context) ([]api.ExperimentInfo, error) {
	return s.d.experimentInfos(), nil
}

// StartRun starts a run on request (inside a freeze window only with
// req.Force).
func (s service) StartRun(_ context.Context, req api.StartRequest) (api.Run, error) {
	return s.d.startRequested(req)
}

// Schedules describes every scheduled experiment.
func (s service) Schedules(context.Context) ([]api.ScheduleInfo, error) {
	return s.d.scheduleInfos("")
}

// PauseSchedule pauses (or resumes) an experiment's schedule.
func (s service) PauseSchedule(_ context.Context, name string, paused bool) (api.ScheduleInfo, error) {
	return s.d.setPaused(name, paused)
}

// StartAdHocRun starts a run of an ad hoc experiment (validated by the
// handler with the library's loader).
func (s service) StartAdHocRun(_ context.Context, exp *experiments.Experiment, req api.StartRequest) (api.Run, error) {
	return s.d.startAdHoc(exp, req)
}

// Preview resolves an experiment's targets now and asks their agents.
func (s service) Preview(ctx context.Context, name string) (api.ExperimentPreview, error) {
	exp, ok := s.d.exps.get(name)
	if !ok {
		return api.ExperimentPreview{}, httpapi.Errorf(http.StatusNotFound, "unknown experiment %q", httpapi.Clip(name, 64))
	}
	var info api.ExperimentInfo
	for _, e := range s.d.experimentInfos() {
		if e.Name == name {
			info = e
		}
	}
	return preview(ctx, exp, info, s.d.inventory, s.d.fleet, time.Now()), nil
}

// Version is chaosd's version.
func (s service) Version(context.Context) (api.VersionInfo, error) {
	mode := "standalone"
	if s.d.kube != nil {
		mode = "kubernetes"
	}
	return api.VersionInfo{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Mode: mode}, nil
}

// Version is chaosd's version, set by its main (-X main.version=...).
var Version = "dev"

// Runs lists the recorded runs, newest first.
// Runs whose record could not be saved are listed from memory.
func (s service) Runs(context.Context) ([]api.Run, error) {
	runs, err := s.d.store.List()
	unsaved := s.d.runs.allUnsaved()
	if len(unsaved) == 0 {
		return runs, err
	}
	byID := map[string]int{}
	for i, r := range runs {
		byID[r.ID] = i
	}
	for _, u := range unsaved {
		if i, ok := byID[u.ID]; ok {
			runs[i] = u
		} else {
			runs = append(runs, u)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].CreatedAt.After(runs[j].CreatedAt) })
	return runs, err
}

// Run returns one run: live while it is in progress, else its record.
func (s service) Run(_ context.Context, id string) (api.Run, error) {
	if rn, live := s.d.runs.get(id); live {
		return rn.Record(), nil
	}
	if rec, ok := s.d.runs.getUnsaved(id); ok {
		return rec, nil
	}
	rec, err := s.d.store.Get(id)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return api.Run{}, httpapi.Errorf(http.StatusNotFound, "run %q not found", httpapi.Clip(id, 64))
	case err != nil:
		// The store's error names files of the data directory: it goes to
		// the log, not to the client.
		s.d.lg.Error("read run record", zap.String("run", httpapi.Clip(id, 64)), zap.Error(err))
		return api.Run{}, httpapi.Errorf(http.StatusInternalServerError, "run %s: its record could not be read (see chaosd's log)", httpapi.Clip(id, 64))
	}
	return rec, nil
}

// Timeline range-queries the run's probes over the run, for the report.
// It reads the record like Run (so the same credential sees both) and
// asks Prometheus now; Prometheus failing is in the answer, not an error.
func (s service) Timeline(ctx context.Context, id string) (api.Timeline, error) {
	run, err := s.Run(ctx, id)
	if err != nil {
		return api.Timeline{}, err
	}
	exp, _ := s.d.exps.get(run.Experiment)
	if run.AdHoc != nil {
		// An ad hoc run's probes are in its record's spec, whatever the
		// library holds under that name now.
		exp, err = experiments.Parse([]byte(run.AdHoc.Spec), "run "+run.ID)
		if err != nil {
			exp = nil
		}
	}
	return buildTimeline(ctx, s.d.prober, run, exp, time.Now()), nil
}

// Abort aborts a run in progress at a user's request. A suite run ID
// aborts the suite run (answered as AbortSuiteRun is, through the
// route of suite runs; here with a 409 pointing there).
func (s service) Abort(_ context.Context, id string) (api.Run, error) {
	if isSuiteRunID(id) {
		if _, err := s.d.abortSuiteRun(id, "chaosctl abort"); err != nil {
			return api.Run{}, err
		}
		return api.Run{ID: id, Phase: api.PhaseReverting, Reason: "suite run abort requested"}, nil
	}
	return s.d.abort(id, "chaosctl abort")
}

// Suites lists the suites chaosd knows.
func (s service) Suites(context.Context) ([]api.SuiteInfo, error) { return s.d.suiteInfos(), nil }

// StartSuiteRun starts a run of a suite on request.
func (s service) StartSuiteRun(_ context.Context, req api.SuiteStartRequest) (api.SuiteRun, error) {
	return s.d.startSuite(req.Suite, suiteOptions{trigger: api.TriggerManual, dryRun: req.DryRun, force: req.Force})
}

// SuiteRuns lists suite runs, newest first.
func (s service) SuiteRuns(context.Context) ([]api.SuiteRun, error) { return s.d.suiteRuns() }

// SuiteRun returns one suite run.
func (s service) SuiteRun(_ context.Context, id string) (api.SuiteRun, error) {
	return s.d.suiteRun(id)
}

// AbortSuiteRun aborts a suite run in progress.
func (s service) AbortSuiteRun(_ context.Context, id string) (api.SuiteRun, error) {
	return s.d.abortSuiteRun(id, "chaosctl abort")
}

// Halt is the big red button.
func (s service) Halt(ctx context.Context, cluster string) (api.HaltResult, error) {
	return s.d.halt(ctx, cluster)
}

// Agents asks every agent for its status now.
func (s service) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	return agentInfos(ctx, s.d.fleet), nil
}

// Skips lists the schedule triggers that did not start a run.
func (s service) Skips(context.Context) ([]api.SkipInfo, error) {
	return s.d.schedules.Skips()
}
