package crd

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const testNamespace = "crd-test"

var (
	experimentsGVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: ExperimentPlural}
	runsGVR        = schema.GroupVersionResource{Group: Group, Version: Version, Resource: ExperimentRunPlural}
	suitesGVR      = schema.GroupVersionResource{Group: Group, Version: Version, Resource: SuitePlural}
	suiteRunsGVR   = schema.GroupVersionResource{Group: Group, Version: Version, Resource: SuiteRunPlural}
)

// server returns the shared API server with the CRDs installed and the
// test namespace created.
func server(t *testing.T) (*kubetest.Server, context.Context) {
	t.Helper()
	s := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InstallCRDs(ctx, crds...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ServiceAccountConfig(ctx, testNamespace, "default"); err != nil { // creates the namespace
		t.Fatal(err)
	}
	return s, ctx
}

// strictDryRun is what `kubectl apply` of a new object asks for: a create
// with strict field validation (here without storing it).
var strictDryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}

func TestAPIServerLibraryExperimentsAccepted(t *testing.T) {
	s, ctx := server(t)
	files, err := filepath.Glob("../library/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no library experiments: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := kubetest.Objects(data)
			if err != nil || len(objs) != 1 {
				t.Fatalf("want one object, got %d: %v", len(objs), err)
			}
			obj := objs[0]
			obj.SetNamespace(testNamespace)
			if _, err := s.Create(ctx, obj, strictDryRun); err != nil {
				t.Fatalf("server-side dry-run create (strict field validation) refused %s: %v", f, err)
			}
		})
	}
}

// A valid experiment to break in the cases below.
const validExperiment = `apiVersion: chaosd.io/v1alpha1
kind: Experiment
metadata:
  name: valid
spec:
  targets: [{name: c1-nodes, cluster: c1, mode: "fixed:2"}]
  faults:
    - {name: cut, kind: partition, target: c1-nodes, partition: {cidrs: [10.1.0.0/16], ports: [8082]}}
    - {name: slow, kind: latency, target: c1-nodes, latency: {cidrs: [10.1.0.0/16], delay: 200ms, rate: 10mbit}}
  duration: 30s
  steadyState:
    probes: [{name: up, query: up, op: "==", threshold: 1}]
  abortWhen:
    - {name: down, query: up, op: "<", threshold: 1, for: 10s}
`

