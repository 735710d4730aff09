// Package kubeapi starts a real Kubernetes API server: etcd and
// kube-apiserver, built by hack/k8s-bins.sh from the Kubernetes modules,
// on loopback with a data directory of its own, RBAC authorization, an
// admin token (group system:masters) and a ServiceAccount token issuer.
// No controllers run: no scheduler, no garbage collector, no namespace
// finalizer; objects are only stored and validated.
//
// Tests use it through internal/kubetest (a shared server per test
// binary); the lab (lab, chaoslab up --kube) starts one inside its
// management network namespace with [Options.Wrap], reaches it with
// [Options.DialContext] and keeps it running after chaoslab exits with
// [Options.Detach].
//
// The binaries come from the directory in CHAOSD_K8S_BIN_DIR (hack/test.sh
// sets it) unless [Options.BinDir] names one.
package kubeapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Environment variables the harness reads.
const (
	// EnvBinDir names the directory holding kube-apiserver and etcd.
	EnvBinDir = "CHAOSD_K8S_BIN_DIR"
	// EnvRequired, when set, turns a missing binary into a test failure.
	EnvRequired = "CHAOSD_K8S_REQUIRED"
	// EnvKeep, when set, keeps the server's directory (logs, data) after
	// Stop and logs where it is.
	EnvKeep = "CHAOSD_KUBETEST_KEEP"
)

// Audience is the audience of ServiceAccount tokens (--api-audiences) and
// the issuer (--service-account-issuer).
const Audience = "https://kubernetes.default.svc.cluster.local"

// ErrNoBinaries says the binaries are not where CHAOSD_K8S_BIN_DIR points.
var ErrNoBinaries = errors.New("kube-apiserver and etcd not found: run hack/k8s-bins.sh and set " + EnvBinDir + " to the directory it prints")

// BinDir returns the directory holding kube-apiserver and etcd, from
// CHAOSD_K8S_BIN_DIR, or an error wrapping ErrNoBinaries.
func BinDir() (string, error) {
	dir := os.Getenv(EnvBinDir)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: %w", EnvBinDir, ErrNoBinaries)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s=%s has no executable %s: %w", EnvBinDir, dir, b, ErrNoBinaries)
		}
	}
	return dir, nil
}

// Options configure Start.
type Options struct {
	// BinDir holds kube-apiserver and etcd; empty: BinDir().
	BinDir string
	// ReadyTimeout bounds the wait for /readyz (default 2m: the machine
	// may be busy compiling).
	ReadyTimeout time.Duration
	// Logf, when set, receives progress lines (t.Logf).
	Logf func(format string, args ...any)

	// Dir, when set, is the server's directory (certificates, tokens,
	// etcd's data, logs); it is made if missing and removed by Stop.
	// Empty: a new temporary directory.
	Dir string
	// Wrap prefixes the argv of etcd and kube-apiserver, e.g.
	// ["nsenter", "--net=/run/netns/NS", "--"] to run them in another
	// network namespace (the prefix must exec the server in place, so the
	// started PID is the server's own).
	Wrap []string
	// DialContext, when set, opens every connection to the servers: the
	// readiness checks' and the returned configuration's (rest.Config.Dial).
	// With Wrap entering a network namespace, it must dial in that
	// namespace: the servers listen on its loopback.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Detach starts the servers in a session of their own and does not
	// tie their life to the caller's: they keep running after the caller
	// exits, and whoever recorded them (OnStart) must stop them.
	Detach bool
	// OnStart, when set, is called right after each server process starts
	// (before it is ready), so the caller can record it ahead of a crash.
	OnStart func(Process) error
}

// Process is one server process: its PID and the argv it runs (what
// /proc/PID/cmdline shows once a Wrap prefix has exec'd it), and its log.
type Process struct {
	Name string
	PID  int
	Argv []string
	Log  string
}

// Server is a running etcd and kube-apiserver.
type Server struct {
	dir     string
	url     string
	token   string
	caPEM   []byte
	config  *rest.Config
	client  kubernetes.Interface
	dynamic dynamic.Interface
	etcd    *process
	api     *process
	startup time.Duration
	logf    func(string, ...any)
	mu      sync.Mutex                              // guards crds and mapper
	crds    map[string]string                       // CRD name -> hash of the spec installed
	mapper  *restmapper.DeferredDiscoveryRESTMapper // made on first use
}

