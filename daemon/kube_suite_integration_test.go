package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/probes/promtest"
)

func (w *kubeWorld) createSuite(t *testing.T, ctx context.Context, u *unstructured.Unstructured) {
	t.Helper()
	u.SetNamespace(w.ns)
	if _, err := mustDynamic(t, w.srv).Resource(Suites).Namespace(w.ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Suite %s: %v", u.GetName(), err)
	}
}

// suiteStatus returns a Suite's status once chaosd wrote its condition
// for the object's generation with the given status.
func (w *kubeWorld) suiteStatus(t *testing.T, ctx context.Context, name, want string) (cond map[string]any, count int64) {
	t.Helper()
	waitFor(t, 20*time.Second, "Suite "+name+" Ready="+want, func() bool {
		u, err := mustDynamic(t, w.srv).Resource(Suites).Namespace(w.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		count, _, _ = unstructured.NestedInt64(u.Object, "status", "experimentCount")
		if len(conds) > 0 {
			cond = conds[0].(map[string]any)
		}
		return cond != nil && cond["status"] == want
	})
	return cond, count
}

func suiteNames(t *testing.T, r *schedReplica) []string {
	t.Helper()
	infos, err := r.c.Suites(context.Background())
	if err != nil {
		t.Fatalf("%s: get suites: %v", r.name, err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, in.Name)
	}
	return out
}

// TestIntegrationKubeSuites: a game day in Kubernetes mode, against a
// real API server with chaosd's CRDs and RBAC and fake agents. A leader
// that died mid-suite left a SuiteRun running: the next leader marks it
// interrupted (its experiment's fault reverted). Suite objects are
// validated as files are: one with a too-short pause and one naming an
// experiment that does not exist are refused (condition, Event, log
// naming the field), the latter accepted once the experiment is created;
// get suites lists the valid ones. A suite run, started by hand and by its
// schedule (suite/NAME), ends as one SuiteRun object holding each
// experiment's run ID and verdict, read by the other replica too. A
// leader change in the middle of a suite keeps its SuiteRun, marked
// interrupted, and starts nothing more of it.
func TestIntegrationKubeSuites(t *testing.T) {
	ctx := context.Background()
	healthy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sut_healthy"})
	healthy.Set(1)
	prom := promtest.Start(t, exporter(t, healthy))
	w := newKubeWorld(t, ctx, "kube-suite", healthy)
	dyn := mustDynamic(t, w.srv)
	runs, suiteRuns := store.NewKubeStore(dyn, w.ns), store.NewKubeSuiteRuns(dyn, w.ns)

	w.createExperiment(t, ctx, experimentObject(t, w.ns, "cut", "1s", ""))
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "slow", "1s", ""))
	gameDay := suiteObject(t, "game-day", "1s", "cut", "slow")
	_ = unstructured.SetNestedMap(gameDay.Object, map[string]any{"cron": "0 * * * *", "timeZone": "UTC"}, "spec", "schedule")
	w.createSuite(t, ctx, gameDay)
	w.createSuite(t, ctx, suiteObject(t, "short-pause", "500ms", "cut", "slow")) // baselines are 1s
	w.createSuite(t, ctx, suiteObject(t, "needs-later", "1s", "cut", "later"))

	// What a leader that died during the second experiment of a suite
	// left: the SuiteRun running, the ExperimentRun observing, its fault
	// on a node.
	at := time.Now().Add(-time.Minute)
	w.nodes[0].mu.Lock()
	w.nodes[0].active["r-mid.cut"] = agentapi.Fault{ID: "r-mid.cut"}
	w.nodes[0].mu.Unlock()
	mid := api.Run{ID: "r-mid", Experiment: "cut", Trigger: api.TriggerManual, SuiteRun: "s-old", Phase: api.PhaseObserving, CreatedAt: at,
		Times:  api.Times{Injected: &at},
		Faults: []api.FaultRecord{{Name: "cut", Kind: "partition", Cluster: "c1", Node: w.nodes[0].name, AgentFaultID: "r-mid.cut", InjectedAt: &at}}}
	done := at.Add(-time.Minute)
	old := api.SuiteRun{ID: "s-old", Suite: "game-day", Trigger: api.TriggerManual, StopOnFailure: true, Phase: api.SuiteRunning, Current: 1,
		CreatedAt: at.Add(-2 * time.Minute),
		Entries: []api.SuiteEntryResult{
			{Experiment: "cut", RunID: "r-first", Phase: api.PhaseDone, Verdict: api.VerdictPass, StartedAt: &done, FinishedAt: &done},
			{Experiment: "slow", RunID: "r-mid", Phase: api.PhaseObserving, StartedAt: &at},
		}}
	if err := runs.Save(mid); err != nil {
		t.Fatal(err)
	}
	if err := suiteRuns.SaveSuiteRun(old); err != nil {
		t.Fatal(err)
	}

	a := w.startSchedReplica(t, prom, "chaosd-a", utc("2026-06-01T03:30:00Z"))
	waitFor(t, 30*time.Second, "a leads", a.leading)
	var rec api.SuiteRun
	waitFor(t, 30*time.Second, "the new leader settles the suite run it found running", func() bool {
		r, err := suiteRuns.GetSuiteRun("s-old")
		rec = r
		return err == nil && r.Phase == api.SuiteDone
	})
	if !rec.Interrupted || rec.Verdict != api.VerdictError || rec.Entries[0].Verdict != api.VerdictPass ||
		rec.Entries[1].Verdict != api.VerdictError || !rec.Entries[1].Interrupted {
		t.Errorf("interrupted suite run: %s interrupted=%v (%s), entries %+v", rec.Verdict, rec.Interrupted, rec.Reason, rec.Entries)
	}
	if w.nodes[0].activeCount() != 0 {
		t.Error("the interrupted experiment's fault is still active")
	}

	// Validation: the fields are named in the condition, an Event and the
	// API's list leaves the suites out.
	wantPause := "suite kube-suite/short-pause: spec.pause: 500ms is shorter than the steady-state baseline (1s) of slow"
	if cond, _ := w.suiteStatus(t, ctx, "short-pause", "False"); !strings.Contains(fmt.Sprint(cond["message"]), wantPause) {
		t.Errorf("short-pause condition %v, want a message containing %q", cond, wantPause)
	}
	waitFor(t, 10*time.Second, "an Event names spec.pause", func() bool {
		return strings.Contains(strings.Join(w.events(t, ctx, w.ns, "Suite", "short-pause"), "\n"), "InvalidSuite: "+wantPause)
	})
	wantUnknown := `spec.experiments[1].experiment: unknown experiment "later"`
	if cond, _ := w.suiteStatus(t, ctx, "needs-later", "False"); !strings.Contains(fmt.Sprint(cond["message"]), wantUnknown) {
		t.Errorf("needs-later condition %v, want a message containing %q", cond, wantUnknown)
	}
	if _, count := w.suiteStatus(t, ctx, "game-day", "True"); count != 2 {
		t.Errorf("game-day: experimentCount %d, want 2", count)
	}
	if got := suiteNames(t, a); !slices.Equal(got, []string{"game-day"}) {
		t.Errorf("get suites: %v, want only game-day", got)
	}
	if _, err := a.c.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "short-pause"}); !isStatus(err, 404) {
		t.Errorf("starting an invalid suite: %v, want 404", err)
	}
	// The experiment it names arrives: the suite is checked again.
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "later", "1s", ""))
	w.suiteStatus(t, ctx, "needs-later", "True")
	waitFor(t, 10*time.Second, "get suites lists needs-later", func() bool {
		return slices.Equal(suiteNames(t, a), []string{"game-day", "needs-later"})
	})

	// A suite run started by hand: one SuiteRun object, each experiment's
	// run ID and verdict in it; the member runs carry its name.
	first, err := a.c.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "game-day"})
	if err != nil {
		t.Fatal(err)
	}
	// The API shows the record as it is in memory; the SuiteRun object
	// gets the final one when its save returns, a moment later.
	waitFor(t, 2*time.Minute, "the suite run ends, in its SuiteRun object", func() bool {
		r, err := suiteRuns.GetSuiteRun(first.ID)
		return err == nil && r.Phase == api.SuiteDone
	})
	rec, err = suiteRuns.GetSuiteRun(first.ID)
	if err != nil || rec.Verdict != api.VerdictPass || len(rec.Entries) != 2 {
		t.Fatalf("SuiteRun %s: %+v (%v)", first.ID, rec, err)
	}
	for _, e := range rec.Entries {
		run, err := runs.Get(e.RunID)
		if e.RunID == "" || e.Verdict != api.VerdictPass || err != nil || run.Verdict != e.Verdict || run.SuiteRun != first.ID {
			t.Errorf("entry %+v; its ExperimentRun %+v (%v)", e, run, err)
		}
	}
	objs, err := dyn.Resource(store.SuiteRuns).Namespace(w.ns).List(ctx, metav1.ListOptions{LabelSelector: store.SuiteLabel + "=game-day"})
	if err != nil || len(objs.Items) != 2 { // s-old and this one
		t.Errorf("SuiteRun objects of game-day: %d (%v), want 2", len(objs.Items), err)
	}
	members, err := dyn.Resource(store.ExperimentRuns).Namespace(w.ns).List(ctx, metav1.ListOptions{LabelSelector: store.SuiteRunLabel + "=" + first.ID})
	if err != nil || len(members.Items) != 2 {
		t.Errorf("ExperimentRuns labelled with the suite run: %d (%v), want 2", len(members.Items), err)
	}

	// The other replica reads the same records and watches the same suites.
	b := w.startSchedReplica(t, prom, "chaosd-b", utc("2026-06-01T03:30:00Z"))
	if b.leading() {
		t.Fatal("b leads too")
	}
	if r, err := b.c.SuiteRun(ctx, first.ID); err != nil || r.Verdict != api.VerdictPass || r.Entries[1].RunID != rec.Entries[1].RunID {
		t.Errorf("b reads suite run %s: %+v (%v)", first.ID, r, err)
	}
	waitFor(t, 20*time.Second, "b lists the suites", func() bool {
		return slices.Equal(suiteNames(t, b), []string{"game-day", "needs-later"})
	})

	// The suite's schedule is the scheduler's suite/game-day.
	if in := a.schedule(t, "suite/game-day"); in.Suite != "game-day" || len(in.Next) == 0 || !in.Next[0].Time.Equal(utc("2026-06-01T04:00:00Z")) {
		t.Errorf("schedule suite/game-day: %+v", in)
	}
	a.clock.set(utc("2026-06-01T04:00:00Z"))
	a.d.sched.s.Tick(utc("2026-06-01T04:00:00Z"))
	var scheduled api.SuiteRun
	waitFor(t, 2*time.Minute, "the scheduled suite run ends", func() bool {
		list, _ := suiteRuns.ListSuiteRuns()
		for _, r := range list {
			if r.Trigger == api.TriggerSchedule && r.Phase == api.SuiteDone {
				scheduled = r
				return true
			}
		}
		return false
	})
	if scheduled.Verdict != api.VerdictPass || scheduled.ScheduledAt == nil || !scheduled.ScheduledAt.Equal(utc("2026-06-01T04:00:00Z")) {
		t.Errorf("scheduled suite run: %s, scheduledAt %v", scheduled.Verdict, scheduled.ScheduledAt)
	}

	// A leader change in the middle of a suite: the SuiteRun stays,
	// interrupted, and nothing more of the suite runs.
	w.createExperiment(t, ctx, experimentObject(t, w.ns, "hold", "60s", ""))
	w.createSuite(t, ctx, suiteObject(t, "long", "1s", "hold", "cut"))
	waitFor(t, 20*time.Second, "a has suite long", func() bool { return slices.Contains(suiteNames(t, a), "long") })
	long, err := a.c.StartSuiteRun(ctx, api.SuiteStartRequest{Suite: "long"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "hold's fault is injected", func() bool {
		r, err := a.c.SuiteRun(ctx, long.ID)
		return err == nil && r.Entries[0].RunID != "" && w.nodes[0].activeCount()+w.nodes[1].activeCount() > 0
	})
	// a releases the Lease only once its runs have reverted: b never
	// leads while a fault of a's run is still in place.
	watchCtx, stopWatch := context.WithCancel(ctx)
	overlap := make(chan string, 1)
	go func() {
		for watchCtx.Err() == nil {
			if b.leading() {
				for _, n := range w.nodes {
					if c := n.activeCount(); c != 0 {
						overlap <- fmt.Sprintf("b leads while %d fault(s) of a's run are still on %s: a released the Lease before reverting", c, n.name)
						return
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(overlap)
	}()
	a.stop()
	waitFor(t, 30*time.Second, "b takes the Lease", b.leading)
	stopWatch()
	if msg, ok := <-overlap; ok {
		t.Error(msg)
	}
	var got api.SuiteRun
	waitFor(t, 30*time.Second, "the suite run is settled", func() bool {
		got, err = b.c.SuiteRun(ctx, long.ID)
		return err == nil && got.Phase == api.SuiteDone
	})
	if !got.Interrupted || got.Verdict != api.VerdictError ||
		got.Entries[0].RunID == "" || got.Entries[1].RunID != "" || got.Entries[1].Skipped != api.SkippedInterrupted {
		t.Errorf("suite run after the leader change: %+v", got)
	}
	for _, n := range w.nodes {
		if n.activeCount() != 0 {
			t.Errorf("fault left on %s after the leader change", n.name)
		}
	}
	if list, _ := suiteRuns.ListSuiteRuns(); len(list) != 4 {
		t.Errorf("%d SuiteRun objects, want 4 (the old one, by hand, scheduled, the interrupted one)", len(list))
	}
}
