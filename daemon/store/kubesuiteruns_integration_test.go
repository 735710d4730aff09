package store

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/experiments/crd"
	"github.com/chaosd/chaosd/internal/kubetest"
)

// TestIntegrationKubeSuiteRuns: a suite run's records are one SuiteRun
// object, created on the first save, its status replaced on each; a
// second store (another replica, or chaosd after a restart) reads the
// same records; an object without a status yet is a pending suite run.
func TestIntegrationKubeSuiteRuns(t *testing.T) {
	ctx := context.Background()
	srv := kubetest.Shared(t)
	crds, err := crd.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.InstallCRDs(ctx, crds...); err != nil {
		t.Fatal(err)
	}
	const ns = "store-suiteruns"
	if _, err := srv.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn, err := srv.Dynamic(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewKubeSuiteRuns(dyn, ns), NewKubeSuiteRuns(dyn, ns)

	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC) // before the bare object below, made now
	rec := api.SuiteRun{ID: "s-20260601-090000-1f2e3d", Suite: "game-day", Trigger: api.TriggerManual, StopOnFailure: true,
		Phase: api.SuiteRunning, Current: 0, CreatedAt: t0,
		Entries: []api.SuiteEntryResult{{Experiment: "latency-c1-c2", RunID: "r-20260601-090000-a1b2c3", StartedAt: &t0}, {Experiment: "partition-c1-c2"}}}
	if err := a.SaveSuiteRun(rec); err != nil {
		t.Fatal(err)
	}
	rec.Entries[0].Verdict, rec.Entries[0].Phase = api.VerdictPass, api.PhaseDone
	rec.Phase, rec.Current = api.SuitePausing, 1
	if err := a.SaveSuiteRun(rec); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetSuiteRun(rec.ID)
	if err != nil || got.Phase != api.SuitePausing || got.Current != 1 || got.Entries[0].RunID != "r-20260601-090000-a1b2c3" || got.Entries[0].Verdict != api.VerdictPass {
		t.Fatalf("read by another store: %+v (%v)", got, err)
	}
	obj, err := dyn.Resource(SuiteRuns).Namespace(ns).Get(ctx, rec.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if suite, _, _ := unstructured.NestedString(obj.Object, "spec", "suite"); suite != "game-day" || obj.GetLabels()[SuiteLabel] != "game-day" {
		t.Errorf("SuiteRun object: spec.suite %q, labels %v", suite, obj.GetLabels())
	}

	// A restarted chaosd saves a record it did not create (its recovery).
	rec.Phase, rec.Current, rec.Interrupted = api.SuiteDone, -1, true
	if err := b.SaveSuiteRun(rec); err != nil {
		t.Fatal(err)
	}
	// chaosd died between create and the first status write.
	bare := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "chaosd.io/v1alpha1", "kind": "SuiteRun",
		"metadata": map[string]any{"name": "s-20261202-100000-abcdef"}, "spec": map[string]any{"suite": "game-day", "trigger": "schedule"}}}
	if _, err := dyn.Resource(SuiteRuns).Namespace(ns).Create(ctx, bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := a.ListSuiteRuns()
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v (%v)", list, err)
	}
	if list[0].ID != "s-20261202-100000-abcdef" || list[0].Phase != api.SuitePending || list[0].Trigger != api.TriggerSchedule ||
		list[1].ID != rec.ID || !list[1].Interrupted || list[1].Phase != api.SuiteDone {
		t.Errorf("list, newest first: %+v", list)
	}
	if _, err := a.GetSuiteRun("s-nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown suite run: %v, want os.ErrNotExist", err)
	}
	if _, err := a.GetSuiteRun("../x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid id: %v, want os.ErrNotExist", err)
	}
}