// Start starts etcd and kube-apiserver and waits until the API server is
// ready. The caller must Stop the server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	began := time.Now()
	if opts.BinDir == "" {
		dir, err := BinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sweep(logf)
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", dirPrefix); err != nil {
			return nil, fmt.Errorf("make the server's directory: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("write the server's owner: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make the server's directory: %w", err)
	}
	var err error
	s := &Server{dir: dir, logf: logf, crds: map[string]string{}}
	if err := s.writeCredentials(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// A port picked free can be taken before the server binds it (other
	// tests run on this machine): try again with new ports.
	const attempts = 3
	for i := 1; ; i++ {
		err = s.start(ctx, opts)
		if err == nil {
			break
		}
		s.stopProcesses()
		if i == attempts || ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			s.removeDir()
			return nil, err
		}
		logf("kubetest: attempt %d: %v; retrying with other ports", i, err)
	}
	s.startup = time.Since(began)
	logf("kubetest: kube-apiserver ready at %s in %s", s.url, s.startup.Round(time.Millisecond))
	return s, nil
}

const (
	dirPrefix = "kubetest-"
	ownerFile = "owner.pid" // the test binary's PID
	keptFile  = "kept"      // present when EnvKeep kept the directory
)

// sweep removes the directories of servers whose test binary died without
// stopping them (a panic skips Stop; the kernel killed the processes, see
// sysProcAttr, but the directory stays).
func sweep(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, keptFile)); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours to judge (or being made right now)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || !alive(pid) {
			if err := os.RemoveAll(d); err == nil {
				logf("kubetest: removed %s, left by a test binary that died", d)
			}
		}
	}
}

// errPortTaken marks a start that failed because a port was in use.
var errPortTaken = errors.New("port in use")

