package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/experiments"
)

// Experiments is the resource of Experiment objects.
var Experiments = schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "experiments"}

// ConditionReady is the Experiment status condition saying whether the
// object passed chaosd's validation, so chaosd can run it (the CRD's
// Ready column).
const ConditionReady = "Ready"

// experimentWatcher keeps the catalog in step with the Experiment objects
// of a namespace. Every object goes through the same strict validation as
// a file; an invalid one is left out of the catalog (never a partial run)
// and gets a Ready=False condition (reason Invalid) and a Warning Event naming the field.
type experimentWatcher struct {
	res     dynamic.ResourceInterface
	factory dynamicinformer.DynamicSharedInformerFactory
	inf     cache.SharedIndexInformer
	cat     *catalog
	events  record.EventRecorder
	lg      *zap.Logger
}

func newExperimentWatcher(dyn dynamic.Interface, namespace string, cat *catalog, events record.EventRecorder, lg *zap.Logger) *experimentWatcher {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, namespace, nil)
	return &experimentWatcher{res: dyn.Resource(Experiments).Namespace(namespace), factory: f,
		inf: f.ForResource(Experiments).Informer(), cat: cat, events: events, lg: lg}
}

func (w *experimentWatcher) start(ctx context.Context) error {
	if _, err := w.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.apply(ctx, obj) },
		UpdateFunc: func(_, obj any) { w.apply(ctx, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				w.cat.remove(u.GetName())
				w.lg.Info("experiment removed", zap.String("experiment", u.GetName()))
			}
		},
	}); err != nil {
		return fmt.Errorf("watch experiments: %w", err)
	}
	w.factory.Start(ctx.Done())
	for gvr, ok := range w.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %s: %w (are the CRDs installed? manifests/base/crds.yaml)", gvr.Resource, context.Cause(ctx))
		}
	}
	return nil
}

func (w *experimentWatcher) shutdown() { w.factory.Shutdown() }

// apply validates one object and updates the catalog and its status.
func (w *experimentWatcher) apply(ctx context.Context, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	e, err := ExperimentFromObject(u)
	cond := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: "Valid",
		Message: "the experiment passed validation; chaosd can run it", ObservedGeneration: u.GetGeneration()}
	if err != nil {
		w.cat.remove(u.GetName())
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", err.Error()
	} else {
		w.cat.set(e)
	}
	if !writeCondition(ctx, w.res, u, cond, nil, w.lg) {
		return // already said, by this chaosd or another replica
	}
	if err != nil {
		w.lg.Warn("invalid experiment", zap.String("experiment", u.GetName()), zap.Error(err))
		w.events.Event(u, corev1.EventTypeWarning, "InvalidExperiment", err.Error())
	} else {
		w.lg.Info("experiment loaded", zap.String("experiment", u.GetName()))
		w.events.Event(u, corev1.EventTypeNormal, "ExperimentLoaded", "the experiment passed validation")
	}
}

// writeCondition writes cond (and the extra status fields) into the
// object's status unless it says so already for this generation; it
// reports whether it wrote.
func writeCondition(ctx context.Context, res dynamic.ResourceInterface, u *unstructured.Unstructured, cond metav1.Condition, extra map[string]any, lg *zap.Logger) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == cond.Type && m["status"] == string(cond.Status) && m["message"] == cond.Message &&
			fmt.Sprint(m["observedGeneration"]) == fmt.Sprint(cond.ObservedGeneration) {
			return false
		}
	}
	cond.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
	status := map[string]any{"observedGeneration": u.GetGeneration(), "conditions": []metav1.Condition{cond}}
	for k, v := range extra {
		status[k] = v
	}
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := res.Patch(cctx, u.GetName(), types.MergePatchType, body, metav1.PatchOptions{FieldManager: "chaosd"}, "status"); err != nil {
		lg.Warn("write status", zap.String("kind", u.GetKind()), zap.String("name", u.GetName()), zap.Error(err))
	}
	return true
}

// ExperimentFromObject validates an Experiment object exactly as a file
// is validated and returns the experiment. Errors name the field
// (spec.faults[0].kind: ...); positions refer to the object, not a file.
func ExperimentFromObject(u *unstructured.Unstructured) (*experiments.Experiment, error) {
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": objectMeta(u)}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", u.GetName(), err)
	}
	source := "experiment " + u.GetNamespace() + "/" + u.GetName()
	e, err := experiments.Parse(data, source)
	if err != nil {
		return nil, withoutPositions(source, err)
	}
	return e, nil
}
