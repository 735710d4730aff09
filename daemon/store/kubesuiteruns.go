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
	"k8s.io/client-go/dynamic"

	"github.com/chaosd/chaosd/api"
)

// SuiteRuns is the resource of SuiteRun objects; a SuiteRun's status is
// its suite run record (api.SuiteRun).
var SuiteRuns = schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suiteruns"}

// SuiteLabel names a suite run's suite on its SuiteRun object, and a
// member run's suite run on its ExperimentRun (SuiteRunLabel).
const (
	SuiteLabel    = "chaosd.io/suite"
	SuiteRunLabel = "chaosd.io/suite-run"
)

// KubeSuiteRuns keeps suite run records as SuiteRun objects, as KubeStore
// keeps run records: `kubectl get suiteruns` shows the game days, and a
// record survives a chaosd restart or a new leader (whose recovery marks
// a suite run that was going interrupted). SaveSuiteRun creates the object
// on the first save, then replaces its status; saves of one suite run are
// written one at a time, in order.
type KubeSuiteRuns struct {
	res       dynamic.ResourceInterface
	namespace string

	mu   sync.Mutex
	runs map[string]*kubeRun
}

// NewKubeSuiteRuns returns a store of SuiteRun objects in namespace.
func NewKubeSuiteRuns(client dynamic.Interface, namespace string) *KubeSuiteRuns {
	return &KubeSuiteRuns{res: client.Resource(SuiteRuns).Namespace(namespace), namespace: namespace,
		runs: map[string]*kubeRun{}}
}

// SaveSuiteRun writes r as its SuiteRun's status and returns once the API
// server has it.
func (s *KubeSuiteRuns) SaveSuiteRun(r api.SuiteRun) error {
	if !validID(r.ID) {
		return fmt.Errorf("save suite run: invalid id %q", r.ID)
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
	status, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode suite run %s: %w", r.ID, err)
	}
	patch := []byte(`[{"op":"add","path":"/status","value":` + string(status) + `}]`)
	if _, err := s.res.Patch(ctx, r.ID, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "chaosd"}, "status"); err != nil {
		return fmt.Errorf("write status of SuiteRun %s: %w", r.ID, err)
	}
	if r.Phase == api.SuiteDone {
		s.mu.Lock()
		delete(s.runs, r.ID)
		s.mu.Unlock()
	}
	return nil
}

// create makes the suite run's object; one that exists already (a
// restarted chaosd, a new leader's recovery) is kept.
func (s *KubeSuiteRuns) create(ctx context.Context, r api.SuiteRun) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": SuiteRuns.GroupVersion().String(),
		"kind":       "SuiteRun",
		"metadata": map[string]any{
			"name": r.ID, "namespace": s.namespace,
			"labels": map[string]any{SuiteLabel: r.Suite},
		},
		"spec": map[string]any{"suite": r.Suite, "trigger": string(r.Trigger), "dryRun": r.DryRun},
	}}
	_, err := s.res.Create(ctx, obj, metav1.CreateOptions{FieldManager: "chaosd"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create SuiteRun %s: %w", r.ID, err)
	}
	return nil
}

// GetSuiteRun reads one suite run record (os.ErrNotExist when unknown).
func (s *KubeSuiteRuns) GetSuiteRun(id string) (api.SuiteRun, error) {
	if !validID(id) {
		return api.SuiteRun{}, fmt.Errorf("suite run %.64q: %w", id, os.ErrNotExist)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubeCallTimeout)
	defer cancel()
	obj, err := s.res.Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return api.SuiteRun{}, fmt.Errorf("suite run %s: %w", id, os.ErrNotExist)
	}
	if err != nil {
		return api.SuiteRun{}, fmt.Errorf("get SuiteRun %s: %w", id, err)
	}
	return suiteRunOf(obj)
}

// ListSuiteRuns returns every suite run record, newest first; an object
// whose status cannot be read is in the error and does not hide the
// others.
func (s *KubeSuiteRuns) ListSuiteRuns() ([]api.SuiteRun, error) {
	return listObjects(s.res, "SuiteRun", suiteRunOf, func(r api.SuiteRun) (time.Time, string) { return r.CreatedAt, r.ID })
}

// suiteRunOf decodes a SuiteRun's record; an object without a status yet
// (chaosd died between create and the first status write) is a pending
// suite run built from its spec, so restart recovery still settles it.
func suiteRunOf(obj *unstructured.Unstructured) (api.SuiteRun, error) {
	status, found, err := unstructured.NestedMap(obj.Object, "status")
	if err != nil {
		return api.SuiteRun{}, fmt.Errorf("SuiteRun %s: status: %w", obj.GetName(), err)
	}
	if !found || len(status) == 0 {
		suite, _, _ := unstructured.NestedString(obj.Object, "spec", "suite")
		trig, _, _ := unstructured.NestedString(obj.Object, "spec", "trigger")
		dry, _, _ := unstructured.NestedBool(obj.Object, "spec", "dryRun")
		return api.SuiteRun{ID: obj.GetName(), Suite: suite, Trigger: api.Trigger(trig), DryRun: dry, Phase: api.SuitePending,
			Current: -1, CreatedAt: obj.GetCreationTimestamp().Time}, nil
	}
	b, err := json.Marshal(status)
	if err != nil {
		return api.SuiteRun{}, fmt.Errorf("SuiteRun %s: %w", obj.GetName(), err)
	}
	var r api.SuiteRun
	if err := json.Unmarshal(b, &r); err != nil {
		return api.SuiteRun{}, fmt.Errorf("SuiteRun %s: decode status: %w", obj.GetName(), err)
	}
	if r.ID == "" {
		r.ID = obj.GetName()
	}
	return r, nil
}