// writeCredentials writes the admin token file, the serving certificate
// and the ServiceAccount signing key.
func (s *Server) writeCredentials() error {
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	s.token = hex.EncodeToString(tok)
	// TOKEN,USER,UID,"GROUP": system:masters may do everything.
	line := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", s.token)
	if err := os.WriteFile(s.path("tokens.csv"), []byte(line), 0o600); err != nil {
		return fmt.Errorf("write the token file: %w", err)
	}
	certPEM, keyPEM, err := servingCert()
	if err != nil {
		return fmt.Errorf("make the serving certificate: %w", err)
	}
	s.caPEM = certPEM
	saKey, err := rsaKeyPEM()
	if err != nil {
		return fmt.Errorf("make the service account key: %w", err)
	}
	for name, data := range map[string][]byte{"serving.crt": certPEM, "serving.key": keyPEM, "sa.key": saKey} {
		if err := os.WriteFile(s.path(name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// start starts etcd and kube-apiserver on newly picked ports and waits
// until both are ready.
func (s *Server) start(ctx context.Context, opts Options) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	clientURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	dataDir := s.path("etcd")
	if err := os.RemoveAll(dataDir); err != nil {
		return err
	}
	s.etcd, err = startProcess(opts, filepath.Join(opts.BinDir, "etcd"), s.path("etcd.log"),
		"--name=kubetest",
		"--data-dir="+dataDir,
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--initial-cluster-state=new",
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	plain := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: opts.DialContext}}
	defer plain.CloseIdleConnections()
	if err := waitReady(readyCtx, s.etcd, plain, clientURL+"/health", ""); err != nil {
		return fmt.Errorf("etcd: %w", s.etcd.explain(err))
	}

	s.url = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	s.api, err = startProcess(opts, filepath.Join(opts.BinDir, "kube-apiserver"), s.path("kube-apiserver.log"),
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+s.path("serving.crt"),
		"--tls-private-key-file="+s.path("serving.key"),
		"--cert-dir="+s.path("certs"),
		"--token-auth-file="+s.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file="+s.path("sa.key"),
		"--service-account-signing-key-file="+s.path("sa.key"),
		"--service-account-issuer="+Audience,
		"--api-audiences="+Audience,
		// Only stored in objects (Service cluster IPs); nothing routes it.
		"--service-cluster-ip-range=10.0.0.0/24",
		// No kube-apiserver endpoints to keep: there is no default route here.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: opts.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer secure.CloseIdleConnections()
	if err := waitReady(readyCtx, s.api, secure, s.url+"/readyz", s.token); err != nil {
		return fmt.Errorf("kube-apiserver: %w", s.api.explain(err))
	}
	s.config = &rest.Config{
		Host:            s.url,
		BearerToken:     s.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caPEM},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
		// Warnings (e.g. Pod Security's "would violate") are for people;
		// tests that want them set their own handler on Config().
		WarningHandler: rest.NoWarnings{},
		Dial:           opts.DialContext,
	}
	if s.client, err = kubernetes.NewForConfig(s.config); err != nil {
		return err
	}
	s.dynamic, err = dynamic.NewForConfig(s.config)
	return err
}

// waitReady polls url until it answers 200, the process exits or ctx ends.
func waitReady(ctx context.Context, p *process, c *http.Client, url, token string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body[:n]))
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Config returns a copy of the admin's client configuration (user admin,
// group system:masters).
func (s *Server) Config() *rest.Config { return rest.CopyConfig(s.config) }

// Client returns the admin's clientset.
func (s *Server) Client() kubernetes.Interface { return s.client }

// URL returns the API server's address (https://127.0.0.1:PORT).
func (s *Server) URL() string { return s.url }

// StartupTime is how long Start took, from the first process started to
// /readyz answering 200.
func (s *Server) StartupTime() time.Duration { return s.startup }

// ServiceAccountConfig returns a client configuration authenticated as the
// ServiceAccount namespace/name with a token from the TokenRequest API
// (valid one hour). It creates the namespace and the ServiceAccount when
// they do not exist.
func (s *Server) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := s.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := s.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{Audience},
		ExpirationSeconds: ptr(int64(3600)),
	}}
	tr, err := s.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request a token for service account %s/%s: %w", namespace, name, err)
	}
	c := rest.AnonymousClientConfig(s.config)
	c.BearerToken = tr.Status.Token
	return c, nil
}

// Stop stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 10s), and
// removes the server's directory. It is safe to call more than once.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	err := s.stopProcesses()
	s.removeDir()
	return err
}

func (s *Server) stopProcesses() error {
	var errs []error
	for _, p := range []**process{&s.api, &s.etcd} {
		if *p != nil {
			errs = append(errs, (*p).stop(10*time.Second))
			*p = nil
		}
	}
	return errors.Join(errs...)
}

func (s *Server) removeDir() {
	if s.dir == "" {
		return
	}
	if os.Getenv(EnvKeep) != "" {
		_ = os.WriteFile(filepath.Join(s.dir, keptFile), nil, 0o600)
		s.logf("kubetest: kept %s (%s is set)", s.dir, EnvKeep)
		return
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.logf("kubetest: remove %s: %v", s.dir, err)
	}
	s.dir = ""
}

// process is a started server process whose output goes to a log file.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned; read after done
}

func startProcess(opts Options, bin, logFile string, args ...string) (*process, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own descriptor
	argv := append([]string{bin}, args...)
	full := append(append([]string(nil), opts.Wrap...), argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Dir(logFile)}
	if opts.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = sysProcAttr()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{name: filepath.Base(bin), log: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if opts.OnStart != nil {
		if err := opts.OnStart(Process{Name: p.name, PID: cmd.Process.Pid, Argv: argv, Log: logFile}); err != nil {
			_ = p.stop(5 * time.Second)
			return nil, fmt.Errorf("record %s: %w", p.name, err)
		}
	}
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil // already gone (its exit was reported where it mattered)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s; killed", p.name, p.cmd.Process.Pid, grace)
}

// explain adds the end of the process's log to err, and marks errors
// caused by a port in use.
func (p *process) explain(err error) error {
	tail := p.tail(40)
	if strings.Contains(tail, "address already in use") {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, p.log, tail)
}

func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ptr[T any](v T) *T { return &v }
