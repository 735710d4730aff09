package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/probes/promtest"
)

// schedReplica is one in-process chaosd replica of the schedule test,
// with a fresh data directory (the pod's emptyDir) and its own clock.
type schedReplica struct {
	name   string
	d      *Daemon
	c      *client.Client
	clock  *setClock
	cancel context.CancelFunc
	done   chan error
}

func (w *kubeWorld) startSchedReplica(t *testing.T, prom, name string, now time.Time) *schedReplica {
	t.Helper()
	cfg := w.kubeConfig(t, t.TempDir(), prom)
	d, err := New(cfg, zaptest.NewLogger(t).Named(name))
	if err != nil {
		t.Fatal(err)
	}
	d.kube.identity = name // one process, several replicas
	r := &schedReplica{name: name, d: d, clock: &setClock{now: now}, done: make(chan error, 1)}
	if err := d.initSchedules(r.clock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(r.stop)
	r.c, err = client.NewClient("unix://"+cfg.Listen.Socket, "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, name+" answers", func() bool { return r.c.Health(context.Background()) == nil })
	return r
}

// stop ends the replica as a pod's SIGTERM does (its Lease released).
func (r *schedReplica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

func (r *schedReplica) leading() bool { l, _ := r.d.leader.get(); return l }

func (r *schedReplica) schedule(t *testing.T, name string) api.ScheduleInfo {
	t.Helper()
	infos, err := r.c.Schedules(context.Background())
	if err != nil {
		t.Fatalf("%s: get schedules: %v", r.name, err)
	}
	for _, in := range infos {
		if in.Experiment == name {
			return in
		}
	}
	t.Fatalf("%s: no schedule %s in %+v", r.name, name, infos)
	return api.ScheduleInfo{}
}

func skipsOf(in api.ScheduleInfo) string {
	var out []string
	for _, k := range in.Skipped { // newest first
		out = append(out, k.Trigger.UTC().Format("15:04")+" "+k.Cause)
	}
	return strings.Join(out, ", ")
}

// TestIntegrationKubeScheduleStateSurvivesReplicas runs chaosd replicas
// in Kubernetes mode (a fresh data directory each, as an emptyDir is)
// against a real API server, with set clocks: a pause sent to the
// replica that does not lead holds on the leader's next trigger; the
// skip the leader records is listed by the other replica; when the
// leader stops and the other takes the Lease, it counts the triggers
// missed meanwhile from the last one handled (missedRuns: runOnce runs
// the latest, skips the one before); a pause survives a restart of every
// replica.
func TestIntegrationKubeScheduleStateSurvivesReplicas(t *testing.T) {
	ctx := context.Background()
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	w := newKubeWorld(t, ctx, "kube-sched", healthy)
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "cut", "1s", `  schedule:
    cron: "0 * * * *"
    timeZone: UTC
    missedRuns: runOnce
    startingDeadline: 1h
`))
	states := store.NewKubeSchedules(w.admin, w.ns, DefaultSchedulesConfigMap)
	handled := func() time.Time { st, _ := states.ScheduleState("cut"); return st.HandledUntil }

	a := w.startSchedReplica(t, prom, "chaosd-a", utc("2026-06-01T03:30:00Z"))
	waitFor(t, 30*time.Second, "a leads", a.leading)
	waitFor(t, 30*time.Second, "a starts counting triggers from 03:30", func() bool {
		return handled().Equal(utc("2026-06-01T03:30:00Z"))
	})
	b := w.startSchedReplica(t, prom, "chaosd-b", utc("2026-06-01T03:40:00Z"))
	if b.leading() {
		t.Fatal("b leads too")
	}

	// Paused on b, which does not lead: a's next trigger is skipped.
	if info, err := b.c.PauseSchedule(ctx, "cut", true); err != nil || !info.Paused {
		t.Fatalf("pause on the replica that does not lead: %+v, %v", info, err)
	}
	a.clock.set(utc("2026-06-01T04:00:00Z"))
	a.d.sched.s.Tick(utc("2026-06-01T04:00:00Z"))
	if in := b.schedule(t, "cut"); !in.Paused || skipsOf(in) != "04:00 paused" {
		t.Errorf("b lists paused %v, skips %q; want paused and a's skip of 04:00", in.Paused, skipsOf(in))
	}
	if runs, _ := a.d.store.List(); len(runs) != 0 {
		t.Errorf("a paused schedule started %d runs", len(runs))
	}
	if _, err := b.c.PauseSchedule(ctx, "cut", false); err != nil {
		t.Fatal(err)
	}

	// a stops after 04:00; b takes over at 06:30. Missed: 05:00 (skipped)
	// and 06:00 (run now by runOnce, within startingDeadline 1h).
	b.clock.set(utc("2026-06-01T06:30:00Z"))
	a.stop()
	waitFor(t, 30*time.Second, "b takes the Lease", b.leading)
	var missed api.Run
	waitFor(t, 30*time.Second, "b runs the latest missed trigger", func() bool {
		runs, _ := b.d.store.List()
		for _, r := range runs {
			if r.Trigger == api.TriggerSchedule {
				missed = r
				return true
			}
		}
		return false
	})
	if missed.ScheduledAt == nil || !missed.ScheduledAt.Equal(utc("2026-06-01T06:00:00Z")) || missed.MissedPolicy != "runOnce" {
		t.Errorf("run after the takeover: scheduledAt %v, missedPolicy %q; want 06:00, runOnce", missed.ScheduledAt, missed.MissedPolicy)
	}
	bi := b.schedule(t, "cut")
	if got, want := skipsOf(bi), "05:00 missed, 04:00 paused"; got != want {
		t.Errorf("skips after the takeover %q, want %q", got, want)
	}
	if !handled().Equal(utc("2026-06-01T06:00:00Z")) {
		t.Errorf("handled until %v after the takeover, want 06:00", handled())
	}
	waitFor(t, 60*time.Second, "the missed run ends", func() bool {
		r, err := b.c.Run(ctx, missed.ID)
		return err == nil && r.Phase == api.PhaseDone
	})

	// Paused, then every replica restarts (new data directories): the
	// pause holds on the new leader's first trigger.
	if _, err := b.c.PauseSchedule(ctx, "cut", true); err != nil {
		t.Fatal(err)
	}
	b.stop()
	c := w.startSchedReplica(t, prom, "chaosd-c", utc("2026-06-01T06:45:00Z"))
	waitFor(t, 30*time.Second, "c leads", c.leading)
	c.clock.set(utc("2026-06-01T07:00:00Z"))
	c.d.sched.s.Tick(utc("2026-06-01T07:00:00Z"))
	ci := c.schedule(t, "cut")
	if !ci.Paused || !strings.HasPrefix(skipsOf(ci), "07:00 paused") {
		t.Errorf("after a restart: paused %v, skips %q; want paused and 07:00 skipped as paused", ci.Paused, skipsOf(ci))
	}
	if runs, _ := c.d.store.List(); len(runs) != 1 {
		t.Errorf("%d runs after the restart, want only the missed one", len(runs))
	}
}
