package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/experiments/runner"
	"github.com/chaosd/chaosd/targets"
	"github.com/chaosd/chaosd/targets/kube"
)

// kubeMode is chaosd in a Kubernetes cluster: discovery through the
// inventory's informers, Experiment objects as the catalog, Suite objects
// as the suites, ExperimentRun and SuiteRun objects as the stores,
// Events, and the leader Lease.
type kubeMode struct {
	cfg       *Kubernetes
	lg        *zap.Logger
	client    kubernetes.Interface
	dyn       dynamic.Interface
	inv       *kube.Inventory
	store     *store.KubeStore
	sched     *store.KubeSchedules
	suiteRuns *store.KubeSuiteRuns
	identity  string

	broadcaster record.EventBroadcaster
	events      record.EventRecorder
	cancel      context.CancelFunc
	watcher     *experimentWatcher
	suites      *suiteWatcher
}

// RestConfig returns the client configuration of the kubernetes section:
// the kubeconfig file and context when set, else the in-cluster one.
func RestConfig(k *Kubernetes) (*rest.Config, error) {
	if k.Kubeconfig == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: in-cluster config (set kubernetes.kubeconfig outside a cluster): %w", err)
		}
		return c, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: k.Kubeconfig}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", k.Kubeconfig, err)
	}
	return c, nil
}

func newKubeMode(k *Kubernetes, agentToken string, agentTLS *tls.Config, lg *zap.Logger) (*kubeMode, error) {
	rc, err := RestConfig(k)
	if err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "chaosd"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	inv, err := kube.New(client, kube.Config{
		Cluster:        k.Cluster,
		AgentNamespace: k.Agents.Namespace, AgentSelector: k.Agents.Selector, AgentPort: k.Agents.Port, AgentScheme: k.Agents.Scheme,
		ServiceNamespace: k.Services.Namespace, ServiceLabel: k.Services.LabelKey,
		ActuatorPort: k.Services.ActuatorPort, ActuatorScheme: k.Services.Scheme,
		AgentToken: agentToken, AgentTLS: agentTLS,
	}, lg.Named("inventory"))
	if err != nil {
		return nil, err
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	return &kubeMode{cfg: k, lg: lg, client: client, dyn: dyn, inv: inv, store: store.NewKubeStore(dyn, k.Namespace),
		sched: store.NewKubeSchedules(client, k.Namespace, k.SchedulesConfigMap), suiteRuns: store.NewKubeSuiteRuns(dyn, k.Namespace),
		identity: id}, nil
}

// start syncs the inventory's caches, starts the Event recorder, the
// watch of Experiment objects (which fills cat) and then that of Suite
// objects (which fills su, checked against cat; suitesChanged is called
// after su may have changed).
func (km *kubeMode) start(ctx context.Context, cat *catalog, su *suites, suitesChanged func()) error {
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	km.cancel = cancel
	t0 := time.Now()
	if err := km.inv.Start(kctx); err != nil {
		cancel()
		return fmt.Errorf("kubernetes inventory: %w", err)
	}
	km.lg.Info("inventory synced", zap.Duration("took", time.Since(t0)), zap.Int("agents", len(km.inv.AgentPods())))
	km.broadcaster = record.NewBroadcaster(record.WithContext(kctx))
	km.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: km.client.CoreV1().Events("")})
	km.events = km.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "chaosd", Host: km.identity})
	// Both watchers exist before either starts: a change of experiments
	// (experimentsChanged) reaches the suites' watcher from the first one.
	km.suites = newSuiteWatcher(km.dyn, km.cfg.Namespace, cat, su, suitesChanged, km.events, km.lg.Named("suites"))
	km.watcher = newExperimentWatcher(km.dyn, km.cfg.Namespace, cat, km.events, km.lg.Named("experiments"))
	if err := km.watcher.start(kctx); err != nil {
		cancel()
		return err
	}
	if err := km.suites.start(kctx); err != nil {
		cancel()
		return err
	}
	return nil
}

// experimentsChanged has every Suite object checked again (a suite may
// name an experiment that just came or went).
func (km *kubeMode) experimentsChanged() {
	if km.suites != nil {
		km.suites.experimentsChanged()
	}
}

func (km *kubeMode) stop() {
	if km.cancel != nil {
		km.cancel()
	}
	km.inv.Shutdown()
	if km.watcher != nil {
		km.watcher.shutdown()
	}
	if km.suites != nil {
		km.suites.shutdown()
	}
	if km.broadcaster != nil {
		km.broadcaster.Shutdown()
	}
}

