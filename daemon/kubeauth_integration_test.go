package daemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/internal/kubetest"
)

// TestIntegrationKubeIdentities: on a real API server, chaosd accepts
// ServiceAccount tokens it does not know (TokenReview) and RBAC decides
// each scope (SubjectAccessReview) with the Roles of
// manifests/base/rbac-users.yaml: a viewer reads but may not run, a
// runner runs but may not halt nor run an ad hoc experiment, an adhoc
// identity may, an admin halts, an identity without a
// binding may not even read, and a token the API server does not know
// is a 401.
func TestIntegrationKubeIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a kube-apiserver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := newKubeWorld(t, ctx, "chaosd-authz", nil)
	data, err := os.ReadFile("../manifests/base/rbac-users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kubetest.Objects(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o.SetNamespace(w.ns)
		if _, err := w.srv.Apply(ctx, o, metav1.ApplyOptions{Force: true}); err != nil {
			t.Fatalf("apply %s: %v", o.GetName(), err)
		}
	}
	tokens := map[string]string{}
	for _, who := range []string{"viewer", "runner", "adhoc", "admin", "nobody"} {
		if _, err := w.admin.CoreV1().ServiceAccounts(w.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: who}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if who != "nobody" {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: who}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "chaosd-" + who},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: who, Namespace: w.ns}}}
			if _, err := w.admin.RbacV1().RoleBindings(w.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		rc, err := w.srv.ServiceAccountConfig(ctx, w.ns, who)
		if err != nil {
			t.Fatal(err)
		}
		tokens[who] = rc.BearerToken
	}

	cfg := w.kubeConfig(t, t.TempDir(), "http://127.0.0.1:1")
	cfg.Kubernetes.LeaderElection.Disabled = true
	d, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })
	as := func(who string) *client.Client {
		tok := tokens[who]
		if tok == "" {
			tok = who // a literal token
		}
		c, err := client.NewClient("unix://"+cfg.Listen.Socket, tok)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitFor(t, 30*time.Second, "chaosd answers", func() bool { return as("secret-token").Health(ctx) == nil })

	status := func(err error) (int, string) {
		var ae *api.APIError
		if errors.As(err, &ae) {
			return ae.Status, ae.Message
		}
		if err != nil {
			return -1, err.Error()
		}
		return 200, ""
	}
	for _, tc := range []struct {
		who, call string
		want      int
		msg       string
	}{
		{"viewer", "read", 200, ""},
		{"viewer", "run", 403, `needs scope "run"; Kubernetes user system:serviceaccount:chaosd-authz:viewer may not (RBAC: no "create" on experimentruns/api`},
		{"runner", "read", 200, ""},
		{"runner", "run", 404, "nope"}, // allowed: the unknown experiment is the answer
		{"runner", "halt", 403, `needs scope "admin"`},
		{"runner", "adhoc", 403, `needs scope "adhoc"; Kubernetes user system:serviceaccount:chaosd-authz:runner may not (RBAC: no "adhoc" on experimentruns/api`},
		// allowed: the spec's own problem (a field) is the answer
		{"adhoc", "adhoc", 400, "f.yaml:1:1: spec.targets: at least one target is required"},
		{"adhoc", "halt", 403, `needs scope "admin"`},
		{"admin", "adhoc", 400, "f.yaml:1:1: spec.targets: at least one target is required"},
		{"admin", "halt", 200, ""},
		{"nobody", "read", 403, `needs scope "read"`},
		{"not-a-token", "read", 401, "bearer token"},
	} {
		t.Run(tc.who+" "+tc.call, func(t *testing.T) {
			c := as(tc.who)
			var err error
			switch tc.call {
			case "read":
				_, err = c.Runs(ctx)
			case "run":
				_, err = c.StartRun(ctx, api.StartRequest{Experiment: "nope"})
			case "halt":
				_, err = c.Halt(ctx, "")
			case "adhoc":
				_, err = c.StartRun(ctx, api.StartRequest{File: "f.yaml",
					Spec: "apiVersion: chaosd.io/v1alpha1\nkind: Experiment\nmetadata:\n  name: x\n"})
			}
			got, msg := status(err)
			if got != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %q; want %d containing %q", got, msg, tc.want, tc.msg)
			}
		})
	}
}
