package kubeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
	authenticationv1 "k8s.io/api/authentication/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestBinDirMissing(t *testing.T) {
	t.Setenv(EnvBinDir, "")
	if _, err := BinDir(); !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "hack/k8s-bins.sh") {
		t.Errorf("unset: want ErrNoBinaries naming hack/k8s-bins.sh, got %v", err)
	}
	empty := t.TempDir()
	t.Setenv(EnvBinDir, empty)
	if _, err := BinDir(); !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Errorf("empty dir: want ErrNoBinaries naming kube-apiserver, got %v", err)
	}
	if _, err := Start(context.Background(), Options{}); !errors.Is(err, ErrNoBinaries) {
		t.Errorf("Start without binaries: want ErrNoBinaries, got %v", err)
	}
}

func TestObjects(t *testing.T) {
	objs, err := Objects([]byte("# c\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: a}\n"))
	if err != nil || len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetNamespace() != "a" {
		t.Fatalf("got %v, %v", objs, err)
	}
	if _, err := Objects([]byte("metadata: {name: x}\n")); err == nil {
		t.Fatal("want an error for a document without apiVersion and kind")
	}
}

// TestAPIServerStartStop starts a private server, uses it as the admin
// and as a ServiceAccount, installs a CRD, and checks that Stop leaves no
// process, directory or goroutine behind.
// skipOrFail ends a test that could not get a server (see
// kubetest.SkipOrFail, which this package cannot import).
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) && os.Getenv(EnvRequired) == "" {
		t.Skipf("no real API server: %v", err)
	}
	t.Fatalf("start the API server: %v", err)
}

func TestAPIServerStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that needs a real kube-apiserver")
	}
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		skipOrFail(t, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	t.Logf("start-up (etcd + kube-apiserver to /readyz): %s", s.StartupTime().Round(time.Millisecond))

	// The admin is in system:masters.
	review, err := s.Client().AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "admin" || !contains(u.Groups, "system:masters") {
		t.Errorf("admin is %q in %v", u.Username, u.Groups)
	}
	if _, err := s.Client().CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("admin cannot list secrets: %v", err)
	}

	// A ServiceAccount gets a token and, without RBAC bindings, nothing.
	cfg, err := s.ServiceAccountConfig(ctx, "kubetest", "robot")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err = sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo.Username; u != "system:serviceaccount:kubetest:robot" {
		t.Errorf("service account token authenticates as %q", u)
	}
	if _, err := sa.CoreV1().Secrets("kubetest").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("service account without bindings listing secrets: want Forbidden, got %v", err)
	}
	// Asking again reuses the namespace and account.
	if _, err := s.ServiceAccountConfig(ctx, "kubetest", "robot"); err != nil {
		t.Fatal(err)
	}

	// A CRD installs, becomes Established, serves objects; installing it
	// again is a no-op.
	crd := widgetCRD()
	for range 2 {
		if err := s.InstallCRDs(ctx, crd); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Objects([]byte("apiVersion: kubetest.example/v1\nkind: Widget\nmetadata: {name: w, namespace: kubetest}\nspec: {size: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, objs[0], metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("dry-run create of a Widget: %v", err)
	}
	if _, err := s.Apply(ctx, objs[0], metav1.ApplyOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("server-side apply (dry run) of a Widget: %v", err)
	}
	objs[0].Object["spec"] = map[string]any{"size": "three"}
	if _, err := s.Create(ctx, objs[0], metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsInvalid(err) {
		t.Errorf("a Widget of the wrong type: want Invalid, got %v", err)
	}

	pids := []int{s.api.cmd.Process.Pid, s.etcd.cmd.Process.Pid}
	dir := s.dir
	stopped = true
	if err := s.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); os.Getenv(EnvKeep) == "" && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Stop: %v", dir, err)
	}
	if filepath.Dir(dir) != filepath.Clean(os.TempDir()) {
		t.Errorf("server directory %s is not under %s", dir, os.TempDir())
	}
	goleak.VerifyNone(t, before)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.kubetest.example"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "kubetest.example",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Widget", ListKind: "WidgetList", Plural: "widgets", Singular: "widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
}

// A directory left by a test binary that died is removed by the next
// Start; one whose owner lives, or that was kept, is not.
func TestSweep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	mk := func(owner string, kept bool) string {
		d, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o600); err != nil {
			t.Fatal(err)
		}
		if kept {
			if err := os.WriteFile(filepath.Join(d, keptFile), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	dead := mk("2147483646", false) // above any pid_max: no such process
	live := mk(strconv.Itoa(os.Getpid()), false)
	kept := mk("2147483646", true)
	sweep(t.Logf)
	for d, want := range map[string]bool{dead: false, live: true, kept: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", d, err == nil, want)
		}
	}
}

// TestStartWrappedDetached checks the options the lab uses: a Wrap prefix
// that execs the server in place (the recorded PID and argv are the
// server's), every connection through DialContext, OnStart called for
// each process before it is ready, a Dir of the caller's, and Detach (a
// session of its own).
func TestStartWrappedDetached(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that needs a real kube-apiserver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var dials atomic.Int32
	var procs []Process
	dir := filepath.Join(t.TempDir(), "server")
	s, err := Start(ctx, Options{
		Logf: t.Logf, Dir: dir, Detach: true,
		Wrap: []string{"env", "--"},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		OnStart: func(p Process) error { procs = append(procs, p); return nil },
	})
	if err != nil {
		skipOrFail(t, err)
	}
	defer s.Stop()
	if len(procs) != 2 || procs[0].Name != "etcd" || procs[1].Name != "kube-apiserver" {
		t.Fatalf("OnStart saw %+v", procs)
	}
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
		if err != nil {
			t.Fatalf("%s (pid %d): %v", p.Name, p.PID, err)
		}
		if got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"); !slices.Equal(got, p.Argv) {
			t.Errorf("%s: /proc/%d/cmdline %q, recorded %q", p.Name, p.PID, got, p.Argv)
		}
		if sid, _ := unix.Getsid(p.PID); sid != p.PID {
			t.Errorf("%s: session %d, want its own (%d)", p.Name, sid, p.PID)
		}
		if !strings.HasPrefix(p.Log, dir+"/") {
			t.Errorf("%s logs to %s, outside Dir %s", p.Name, p.Log, dir)
		}
	}
	before := dials.Load()
	if before == 0 {
		t.Error("the readiness checks did not dial through DialContext")
	}
	if _, err := s.Client().CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if dials.Load() == before {
		t.Error("the returned configuration does not dial through DialContext")
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s left after Stop: %v", dir, err)
	}
}