// elect runs lead while this chaosd holds the Lease; it returns when ctx
// ends or leadership is lost.
func (km *kubeMode) elect(ctx context.Context, l *leadership, lead func(context.Context)) error {
	le := km.cfg.LeaderElection
	dur := func(s string) time.Duration { d, _ := time.ParseDuration(s); return d }
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: km.cfg.Namespace, Name: le.LeaseName},
		Client:     km.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: km.identity, EventRecorder: km.events},
	}
	lost := make(chan struct{})
	// client-go runs OnStartedLeading in a goroutine of its own and does
	// not wait for it: wait here, so a run in progress has reverted before
	// elect returns, and never start leading once elect is done.
	var (
		mu     sync.Mutex
		closed bool
		done   chan struct{}
	)
	waitLead := func() {
		mu.Lock()
		closed = true
		d := done
		mu.Unlock()
		if d != nil {
			<-d
		}
	}
	defer waitLead()
	// On a graceful stop (ctx ends) the Lease is released only once lead
	// has returned, its runs reverted and their records final: the
	// elector runs on a context of its own, ended after lead. Released at
	// once, a new leader would recover runs this one is still reverting.
	// A lost Lease ends lead through the elector's context as before.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	stopRelease := context.AfterFunc(ctx, func() {
		waitLead()
		cancelRun()
	})
	defer stopRelease()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   dur(le.LeaseDuration),
		RenewDeadline:   dur(le.RenewDeadline),
		RetryPeriod:     dur(le.RetryPeriod),
		ReleaseOnCancel: true,
		Name:            "chaosd",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ectx context.Context) {
				mu.Lock()
				if closed || ectx.Err() != nil {
					mu.Unlock()
					return
				}
				done = make(chan struct{})
				d := done
				mu.Unlock()
				defer close(d)
				// lead ends when the Lease is lost (ectx) or chaosd stops (ctx).
				leadCtx, cancel := context.WithCancel(ectx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				l.set(true, km.identity)
				lead(leadCtx)
			},
			OnStoppedLeading: func() {
				select {
				case <-ctx.Done():
				default:
					km.lg.Warn("leadership lost")
					close(lost)
				}
			},
			OnNewLeader: func(id string) {
				if id != km.identity {
					l.set(false, id)
					km.lg.Info("new leader", zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elector.Run(runCtx)
	select {
	case <-lost:
		return errors.New("lost the leader Lease")
	default:
		return nil
	}
}

// leaseHolder reads who holds the leader Lease now ("" when nobody or it
// cannot be read).
func (km *kubeMode) leaseHolder() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := km.client.CoordinationV1().Leases(km.cfg.Namespace).Get(ctx, km.cfg.LeaderElection.LeaseName, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == km.identity {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// fleet is the agent DaemonSet's pods.
func (km *kubeMode) fleet() fleet { return kubeFleet{km} }

type kubeFleet struct{ km *kubeMode }

func (f kubeFleet) Agent(cluster, node string) (runner.Agent, error) {
	return f.km.inv.Agent(cluster, node)
}

func (f kubeFleet) agents(cluster string) []fleetAgent {
	if cluster != "" && cluster != f.km.cfg.Cluster {
		return nil
	}
	var out []fleetAgent
	for _, a := range f.km.inv.AgentPods() {
		out = append(out, fleetAgent{cluster: f.km.cfg.Cluster, node: a.Node, client: a.Client, err: a.Err})
	}
	return out
}

func (f kubeFleet) hasCluster(name string) bool { return name == f.km.cfg.Cluster }

// Event records a run's event on its ExperimentRun object and, for a
// target, on the target's pod (or node) too (runner.Recorder).
func (km *kubeMode) Event(runID string, target *targets.Node, warning bool, reason, message string) {
	if km.events == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	runRef := &corev1.ObjectReference{APIVersion: store.ExperimentRuns.GroupVersion().String(), Kind: "ExperimentRun",
		Namespace: km.cfg.Namespace, Name: runID}
	if target == nil {
		km.events.Event(runRef, typ, reason, message)
		return
	}
	var ref *corev1.ObjectReference
	if in := target.Instance; in != nil && in.Pod != nil {
		ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: in.Pod.Namespace, Name: in.Pod.Name, UID: types.UID(in.Pod.UID)}
	} else {
		ref = &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: target.Name, UID: types.UID(target.UID)}
	}
	km.events.Event(ref, typ, reason, message)
	km.events.Event(runRef, typ, reason, fmt.Sprintf("%s %s: %s", strings.ToLower(ref.Kind), targetName(ref), message))
}

func targetName(ref *corev1.ObjectReference) string {
	if ref.Namespace != "" {
		return ref.Namespace + "/" + ref.Name
	}
	return ref.Name
}
