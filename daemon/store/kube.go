package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/chaosd/chaosd/api"
)

// ExperimentRuns is the resource of ExperimentRun objects; an
// ExperimentRun's status is its run record (api.Run).
var ExperimentRuns = schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "experimentruns"}

// ExperimentLabel names a run's experiment on its ExperimentRun object.
const ExperimentLabel = "chaosd.io/experiment"

// kubeCallTimeout bounds one call to the API server.
const kubeCallTimeout = 10 * time.Second

// KubeStore keeps run records as ExperimentRun objects, so that
// `kubectl get experimentruns` shows the history and records survive a
// chaosd restart or a move to another node. Save writes at once (create
// the object if this store has not yet, then replace its status): the
// runner already saves a run's record only at most every
// runner.Options.SaveInterval, and at once only where a restart needs
// the change, so every Save is one the run waits for. It is safe for
// concurrent use; saves of one run are written one at a time, in order.
type KubeStore struct {
	res       dynamic.ResourceInterface
	namespace string

	mu   sync.Mutex
	runs map[string]*kubeRun
}

type kubeRun struct {
	mu      sync.Mutex // serialises writes of this run
	created bool
}

// NewKubeStore returns a store of ExperimentRun objects in namespace.
func NewKubeStore(client dynamic.Interface, namespace string) *KubeStore {
	return &KubeStore{res: client.Resource(ExperimentRuns).Namespace(namespace), namespace: namespace,
		runs: map[string]*kubeRun{}}
}

// Save writes r as its ExperimentRun's status and returns once the API
// server has it.
func (s *KubeStore) Save(r api.Run) error {
	if !validID(r.ID) {
		return fmt.Errorf("save run: invalid id %q", r.ID)
	}
	s.mu.Lock()
	kr, ok := s.runs[r.ID]
	if !ok {
		kr = &kubeRun{}
		s.runs[r.ID] = kr
	}
	s.mu.Unlock()

	kr.mu.Lock()
	defer kr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), kubeCallTimeout)
	defer cancel()
	if !kr.created {
		if err := s.create(ctx, r); err != nil {
			return err
		}
		kr.created = true
	}
	if err := s.writeStatus(ctx, r); err != nil {
		return err
	}
	if r.Phase == api.PhaseDone {
		// A finished run is written no more (a restart's recovery saves
		// only runs that were not done): forget it.
		s.mu.Lock()
		delete(s.runs, r.ID)
		s.mu.Unlock()
	}
	return nil
}

// create makes the run's object (its spec says what was asked for); an
// object that exists already (a restarted chaosd) is kept.
func (s *KubeStore) create(ctx context.Context, r api.Run) error {
	labels := map[string]any{ExperimentLabel: r.Experiment}
	if r.SuiteRun != "" {
		labels[SuiteRunLabel] = r.SuiteRun // kubectl get runs -l chaosd.io/suite-run=s-…
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ExperimentRuns.GroupVersion().String(),
		"kind":       "ExperimentRun",
		"metadata": map[string]any{
			"name": r.ID, "namespace": s.namespace,
			"labels": labels,
		},
		"spec": map[string]any{"experiment": r.Experiment, "trigger": string(r.Trigger), "dryRun": r.DryRun},
	}}
	_, err := s.res.Create(ctx, obj, metav1.CreateOptions{FieldManager: "chaosd"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ExperimentRun %s: %w", r.ID, err)
	}
	return nil
}

// writeStatus replaces the object's status with the record.
func (s *KubeStore) writeStatus(ctx context.Context, r api.Run) error {
	status, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	patch := []byte(`[{"op":"add","path":"/status","value":` + string(status) + `}]`)
	if _, err := s.res.Patch(ctx, r.ID, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "chaosd"}, "status"); err != nil {
		return fmt.Errorf("write status of ExperimentRun %s: %w", r.ID, err)
	}
	return nil
}

// Get reads one run record (os.ErrNotExist when there is none).
func (s *KubeStore) Get(id string) (api.Run, error) {
	if !validID(id) {
		return api.Run{}, fmt.Errorf("run %q: %w", id, os.ErrNotExist)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubeCallTimeout)
	defer cancel()
	obj, err := s.res.Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return api.Run{}, fmt.Errorf("run %s: %w", id, os.ErrNotExist)
	}
	if err != nil {
		return api.Run{}, fmt.Errorf("get ExperimentRun %s: %w", id, err)
	}
	return runOf(obj)
}

// List returns every run record, newest first. An object whose status
// cannot be read is reported in the error but does not hide the others.
func (s *KubeStore) List() ([]api.Run, error) {
	return listObjects(s.res, "ExperimentRun", runOf, func(r api.Run) (time.Time, string) { return r.CreatedAt, r.ID })
}

// runOf decodes an ExperimentRun's record; an object without a status
// yet (chaosd died between create and the first status write) is a
// pending run built from its spec, so restart recovery still sees it.
func runOf(obj *unstructured.Unstructured) (api.Run, error) {
	status, found, err := unstructured.NestedMap(obj.Object, "status")
	if err != nil {
		return api.Run{}, fmt.Errorf("ExperimentRun %s: status: %w", obj.GetName(), err)
	}
	if !found || len(status) == 0 {
		exp, _, _ := unstructured.NestedString(obj.Object, "spec", "experiment")
		trig, _, _ := unstructured.NestedString(obj.Object, "spec", "trigger")
		return api.Run{ID: obj.GetName(), Experiment: exp, Trigger: api.Trigger(trig), Phase: api.PhasePending,
			CreatedAt: obj.GetCreationTimestamp().Time}, nil
	}
	b, err := json.Marshal(status)
	if err != nil {
		return api.Run{}, fmt.Errorf("ExperimentRun %s: %w", obj.GetName(), err)
	}
	var r api.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return api.Run{}, fmt.Errorf("ExperimentRun %s: decode status: %w", obj.GetName(), err)
	}
	if r.ID == "" {
		r.ID = obj.GetName()
	}
	return r, nil
}

// validID reports whether id can name an ExperimentRun (a DNS-1123
// subdomain, as every run ID chaosd makes is).
func validID(id string) bool { return len(validation.IsDNS1123Subdomain(id)) == 0 }
