package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/httpapi"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments"
)

// setClock is a clock the test sets; the scheduler's loop is not run
// (the test drives its rounds), so timers are never asked for.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *setClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return make(chan time.Time), func() bool { return true }
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestDaemonPausedScheduleAndFreezeWithRealStore runs chaosd's scheduler
// on its real store (the data directory) with a set clock: a paused
// schedule does not fire, also after a restart; a trigger inside the
// experiment's freeze window is recorded with the window's name; a run
// on request inside chaosd's freeze window is refused without force and
// names the window in its record with force; once resumed and out of the
// freeze, the schedule fires.
func TestDaemonPausedScheduleAndFreezeWithRealStore(t *testing.T) {
	sched := `  schedule:
    cron: "0 * * * *"
    timeZone: UTC
    freezeWindows:
      - name: maintenance
        start: "2026-06-01T05:30"
        end: "2026-06-01T06:30"
`
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "1s", sched)})
	h.cfg.FreezeWindows = []experiments.FreezeWindow{{Name: "christmas", Start: "2026-12-24", End: "2026-12-26", TimeZone: "Europe/Berlin"}}
	clock := &setClock{now: utc("2026-06-01T03:30:00Z")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	newDaemon := func() *Daemon {
		d, err := New(h.cfg, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.initSchedules(clock); err != nil {
			t.Fatal(err)
		}
		d.runs.setContext(ctx)
		d.syncSchedules()
		return d
	}
	tick := func(d *Daemon, at string) {
		clock.set(utc(at))
		d.sched.s.Tick(utc(at))
	}

	d := newDaemon()
	svc := service{d}
	tick(d, "2026-06-01T03:30:00Z")
	if _, err := svc.PauseSchedule(ctx, "cut", true); err != nil {
		t.Fatal(err)
	}
	tick(d, "2026-06-01T04:00:00Z")

	// A restart keeps the pause.
	d = newDaemon()
	svc = service{d}
	tick(d, "2026-06-01T04:30:00Z")
	tick(d, "2026-06-01T05:00:00Z")
	info, err := svc.PauseSchedule(ctx, "cut", false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Paused {
		t.Errorf("resume answered %+v", info)
	}
	tick(d, "2026-06-01T06:00:00Z") // inside maintenance
	runs, err := d.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Fatalf("paused or frozen schedule started runs: %+v", runs)
	}
	tick(d, "2026-06-01T07:00:00Z") // resumed and out of the freeze: it fires
	if !d.runs.wait(60 * time.Second) {
		t.Fatal("run did not end")
	}

	// Runs on request inside chaosd's freeze window.
	clock.set(utc("2026-12-24T12:00:00Z"))
	_, err = svc.StartRun(ctx, api.StartRequest{Experiment: "cut"})
	var se *httpapi.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusConflict || !strings.Contains(err.Error(), `inside freeze window "christmas" (chaosd config) until 2026-12-27T00:00:00+01:00`) ||
		!strings.Contains(err.Error(), "--force") {
		t.Fatalf("run inside a freeze: %v", err)
	}
	forced, err := svc.StartRun(ctx, api.StartRequest{Experiment: "cut", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.runs.wait(60 * time.Second) {
		t.Fatal("run did not end")
	}
	// An ad hoc experiment (chaosctl run -f) passes the same gate.
	adHocSpec := fmt.Sprintf(testExperiment, "my-cut", "1s", "")
	adHoc, err := experiments.Parse([]byte(adHocSpec), "my-cut.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartAdHocRun(ctx, adHoc, api.StartRequest{Spec: adHocSpec}); !errors.As(err, &se) || se.Status != http.StatusConflict ||
		!strings.Contains(err.Error(), `my-cut is inside freeze window "christmas"`) {
		t.Fatalf("ad hoc run inside a freeze: %v", err)
	}
	forcedAdHoc, err := svc.StartAdHocRun(ctx, adHoc, api.StartRequest{Spec: adHocSpec, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if forcedAdHoc.ForcedFreeze != "christmas" || forcedAdHoc.AdHoc == nil {
		t.Errorf("forced ad hoc run: forcedFreeze %q adHoc %v", forcedAdHoc.ForcedFreeze, forcedAdHoc.AdHoc != nil)
	}
	if !d.runs.wait(60 * time.Second) {
		t.Fatal("run did not end")
	}

	st, err := store.Open(h.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	skips, err := st.Skips()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range skips {
		got = append(got, k.Trigger.Format(time.RFC3339)+" "+k.Cause+" "+k.Window)
	}
	want := []string{"2026-06-01T04:00:00Z paused ", "2026-06-01T05:00:00Z paused ", "2026-06-01T06:00:00Z freeze maintenance"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("skips recorded:\n got %q\nwant %q", got, want)
	}
	runs, err = st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("runs %+v, want the scheduled one and the two forced ones", runs)
	}
	if r, _ := st.Get(forced.ID); r.ForcedFreeze != "christmas" || r.Trigger != api.TriggerManual {
		t.Errorf("forced run record: trigger %s forcedFreeze %q", r.Trigger, r.ForcedFreeze)
	}
	scheduled := runs[2]
	if scheduled.Trigger != api.TriggerSchedule || scheduled.ScheduledAt == nil || !scheduled.ScheduledAt.Equal(utc("2026-06-01T07:00:00Z")) {
		t.Errorf("scheduled run record: trigger %s scheduledAt %v", scheduled.Trigger, scheduled.ScheduledAt)
	}

	// What chaosctl get schedules shows.
	clock.set(utc("2026-06-01T05:10:00Z"))
	infos, err := svc.Schedules(ctx)
	if err != nil || len(infos) != 1 {
		t.Fatalf("schedules %+v, %v", infos, err)
	}
	in := infos[0]
	var next []string
	for _, f := range in.Next {
		next = append(next, f.Time.Format(time.RFC3339)+" "+f.Frozen)
	}
	if strings.Join(next, "|") != "2026-06-01T06:00:00Z maintenance|2026-06-01T07:00:00Z |2026-06-01T08:00:00Z " {
		t.Errorf("next fire times %q", next)
	}
	if in.Paused || in.LastRun == nil || in.LastRun.ID != forced.ID || len(in.Skipped) != 3 || in.Skipped[0].Window != "maintenance" ||
		strings.Join(in.FreezeWindows, ",") != "christmas,maintenance" || in.LastTrigger == nil || !in.LastTrigger.Equal(utc("2026-06-01T07:00:00Z")) {
		t.Errorf("schedule info %+v", in)
	}
	if _, err := svc.PauseSchedule(ctx, "nope", true); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("pause of an unknown experiment: %v", err)
	}
}
