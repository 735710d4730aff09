package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the test binary's one server, started by the first test that
// needs it and stopped by Main.
var shared struct {
	mu      sync.Mutex
	main    bool // Main is running the tests
	started bool // a start was tried (err says how it went)
	srv     *Server
	err     error
}

// Main runs the tests of a package that uses Shared, then stops the
// shared server. Call it from TestMain:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
// The test binary exits with the tests' result.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	defer stopShared()
	m.Run()
}

func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: stop the shared API server: %v\n", err)
		}
		shared.srv = nil
	}
}

// Shared returns the test binary's API server, starting it on first use.
// Tests share it: each should use its own namespaces and names. It skips
// the test when the binaries are missing (fails when CHAOSD_K8S_REQUIRED is
// set) or under -short.
func Shared(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that needs a real kube-apiserver")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("kubetest.Shared needs kubetest.Main: add func TestMain(m *testing.M) { kubetest.Main(m) }")
	}
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Not t.Logf: the server outlives this test, and Stop may log.
		shared.srv, shared.err = Start(ctx, Options{Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}})
		if shared.err == nil {
			t.Logf("kubetest: shared API server started in %s", shared.srv.StartupTime().Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		SkipOrFail(t, shared.err)
	}
	return shared.srv
}

// SkipOrFail ends a test that could not get a server: a skip when the
// binaries are missing (unless CHAOSD_K8S_REQUIRED is set), else a
// failure.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) && os.Getenv(EnvRequired) == "" {
		t.Skipf("no real API server: %v", err)
	}
	t.Fatalf("start the API server: %v", err)
}
