package manifests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon"
	"github.com/chaosd/chaosd/daemon/store"
	"github.com/chaosd/chaosd/internal/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// servicesNamespace is PetClinic's namespace in the overlays' configs.
const servicesNamespace = "petclinic"

// render builds an overlay with kustomize's own library: what
// `kubectl apply -k DIR` sends.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubetest.Objects(y)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

// TestRenderedOverlays checks what kustomize makes of each overlay: the
// config is the overlay's (hash-suffixed, referenced by the Deployment),
// the image tag and the cluster labels are set. No server needed.
func TestRenderedOverlays(t *testing.T) {
	for name, want := range clusters {
		t.Run(name, func(t *testing.T) {
			objs := render(t, "overlays/"+name)
			var cm, deploy *unstructured.Unstructured
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
				switch {
				case o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "chaosd-config-"):
					cm = o
				case o.GetKind() == "Deployment":
					deploy = o
				}
				if o.GetLabels()["cluster"] != name || o.GetLabels()["topology.kubernetes.io/region"] != want.region {
					t.Errorf("%s %s: labels %v, want cluster=%s and region %s", o.GetKind(), o.GetName(), o.GetLabels(), name, want.region)
				}
			}
			if cm == nil || deploy == nil || kinds["CustomResourceDefinition"] != 4 || kinds["PodDisruptionBudget"] != 1 {
				t.Fatalf("want the chaosd-config ConfigMap, the Deployment, 4 CRDs and a PodDisruptionBudget; got %v", kinds)
			}
			data, _, _ := unstructured.NestedString(cm.Object, "data", "chaosd.yaml")
			cfg, err := daemon.ParseConfig([]byte(data), cm.GetName())
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Kubernetes == nil || cfg.Kubernetes.Cluster != name {
				t.Errorf("the rendered config is not %s's: %+v", name, cfg.Kubernetes)
			}
			if !strings.Contains(fmt.Sprint(deploy.Object["spec"]), "name:"+cm.GetName()) {
				t.Errorf("the Deployment does not mount the generated ConfigMap %s", cm.GetName())
			}
			if !strings.Contains(fmt.Sprint(deploy.Object["spec"]), "image:"+imageName+":v") {
				t.Errorf("the Deployment's image is not the overlay's tagged %s", imageName)
			}
		})
	}
}

// TestAPIServerOverlaysApply: both overlays, CRDs included, pass a
// server-side dry run of `kubectl apply --server-side` with strict field
// validation, after the steps the README gives: the namespace and the two
// Secrets exist.
func TestAPIServerOverlaysApply(t *testing.T) {
	s := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for name := range clusters {
		t.Run(name, func(t *testing.T) {
			objs := render(t, "overlays/"+name)
			// The namespaces first, for real: a dry run of a namespaced
			// object needs its namespace.
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					if _, err := s.Apply(ctx, o, metav1.ApplyOptions{Force: true}); err != nil {
						t.Fatalf("apply Namespace %s: %v", o.GetName(), err)
					}
				}
			}
			createSecrets(t, ctx, s.Client())
			for _, o := range objs {
				_, err := s.Apply(ctx, o, metav1.ApplyOptions{Force: true, DryRun: []string{metav1.DryRunAll}})
				if err != nil {
					t.Errorf("server-side dry run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
		})
	}
}

// createSecrets makes stand-ins for the Secrets created out of band.
func createSecrets(t *testing.T, ctx context.Context, c kubernetes.Interface) {
	t.Helper()
	for _, name := range []string{"chaosd-token", "chaosd-agent-token"} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, StringData: map[string]string{"token": "stand-in-" + name}}
		if _, err := c.CoreV1().Secrets(namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create Secret %s: %v", name, err)
		}
	}
}