func TestAPIServerMalformedExperimentsRefused(t *testing.T) {
	s, ctx := server(t)
	base := func(t *testing.T) *unstructured.Unstructured {
		objs, err := kubetest.Objects([]byte(validExperiment))
		if err != nil {
			t.Fatal(err)
		}
		objs[0].SetNamespace(testNamespace)
		return objs[0]
	}
	t.Run("valid", func(t *testing.T) {
		if _, err := s.Create(ctx, base(t), strictDryRun); err != nil {
			t.Fatalf("the valid experiment is refused: %v", err)
		}
	})
	for name, c := range map[string]struct {
		path []string
		val  any
		del  bool
		want string
	}{
		"duration not a string":  {path: []string{"spec", "duration"}, val: int64(30), want: "spec.duration"},
		"targets not a list":     {path: []string{"spec", "targets"}, val: "c1", want: "spec.targets"},
		"threshold not a number": {path: []string{"spec", "steadyState", "probes"}, val: []any{map[string]any{"name": "up", "query": "up", "op": "==", "threshold": "one"}}, want: "threshold"},
		"unknown kind":           {path: []string{"spec", "faults"}, val: []any{map[string]any{"name": "x", "kind": "meteor", "target": "c1-nodes"}}, want: "kind"},
		"unknown op":             {path: []string{"spec", "steadyState", "probes"}, val: []any{map[string]any{"name": "up", "query": "up", "op": "=~", "threshold": int64(1)}}, want: "op"},
		"port out of range":      {path: []string{"spec", "faults"}, val: []any{map[string]any{"name": "x", "kind": "partition", "target": "c1-nodes", "partition": map[string]any{"cidrs": []any{"10.1.0.0/16"}, "ports": []any{int64(70000)}}}}, want: "ports"},
		"not a CIDR":             {path: []string{"spec", "faults"}, val: []any{map[string]any{"name": "x", "kind": "partition", "target": "c1-nodes", "partition": map[string]any{"cidrs": []any{"10.1.0.0"}}}}, want: "cidrs"},
		"no targets":             {path: []string{"spec", "targets"}, del: true, want: "spec.targets"},
		"empty faults":           {path: []string{"spec", "faults"}, val: []any{}, want: "spec.faults"},
		"abort without for":      {path: []string{"spec", "abortWhen"}, val: []any{map[string]any{"name": "down", "query": "up", "op": "<", "threshold": int64(1)}}, want: "for"},
		"unknown field":          {path: []string{"spec", "probeIntervall"}, val: "1s", want: "probeIntervall"},
		"name not a DNS label":   {path: []string{"metadata", "name"}, val: "partition.c1", want: "DNS-1123 label"},
	} {
		t.Run(name, func(t *testing.T) {
			obj := base(t)
			var err error
			if c.del {
				unstructured.RemoveNestedField(obj.Object, c.path...)
			} else {
				err = unstructured.SetNestedField(obj.Object, c.val, c.path...)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Create(ctx, obj, strictDryRun)
			if err == nil {
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want Invalid or BadRequest, got %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the error does not name %q: %v", c.want, err)
			}
		})
	}
}

// An ExperimentRun holds a run record in its status: chaosd's JSON of
// api.Run is stored as written (NaN probe values, null fields), the
// printer columns show it, and the spec cannot change.
func TestAPIServerExperimentRunStatus(t *testing.T) {
	s, ctx := server(t)
	d, err := s.Dynamic(nil)
	if err != nil {
		t.Fatal(err)
	}
	runs := d.Resource(runsGVR).Namespace(testNamespace)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version, "kind": ExperimentRunKind,
		"metadata": map[string]any{"generateName": "partition-c1-c2-"},
		"spec":     map[string]any{"experiment": "partition-c1-c2", "trigger": "manual"},
	}}
	created, err := runs.Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = runs.Delete(context.Background(), created.GetName(), metav1.DeleteOptions{}) }()

	now := time.Now().UTC().Truncate(time.Second)
	rto := 42.5
	run := api.Run{
		ID: created.GetName(), Experiment: "partition-c1-c2", Trigger: api.TriggerManual,
		Phase: api.PhaseDone, Verdict: api.VerdictPass, CreatedAt: now, FinishedAt: &now,
		Times:  api.Times{Started: &now, Injected: &now},
		RTO:    api.RTO{MeasuredSeconds: &rto, TargetSeconds: 900, ResolutionSeconds: 1},
		Faults: []api.FaultRecord{{Name: "cut-tgw", Kind: "partition", Cluster: "c1", Node: "n1", AgentFaultID: "f1", InjectedAt: &now, Verified: true}},
		Phases: []api.PhaseResult{{Phase: api.PhaseSteadyState, Probes: []api.ProbeSummary{{
			Name: "p", Query: "up", Condition: "== 1", Evaluations: 3,
			Last: api.ProbeResult{Probe: "p", Time: now, Value: math.NaN(), Series: []api.SeriesValue{{Labels: `{job="x"}`, Value: math.Inf(1)}}},
		}}}},
		Current: []api.ProbeResult{{Probe: "p", Time: now, OK: true, Value: 0.995}},
		// Events left nil: written as null, which the server drops.
	}
	status, err := toMap(run)
	if err != nil {
		t.Fatal(err)
	}
	created.Object["status"] = status
	updated, err := runs.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatalf("update status with an api.Run: %v", err)
	}
	b, err := json.Marshal(updated.Object["status"])
	if err != nil {
		t.Fatal(err)
	}
	var back api.Run
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the stored status is not an api.Run: %v", err)
	}
	if back.Verdict != api.VerdictPass || back.RTO.MeasuredSeconds == nil || *back.RTO.MeasuredSeconds != rto ||
		!math.IsNaN(back.Phases[0].Probes[0].Last.Value) || !math.IsInf(back.Phases[0].Probes[0].Last.Series[0].Value, 1) ||
		back.Current[0].Value != 0.995 || !back.CreatedAt.Equal(now) {
		t.Errorf("the run record did not survive the round trip: %s", b)
	}

	// kubectl get experimentruns: the server's table has the columns.
	table := getTable(t, ctx, s.Config(), "/apis/"+Group+"/"+Version+"/namespaces/"+testNamespace+"/"+ExperimentRunPlural+"/"+created.GetName())
	want := map[string]string{"Experiment": "partition-c1-c2", "Phase": "done", "Verdict": "pass", "RTO": "42.5"}
	for i, col := range table.ColumnDefinitions {
		if w, ok := want[col.Name]; ok {
			if got := toString(table.Rows[0].Cells[i]); got != w {
				t.Errorf("column %s = %q, want %q", col.Name, got, w)
			}
			delete(want, col.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("columns missing from the table: %v", want)
	}

	// The spec is immutable.
	updated.Object["spec"] = map[string]any{"experiment": "latency-c1-c2"}
	if _, err := runs.Update(ctx, updated, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing a run's spec: want Invalid (immutable), got %v", err)
	}
	// A run without an experiment is refused.
	obj.Object["spec"] = map[string]any{"trigger": "manual"}
	if _, err := runs.Create(ctx, obj, strictDryRun); !apierrors.IsInvalid(err) {
		t.Errorf("a run without spec.experiment: want Invalid, got %v", err)
	}
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// getTable asks the server for the table kubectl get prints.
func getTable(t *testing.T, ctx context.Context, cfg *rest.Config, path string) *metav1.Table {
	t.Helper()
	cfg.GroupVersion = &schema.GroupVersion{}
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rc.Get().AbsPath(path).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("table with %d rows", len(table.Rows))
	}
	return &table
}

// The example game day is accepted as it is (kubectl apply -f
// examples/game-day.yaml); malformed suites are refused naming the field;
// the Experiments column counts what chaosd writes in the status.
func TestAPIServerSuites(t *testing.T) {
	s, ctx := server(t)
	data, err := os.ReadFile("../../examples/game-day.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := func(t *testing.T) *unstructured.Unstructured {
		objs, err := kubetest.Objects(data)
		if err != nil || len(objs) != 1 {
			t.Fatalf("want one object, got %d: %v", len(objs), err)
		}
		objs[0].SetNamespace(testNamespace)
		return objs[0]
	}
	t.Run("example", func(t *testing.T) {
		if _, err := s.Create(ctx, base(t), strictDryRun); err != nil {
			t.Fatalf("server-side dry-run create (strict field validation) refused examples/game-day.yaml: %v", err)
		}
	})
	for name, c := range map[string]struct {
		path []string
		val  any
		del  bool
		want string
	}{
		"no experiments":        {path: []string{"spec", "experiments"}, del: true, want: "spec.experiments"},
		"empty experiments":     {path: []string{"spec", "experiments"}, val: []any{}, want: "spec.experiments"},
		"entry without name":    {path: []string{"spec", "experiments"}, val: []any{map[string]any{}}, want: "experiment"},
		"unknown entry field":   {path: []string{"spec", "experiments"}, val: []any{map[string]any{"experiment": "a", "expriment": "b"}}, want: "expriment"},
		"pause not a string":    {path: []string{"spec", "pause"}, val: int64(60), want: "spec.pause"},
		"stopOnFailure string":  {path: []string{"spec", "stopOnFailure"}, val: "yes", want: "spec.stopOnFailure"},
		"schedule without cron": {path: []string{"spec", "schedule"}, val: map[string]any{"timeZone": "UTC"}, want: "cron"},
		"unknown field":         {path: []string{"spec", "pauze"}, val: "1m", want: "pauze"},
		"name not a DNS label":  {path: []string{"metadata", "name"}, val: "game.day", want: "DNS-1123 label"},
	} {
		t.Run(name, func(t *testing.T) {
			obj := base(t)
			var err error
			if c.del {
				unstructured.RemoveNestedField(obj.Object, c.path...)
			} else {
				err = unstructured.SetNestedField(obj.Object, c.val, c.path...)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Create(ctx, obj, strictDryRun)
			if err == nil {
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want Invalid or BadRequest, got %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("the error does not name %q: %v", c.want, err)
			}
		})
	}

	t.Run("columns", func(t *testing.T) {
		d, err := s.Dynamic(nil)
		if err != nil {
			t.Fatal(err)
		}
		suites := d.Resource(suitesGVR).Namespace(testNamespace)
		created, err := suites.Create(ctx, base(t), metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = suites.Delete(context.Background(), created.GetName(), metav1.DeleteOptions{}) }()
		created.Object["status"] = map[string]any{"observedGeneration": created.GetGeneration(), "experimentCount": int64(3),
			"conditions": []any{map[string]any{"type": "Ready", "status": "True", "reason": "Valid", "message": "ok", "lastTransitionTime": "2026-12-01T00:00:00Z"}}}
		if _, err := suites.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil {
			t.Fatal(err)
		}
		table := getTable(t, ctx, s.Config(), "/apis/"+Group+"/"+Version+"/namespaces/"+testNamespace+"/"+SuitePlural+"/"+created.GetName())
		checkColumns(t, table, map[string]string{"Experiments": "3", "Schedule": "0 10 * * 3", "Ready": "True"})
	})
}

// A SuiteRun holds a suite run record in its status: chaosd's JSON of
// api.SuiteRun is stored as written, nothing pruned (each entry's run ID
// and verdict), the printer columns show it, and the spec cannot change.
func TestAPIServerSuiteRunStatus(t *testing.T) {
	s, ctx := server(t)
	d, err := s.Dynamic(nil)
	if err != nil {
		t.Fatal(err)
	}
	runs := d.Resource(suiteRunsGVR).Namespace(testNamespace)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version, "kind": SuiteRunKind,
		"metadata": map[string]any{"name": "s-20261202-090000-1f2e3d"},
		"spec":     map[string]any{"suite": "game-day", "trigger": "schedule"},
	}}
	created, err := runs.Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = runs.Delete(context.Background(), created.GetName(), metav1.DeleteOptions{}) }()

	now := time.Now().UTC().Truncate(time.Second)
	rec := api.SuiteRun{
		ID: created.GetName(), Suite: "game-day", Trigger: api.TriggerSchedule, ScheduledAt: &now, MissedPolicy: "runOnce",
		ForcedFreeze: "year-end-freeze", StopOnFailure: true, Phase: api.SuiteDone, Verdict: api.VerdictFail,
		Reason: "exceptions-visits: fail", Interrupted: true, Current: -1, CreatedAt: now, FinishedAt: &now,
		Entries: []api.SuiteEntryResult{
			{Experiment: "latency-c1-c2", RunID: "r-20261202-090000-a1b2c3", Phase: api.PhaseDone, Verdict: api.VerdictPass,
				NotBefore: &now, StartedAt: &now, FinishedAt: &now},
			{Experiment: "exceptions-visits", RunID: "r-20261202-090200-d4e5f6", Phase: api.PhaseDone, Verdict: api.VerdictFail,
				Reason: "recovery not within the RTO", Interrupted: true, StartedAt: &now, FinishedAt: &now},
			{Experiment: "partition-c1-c2", Skipped: api.SkippedAfterFailure},
		},
	}
	status, err := toMap(rec)
	if err != nil {
		t.Fatal(err)
	}
	created.Object["status"] = status
	updated, err := runs.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatalf("update status with an api.SuiteRun: %v", err)
	}
	// Read back from the server, not from the update's answer.
	got, err := runs.Get(ctx, updated.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got.Object["status"])
	if err != nil {
		t.Fatal(err)
	}
	var back api.SuiteRun
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the stored status is not an api.SuiteRun: %v", err)
	}
	want, _ := json.Marshal(rec)
	if again, _ := json.Marshal(back); string(again) != string(want) {
		t.Errorf("the suite run record did not survive the round trip (pruned?):\n got %s\nwant %s", again, want)
	}

	table := getTable(t, ctx, s.Config(), "/apis/"+Group+"/"+Version+"/namespaces/"+testNamespace+"/"+SuiteRunPlural+"/"+created.GetName())
	checkColumns(t, table, map[string]string{"Suite": "game-day", "Phase": "done", "Verdict": "fail"})

	got.Object["spec"] = map[string]any{"suite": "other"}
	if _, err := runs.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing a suite run's spec: want Invalid (immutable), got %v", err)
	}
	obj.Object["spec"] = map[string]any{"trigger": "manual"}
	if _, err := runs.Create(ctx, obj, strictDryRun); !apierrors.IsInvalid(err) {
		t.Errorf("a suite run without spec.suite: want Invalid, got %v", err)
	}
}

// checkColumns checks cells of a one-row table by column name.
func checkColumns(t *testing.T, table *metav1.Table, want map[string]string) {
	t.Helper()
	for i, col := range table.ColumnDefinitions {
		if w, ok := want[col.Name]; ok {
			if got := toString(table.Rows[0].Cells[i]); got != w {
				t.Errorf("column %s = %q, want %q", col.Name, got, w)
			}
			delete(want, col.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("columns missing from the table: %v", want)
	}
}
