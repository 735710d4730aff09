package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/yaml"

	"github.com/chaosd/chaosd/experiments"
)

// Suites is the resource of Suite objects.
var Suites = schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suites"}

// suiteWatcher keeps chaosd's suites in step with the Suite objects of a
// namespace, as experimentWatcher does the experiments: every object is
// validated as a suite file is, against the experiments chaosd has now
// (an unknown experiment, a pause shorter than a next experiment's
// baseline), and checked again whenever the experiments change. An
// invalid suite is left out (it cannot be started, its schedule does not
// fire) and gets a Ready=False condition (reason Invalid) and a Warning
// Event naming the field; the status also carries experimentCount, the
// CRD's Experiments column.
type suiteWatcher struct {
	res     dynamic.ResourceInterface
	factory dynamicinformer.DynamicSharedInformerFactory
	inf     cache.SharedIndexInformer
	exps    *catalog
	suites  *suites
	// changed is called after the set of valid suites may have changed
	// (the daemon syncs the suites' schedules).
	changed func()
	events  record.EventRecorder
	lg      *zap.Logger
	// kick asks for every suite to be checked again (the experiments
	// changed); one pending request stands for any number.
	kick chan struct{}

	mu   sync.Mutex
	objs map[string]*unstructured.Unstructured // the newest object of each suite
	// checking serialises checks, so a check of an older object (a
	// recheck) never lands after that of a newer one or a delete.
	checking sync.Mutex
}

func newSuiteWatcher(dyn dynamic.Interface, namespace string, exps *catalog, su *suites, changed func(), events record.EventRecorder, lg *zap.Logger) *suiteWatcher {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, namespace, nil)
	return &suiteWatcher{res: dyn.Resource(Suites).Namespace(namespace), factory: f, inf: f.ForResource(Suites).Informer(),
		exps: exps, suites: su, changed: changed, events: events, lg: lg, kick: make(chan struct{}, 1),
		objs: map[string]*unstructured.Unstructured{}}
}

// start watches the Suite objects and returns once the first list is
// handled; until ctx ends it checks every suite again after each kick.
func (w *suiteWatcher) start(ctx context.Context) error {
	if _, err := w.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.apply(ctx, obj) },
		UpdateFunc: func(_, obj any) { w.apply(ctx, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				w.mu.Lock()
				delete(w.objs, u.GetName())
				w.mu.Unlock()
				w.check(ctx, u.GetName())
				w.changed()
				w.lg.Info("suite removed", zap.String("suite", u.GetName()))
			}
		},
	}); err != nil {
		return fmt.Errorf("watch suites: %w", err)
	}
	w.factory.Start(ctx.Done())
	for gvr, ok := range w.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %s: %w (are the CRDs installed? manifests/base/crds.yaml)", gvr.Resource, context.Cause(ctx))
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
				w.recheck(ctx)
			}
		}
	}()
	return nil
}

func (w *suiteWatcher) shutdown() { w.factory.Shutdown() }

// experimentsChanged asks for every suite to be checked again.
func (w *suiteWatcher) experimentsChanged() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// recheck checks every suite against the experiments of now.
func (w *suiteWatcher) recheck(ctx context.Context) {
	w.mu.Lock()
	names := make([]string, 0, len(w.objs))
	for n := range w.objs {
		names = append(names, n)
	}
	w.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		w.check(ctx, n)
	}
	w.changed()
}

// apply takes a new or changed object.
func (w *suiteWatcher) apply(ctx context.Context, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	w.mu.Lock()
	w.objs[u.GetName()] = u
	w.mu.Unlock()
	w.check(ctx, u.GetName())
	w.changed()
}

// check validates the newest object of suite name, updates the suites
// and the object's status (a suite deleted is forgotten).
func (w *suiteWatcher) check(ctx context.Context, name string) {
	w.checking.Lock()
	defer w.checking.Unlock()
	w.mu.Lock()
	u := w.objs[name]
	w.mu.Unlock()
	if u == nil {
		w.suites.remove(name)
		return
	}
	su, err := SuiteFromObject(u, w.exps.get, w.exps.names())
	cond := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: "Valid",
		Message: "the suite passed validation and every experiment it names is loaded; chaosd can run it", ObservedGeneration: u.GetGeneration()}
	if err != nil {
		w.suites.remove(u.GetName())
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", err.Error()
	} else {
		w.suites.set(su)
	}
	entries, _, _ := unstructured.NestedSlice(u.Object, "spec", "experiments")
	if !writeCondition(ctx, w.res, u, cond, map[string]any{"experimentCount": int64(len(entries))}, w.lg) {
		return // already said, by this chaosd or another replica
	}
	if err != nil {
		w.lg.Warn("invalid suite", zap.String("suite", u.GetName()), zap.Error(err))
		w.events.Event(u, corev1.EventTypeWarning, "InvalidSuite", err.Error())
	} else {
		w.lg.Info("suite loaded", zap.String("suite", u.GetName()), zap.Strings("experiments", su.Names()))
		w.events.Event(u, corev1.EventTypeNormal, "SuiteLoaded", "the suite passed validation")
	}
}

// SuiteFromObject validates a Suite object exactly as a suite file is
// validated, then against the experiments lookup finds (known lists
// their names for the message), and returns the suite. Errors name the
// field (spec.experiments[1].experiment: unknown experiment ...);
// positions refer to the object, not a file.
func SuiteFromObject(u *unstructured.Unstructured, lookup func(string) (*experiments.Experiment, bool), known []string) (*experiments.Suite, error) {
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": objectMeta(u)}
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("suite %s: %w", u.GetName(), err)
	}
	source := "suite " + u.GetNamespace() + "/" + u.GetName()
	s, err := experiments.ParseSuite(data, source)
	if err == nil {
		err = s.CheckLibrary(lookup, known)
	}
	if err != nil {
		return nil, withoutPositions(source, err)
	}
	return s, nil
}

// objectMeta is the part of an object's metadata a file would carry:
// name, labels and the description annotation (ObjectMeta has no
// description field; the loader reads it from there as for a file).
func objectMeta(u *unstructured.Unstructured) map[string]any {
	meta := map[string]any{"name": u.GetName()}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	if d := u.GetAnnotations()[experiments.DescriptionAnnotation]; d != "" {
		meta["annotations"] = map[string]string{experiments.DescriptionAnnotation: d}
	}
	return meta
}

// withoutPositions rewrites a loader's error list for an object: its
// lines and columns are those of a document the user never wrote.
func withoutPositions(source string, err error) error {
	var list experiments.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	msgs := make([]string, len(list))
	for i, fe := range list {
		fe.File, fe.Line, fe.Col = "", 0, 0
		msgs[i] = fe.Error()
	}
	return fmt.Errorf("%s: %s", source, strings.Join(msgs, "; "))
}