// applyRBAC applies, for real, overlay c1's CRDs (Established), namespace,
// ServiceAccounts, roles and bindings.
func applyRBAC(t *testing.T, ctx context.Context, s *kubetest.Server) {
	t.Helper()
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, o := range render(t, "overlays/c1") {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			var crd apiextensionsv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &crd); err != nil {
				t.Fatal(err)
			}
			crds = append(crds, &crd)
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if _, err := s.Apply(ctx, o, metav1.ApplyOptions{Force: true}); err != nil {
				t.Fatalf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	if err := s.InstallCRDs(ctx, crds...); err != nil {
		t.Fatal(err)
	}
}

// access is one question to the authorizer.
type access struct {
	verb, group, resource, sub, ns, name string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.sub != "" {
		r += "/" + a.sub
	}
	if a.name != "" {
		r += " " + a.name
	}
	ns := a.ns
	if ns == "" {
		ns = "(cluster)"
	}
	return fmt.Sprintf("%s %s in %s", a.verb, r, ns)
}

// allowed asks the API server whether the client's identity may do a.
func allowed(t *testing.T, ctx context.Context, c kubernetes.Interface, a access) bool {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Namespace: a.ns, Name: a.name,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectAccessReview %s: %v", a, err)
	}
	return r.Status.Allowed
}

// TestAPIServerRBAC: with the manifests applied, chaosd's ServiceAccount
// may do each thing it needs and none of the rest; the agent's may do
// nothing.
func TestAPIServerRBAC(t *testing.T) {
	s := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	applyRBAC(t, ctx, s)
	cfg, err := s.ServiceAccountConfig(ctx, namespace, daemonName)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	var need []access
	for _, v := range []string{"get", "list", "watch"} {
		need = append(need,
			access{verb: v, resource: "pods"},                        // informers on every namespace
			access{verb: v, resource: "pods", ns: servicesNamespace}, // the services' pods
			access{verb: v, resource: "pods", ns: namespace},         // the agents
			access{verb: v, resource: "nodes"},
			access{verb: v, group: "chaosd.io", resource: "experiments", ns: namespace},
		)
	}
	for _, v := range []string{"update", "patch"} {
		need = append(need, access{verb: v, group: "chaosd.io", resource: "experiments", sub: "status", ns: namespace})
	}
	for _, v := range []string{"get", "list", "watch"} {
		need = append(need, access{verb: v, group: "chaosd.io", resource: "suites", ns: namespace})
	}
	for _, v := range []string{"create", "get", "list"} {
		need = append(need, access{verb: v, group: "chaosd.io", resource: "suiteruns", ns: namespace})
	}
	need = append(need,
		access{verb: "patch", group: "chaosd.io", resource: "suites", sub: "status", ns: namespace},
		access{verb: "patch", group: "chaosd.io", resource: "suiteruns", sub: "status", ns: namespace})
	for _, v := range []string{"create", "get", "list", "watch", "update", "patch", "delete"} {
		need = append(need,
			access{verb: v, group: "chaosd.io", resource: "experimentruns", ns: namespace},
			access{verb: v, group: "chaosd.io", resource: "experimentruns", sub: "status", ns: namespace})
	}
	need = append(need,
		access{verb: "create", group: "coordination.k8s.io", resource: "leases", ns: namespace},
		access{verb: "get", group: "coordination.k8s.io", resource: "leases", ns: namespace, name: daemon.DefaultLeaseName},
		access{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: namespace, name: daemon.DefaultLeaseName},
		access{verb: "create", resource: "configmaps", ns: namespace},
		access{verb: "get", resource: "configmaps", ns: namespace, name: daemon.DefaultSchedulesConfigMap},
		access{verb: "update", resource: "configmaps", ns: namespace, name: daemon.DefaultSchedulesConfigMap},
	)
	for _, ns := range []string{servicesNamespace, namespace, "default"} { // pods, runs, nodes (default)
		for _, v := range []string{"create", "patch"} {
			need = append(need, access{verb: v, resource: "events", ns: ns}, access{verb: v, group: "events.k8s.io", resource: "events", ns: ns})
		}
	}
	for _, a := range need {
		if !allowed(t, ctx, sa, a) {
			t.Errorf("chaosd may not %s, which it needs", a)
		}
	}

	forbidden := []access{
		{verb: "delete", resource: "pods", ns: servicesNamespace},
		{verb: "create", resource: "pods", ns: servicesNamespace},
		{verb: "update", resource: "pods", ns: servicesNamespace},
		{verb: "patch", resource: "pods", ns: servicesNamespace},
		{verb: "create", resource: "pods", sub: "exec", ns: servicesNamespace},
		{verb: "create", resource: "pods", sub: "eviction", ns: servicesNamespace},
		{verb: "patch", resource: "pods", sub: "status", ns: servicesNamespace},
		{verb: "patch", resource: "nodes"},
		{verb: "update", resource: "nodes"},
		{verb: "delete", resource: "nodes"},
		{verb: "get", resource: "secrets", ns: namespace, name: "chaosd-token"},
		{verb: "list", resource: "secrets", ns: namespace},
		{verb: "list", resource: "secrets"},
		{verb: "get", resource: "configmaps", ns: namespace},
		{verb: "list", resource: "configmaps", ns: namespace},
		{verb: "watch", resource: "configmaps", ns: namespace},
		{verb: "get", resource: "configmaps", ns: namespace, name: "chaosd-config"},
		{verb: "update", resource: "configmaps", ns: namespace, name: "chaosd-experiments"},
		{verb: "delete", resource: "configmaps", ns: namespace, name: daemon.DefaultSchedulesConfigMap},
		{verb: "patch", resource: "configmaps", ns: namespace, name: daemon.DefaultSchedulesConfigMap},
		{verb: "create", resource: "configmaps", ns: servicesNamespace},
		{verb: "get", resource: "configmaps", ns: servicesNamespace, name: daemon.DefaultSchedulesConfigMap},
		{verb: "list", resource: "configmaps", ns: servicesNamespace},
		{verb: "create", resource: "serviceaccounts", sub: "token", ns: namespace, name: daemonName},
		{verb: "delete", resource: "events", ns: namespace},
		{verb: "create", group: "chaosd.io", resource: "experiments", ns: namespace},
		{verb: "update", group: "chaosd.io", resource: "experiments", ns: namespace},
		{verb: "delete", group: "chaosd.io", resource: "experiments", ns: namespace},
		{verb: "list", group: "chaosd.io", resource: "experiments", ns: servicesNamespace},
		{verb: "create", group: "chaosd.io", resource: "experimentruns", ns: servicesNamespace},
		{verb: "create", group: "chaosd.io", resource: "suites", ns: namespace},
		{verb: "patch", group: "chaosd.io", resource: "suites", ns: namespace},
		{verb: "delete", group: "chaosd.io", resource: "suites", ns: namespace},
		{verb: "update", group: "chaosd.io", resource: "suites", sub: "status", ns: namespace},
		{verb: "delete", group: "chaosd.io", resource: "suiteruns", ns: namespace},
		{verb: "update", group: "chaosd.io", resource: "suiteruns", ns: namespace},
		{verb: "list", group: "chaosd.io", resource: "suiteruns", ns: servicesNamespace},
		{verb: "list", group: "chaosd.io", resource: "experimentruns"},
		{verb: "get", group: "coordination.k8s.io", resource: "leases", ns: namespace, name: "someone-else"},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", ns: "kube-system", name: "kube-controller-manager"},
		{verb: "delete", group: "coordination.k8s.io", resource: "leases", ns: namespace, name: daemon.DefaultLeaseName},
		{verb: "get", group: "apps", resource: "deployments", ns: namespace},
		{verb: "patch", group: "apps", resource: "daemonsets", ns: namespace},
		{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "roles", ns: namespace},
		{verb: "create", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		{verb: "impersonate", resource: "serviceaccounts"},
	}
	for _, a := range forbidden {
		if allowed(t, ctx, sa, a) {
			t.Errorf("chaosd may %s, which it must not", a)
		}
	}

	// Nothing else: the server's own list of what chaosd may do in its
	// namespace and in PetClinic's is exactly the manifests' rules, beyond
	// what any authenticated identity may (a ServiceAccount without
	// bindings shows that baseline).
	bcfg, err := s.ServiceAccountConfig(ctx, "rbac-baseline", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := kubernetes.NewForConfig(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string][]string{
		namespace:         slices.Concat(wantClusterPermissions(), wantRolePermissions()),
		servicesNamespace: wantClusterPermissions(),
	} {
		base := rulesIn(t, ctx, baseline, ns)
		var got []string
		for _, p := range rulesIn(t, ctx, sa, ns) {
			if !slices.Contains(base, p) {
				got = append(got, p)
			}
		}
		comparePermissions(t, "in namespace "+ns+", the API server", got, want)
	}

	t.Run("calls", func(t *testing.T) { rbacCalls(t, ctx, s, sa, cfg) })

	// The agent's ServiceAccount: no token is mounted, and a token would
	// not be worth anything either.
	acfg, err := s.ServiceAccountConfig(ctx, namespace, agentName)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := kubernetes.NewForConfig(acfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range append(need[:5:5], access{verb: "create", resource: "events", ns: namespace}, access{verb: "get", resource: "secrets", ns: namespace}) {
		if allowed(t, ctx, agent, a) {
			t.Errorf("the agent's ServiceAccount may %s; it needs no API access", a)
		}
	}
	for _, ns := range []string{namespace, servicesNamespace} {
		comparePermissions(t, "in namespace "+ns+", the agent's ServiceAccount", rulesIn(t, ctx, agent, ns), rulesIn(t, ctx, baseline, ns))
	}
	if acct, err := s.Client().CoreV1().ServiceAccounts(namespace).Get(ctx, agentName, metav1.GetOptions{}); err != nil ||
		acct.AutomountServiceAccountToken == nil || *acct.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false (err %v)", agentName, err)
	}
}

// rulesIn asks the API server what the client's identity may do in ns.
func rulesIn(t *testing.T, ctx context.Context, c kubernetes.Interface, ns string) []string {
	t.Helper()
	r, err := c.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Incomplete {
		t.Fatalf("rules review in %s is incomplete: %s", ns, r.Status.EvaluationError)
	}
	var rules []rbacv1.PolicyRule
	for _, rr := range r.Status.ResourceRules {
		rules = append(rules, rbacv1.PolicyRule{Verbs: rr.Verbs, APIGroups: rr.APIGroups, Resources: rr.Resources, ResourceNames: rr.ResourceNames})
	}
	return permissions(rules)
}

// rbacCalls makes the real calls chaosd makes, as its ServiceAccount, and
// a few it must not make.
func rbacCalls(t *testing.T, ctx context.Context, s *kubetest.Server, sa kubernetes.Interface, cfg *rest.Config) {
	admin := s.Client()
	// PetClinic's namespace and its default ServiceAccount (no controller
	// makes it here; pod admission wants it).
	if _, err := s.ServiceAccountConfig(ctx, servicesNamespace, "default"); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: servicesNamespace, Name: "visits-service-0", Labels: map[string]string{"app.kubernetes.io/name": "visits-service"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "petclinic/visits-service"}}},
	}
	if _, err := admin.CoreV1().Pods(servicesNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "c1-node-1", Labels: map[string]string{"topology.kubernetes.io/region": "us-west-2"}}}
	if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	createSecrets(t, ctx, admin)

	expectOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	expectForbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: want Forbidden, got %v", what, err)
		}
	}
	_, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=visits-service"})
	expectOK("list pods in every namespace", err)
	_, err = sa.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	expectOK("get node", err)
	expectForbidden("delete pod", sa.CoreV1().Pods(servicesNamespace).Delete(ctx, pod.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}))
	_, err = sa.CoreV1().Pods(servicesNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	expectForbidden("create pod", err)
	_, err = sa.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	expectForbidden("patch node", err)
	_, err = sa.CoreV1().Secrets(namespace).Get(ctx, "chaosd-token", metav1.GetOptions{})
	expectForbidden("get secret", err)

	// Leader election: create, get and renew the Lease.
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: daemon.DefaultLeaseName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("chaosd-0"), LeaseDurationSeconds: ptr(int32(15))}}
	_ = admin.CoordinationV1().Leases(namespace).Delete(ctx, lease.Name, metav1.DeleteOptions{})
	_, err = sa.CoordinationV1().Leases(namespace).Create(ctx, lease, metav1.CreateOptions{})
	expectOK("create lease", err)
	got, err := sa.CoordinationV1().Leases(namespace).Get(ctx, lease.Name, metav1.GetOptions{})
	expectOK("get lease", err)
	if err == nil {
		got.Spec.HolderIdentity = ptr("chaosd-1")
		_, err = sa.CoordinationV1().Leases(namespace).Update(ctx, got, metav1.UpdateOptions{})
		expectOK("update lease", err)
	}
	_, err = sa.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
	expectForbidden("get a lease in kube-system", err)

	// Schedule state and skips: chaosd's own store, as its ServiceAccount.
	_ = admin.CoreV1().ConfigMaps(namespace).Delete(ctx, daemon.DefaultSchedulesConfigMap, metav1.DeleteOptions{})
	ks := store.NewKubeSchedules(sa, namespace, daemon.DefaultSchedulesConfigMap)
	_, err = ks.UpdateScheduleState("partition-c1-c2", func(st *api.ScheduleState) { st.Paused = true })
	expectOK("write schedule state (create the ConfigMap)", err)
	expectOK("add a skip (update the ConfigMap)", ks.AddSkip(api.SkipInfo{Experiment: "partition-c1-c2", Cause: api.SkipPaused}))
	st, err := ks.ScheduleState("partition-c1-c2")
	expectOK("read schedule state", err)
	if !st.Paused {
		t.Errorf("schedule state read back as chaosd: %+v", st)
	}
	_, err = sa.CoreV1().ConfigMaps(namespace).Get(ctx, "chaosd-config", metav1.GetOptions{})
	expectForbidden("get another ConfigMap", err)

	// Events on a target pod, both APIs.
	now := metav1.NewMicroTime(time.Now())
	_, err = sa.EventsV1().Events(servicesNamespace).Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "chaosd-", Namespace: servicesNamespace},
		EventTime:  now, ReportingController: "chaosd.io/chaosd", ReportingInstance: "chaosd-0",
		Action: "Inject", Reason: "FaultInjected", Type: corev1.EventTypeNormal, Note: "partition injected",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: servicesNamespace, Name: pod.Name, APIVersion: "v1"},
	}, metav1.CreateOptions{})
	expectOK("create events.k8s.io event", err)
	_, err = sa.CoreV1().Events(servicesNamespace).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "chaosd-", Namespace: servicesNamespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: servicesNamespace, Name: pod.Name, APIVersion: "v1"},
		Reason:         "FaultReverted", Message: "partition reverted", Type: corev1.EventTypeNormal, Source: corev1.EventSource{Component: "chaosd"},
	}, metav1.CreateOptions{})
	expectOK("create core event", err)

	// Experiments: a user's (the admin's) object; chaosd reads it and
	// reports in its status, but may not write the experiment itself.
	d, err := s.Dynamic(nil)
	if err != nil {
		t.Fatal(err)
	}
	sad, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exps := schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "experiments"}
	runs := schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "experimentruns"}
	objs, err := kubetest.Objects(read(t, "../experiments/library/partition-c1-c2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exp := objs[0]
	exp.SetNamespace(namespace)
	if _, err := d.Resource(exps).Namespace(namespace).Create(ctx, exp, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = sad.Resource(exps).Namespace(namespace).List(ctx, metav1.ListOptions{})
	expectOK("list experiments", err)
	_, err = sad.Resource(exps).Namespace(namespace).Patch(ctx, exp.GetName(), types.MergePatchType,
		[]byte(`{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"ok","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`),
		metav1.PatchOptions{}, "status")
	expectOK("patch experiments/status", err)
	_, err = sad.Resource(exps).Namespace(namespace).Patch(ctx, exp.GetName(), types.MergePatchType, []byte(`{"spec":{"duration":"1h"}}`), metav1.PatchOptions{})
	expectForbidden("patch an experiment's spec", err)

	// Runs: the store.
	run := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaosd.io/v1alpha1", "kind": "ExperimentRun",
		"metadata": map[string]any{"generateName": "partition-c1-c2-", "namespace": namespace},
		"spec":     map[string]any{"experiment": "partition-c1-c2", "trigger": "schedule"},
	}}
	created, err := sad.Resource(runs).Namespace(namespace).Create(ctx, run, metav1.CreateOptions{})
	expectOK("create an experimentrun", err)
	if err == nil {
		created.Object["status"] = map[string]any{"id": created.GetName(), "experiment": "partition-c1-c2", "phase": "pending", "trigger": "schedule"}
		_, err = sad.Resource(runs).Namespace(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		expectOK("update an experimentrun's status", err)
		expectOK("delete an experimentrun", sad.Resource(runs).Namespace(namespace).Delete(ctx, created.GetName(), metav1.DeleteOptions{}))
	}

	// Suites: a user's object; chaosd reports in its status only.
	suites := schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suites"}
	objs, err = kubetest.Objects(read(t, "../examples/game-day.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	suite := objs[0]
	suite.SetNamespace(namespace)
	if _, err := d.Resource(suites).Namespace(namespace).Create(ctx, suite, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = sad.Resource(suites).Namespace(namespace).List(ctx, metav1.ListOptions{})
	expectOK("list suites", err)
	_, err = sad.Resource(suites).Namespace(namespace).Patch(ctx, suite.GetName(), types.MergePatchType,
		[]byte(`{"status":{"observedGeneration":1,"experimentCount":3,"conditions":[{"type":"Ready","status":"True","reason":"Valid","message":"ok","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`),
		metav1.PatchOptions{}, "status")
	expectOK("patch suites/status", err)
	_, err = sad.Resource(suites).Namespace(namespace).Patch(ctx, suite.GetName(), types.MergePatchType, []byte(`{"spec":{"pause":"1h"}}`), metav1.PatchOptions{})
	expectForbidden("patch a suite's spec", err)

	// Suite runs: chaosd's own store, as its ServiceAccount.
	ksr := store.NewKubeSuiteRuns(sad, namespace)
	rec := api.SuiteRun{ID: "s-20260101-000000-abcdef", Suite: "game-day", Trigger: api.TriggerSchedule, Phase: api.SuiteRunning,
		CreatedAt: time.Now().UTC().Truncate(time.Second), Entries: []api.SuiteEntryResult{{Experiment: "latency-c1-c2", RunID: "r-20260101-000000-abcdef"}}}
	expectOK("save a suite run (create the SuiteRun)", ksr.SaveSuiteRun(rec))
	rec.Phase, rec.Verdict = api.SuiteDone, api.VerdictPass
	expectOK("save a suite run (patch its status)", ksr.SaveSuiteRun(rec))
	_, err = ksr.ListSuiteRuns()
	expectOK("list suite runs", err)
	if got, err := ksr.GetSuiteRun(rec.ID); err != nil || got.Verdict != api.VerdictPass {
		t.Errorf("suite run read back as chaosd: %+v (%v)", got, err)
	}
	suiteRuns := schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suiteruns"}
	expectForbidden("delete a suite run", sad.Resource(suiteRuns).Namespace(namespace).Delete(ctx, rec.ID, metav1.DeleteOptions{}))
}

// TestAPIServerUserRolesSuites: with the manifests applied, every user
// Role reads Experiments, Suites and their runs (kubectl get
// experiments,experimentruns,suites,suiteruns), only chaosd-admin writes
// Experiments and Suites (kubectl apply -f examples/game-day.yaml), and
// nobody but chaosd writes the runs.
func TestAPIServerUserRolesSuites(t *testing.T) {
	s := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	applyRBAC(t, ctx, s)
	admin := s.Client()
	objs, err := kubetest.Objects(read(t, "../examples/game-day.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	suites := schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suites"}
	for _, role := range []string{"chaosd-viewer", "chaosd-runner", "chaosd-adhoc", "chaosd-admin"} {
		t.Run(role, func(t *testing.T) {
			sa := "user-" + strings.TrimPrefix(role, "chaosd-")
			if _, err := admin.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: namespace}}}
			if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			cfg, err := s.ServiceAccountConfig(ctx, namespace, sa)
			if err != nil {
				t.Fatal(err)
			}
			c, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range []string{"experiments", "experimentruns", "suites", "suiteruns"} {
				for _, v := range []string{"get", "list", "watch"} {
					if a := (access{verb: v, group: "chaosd.io", resource: res, ns: namespace}); !allowed(t, ctx, c, a) {
						t.Errorf("%s may not %s", role, a)
					}
				}
			}
			editor := role == "chaosd-admin"
			for _, res := range []string{"experiments", "suites"} {
				for _, v := range []string{"create", "update", "patch"} {
					if a := (access{verb: v, group: "chaosd.io", resource: res, ns: namespace}); allowed(t, ctx, c, a) != editor {
						t.Errorf("%s: %s allowed %v, want %v", role, a, !editor, editor)
					}
				}
			}
			for _, a := range []access{
				{verb: "create", group: "chaosd.io", resource: "suiteruns", ns: namespace},
				{verb: "patch", group: "chaosd.io", resource: "suiteruns", sub: "status", ns: namespace},
				{verb: "delete", group: "chaosd.io", resource: "suiteruns", ns: namespace},
				{verb: "patch", group: "chaosd.io", resource: "suites", sub: "status", ns: namespace},
				{verb: "create", group: "chaosd.io", resource: "experimentruns", ns: namespace},
				{verb: "delete", group: "chaosd.io", resource: "experiments", ns: namespace},
				{verb: "list", group: "chaosd.io", resource: "suites", ns: servicesNamespace},
			} {
				if allowed(t, ctx, c, a) {
					t.Errorf("%s may %s, which it must not", role, a)
				}
			}
			// The real call: kubectl apply -f examples/game-day.yaml (a
			// server-side dry run), and kubectl get suiteruns.
			dc, err := dynamic.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			suite := objs[0].DeepCopy()
			suite.SetNamespace(namespace)
			suite.SetName("game-day-" + sa) // TestAPIServerRBAC may have made game-day
			_, err = dc.Resource(suites).Namespace(namespace).Create(ctx, suite, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if editor && err != nil {
				t.Errorf("%s: create the example suite: %v", role, err)
			}
			if !editor && !apierrors.IsForbidden(err) {
				t.Errorf("%s: create the example suite: want Forbidden, got %v", role, err)
			}
			if _, err := dc.Resource(schema.GroupVersionResource{Group: "chaosd.io", Version: "v1alpha1", Resource: "suiteruns"}).Namespace(namespace).List(ctx, metav1.ListOptions{}); err != nil {
				t.Errorf("%s: list suiteruns: %v", role, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
