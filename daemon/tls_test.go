package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/client"
	"github.com/chaosd/chaosd/internal/certgen"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestTCPTLSAndScopes: chaosd's TCP listener speaks TLS only; a read
// token reads runs and /metrics over it but gets 403 naming scope run
// when it starts a run.
func TestTCPTLSAndScopes(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"e1": fmt.Sprintf(testExperiment, "e1", "1s", "")})
	pki := filepath.Join(h.dir, "pki")
	if _, err := certgen.Generate(certgen.Spec{Dir: pki, Chaosd: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	readTok := filepath.Join(h.dir, "token-read")
	if err := os.WriteFile(readTok, []byte("reader\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeTCPAddr(t)
	h.cfg.Listen.TCP = addr
	h.cfg.Listen.TLS = &ListenTLS{CertFile: certgen.CertPath(pki, "chaosd"), KeyFile: certgen.KeyPath(pki, "chaosd")}
	h.cfg.Tokens = []ScopedToken{{File: readTok, Scope: "read"}}
	if err := h.cfg.validate(); err != nil {
		t.Fatal(err)
	}
	h.start()

	tc, err := tlsconf.Client(tlsconf.ClientFiles{CAFile: filepath.Join(pki, certgen.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reader, err := client.NewClient("https://"+addr, "reader", client.WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Experiments(ctx); err != nil {
		t.Fatalf("read token over TLS: %v", err)
	}
	_, err = reader.StartRun(ctx, api.StartRequest{Experiment: "e1"})
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(ae.Message, `needs scope "run"`) || !strings.Contains(ae.Message, readTok) {
		t.Fatalf("read token starting a run: %v; want 403 naming scope run and the token's file", err)
	}
	if runs, err := h.client.Runs(ctx); err != nil || len(runs) != 0 {
		t.Fatalf("runs after a refused start: %v %v", runs, err)
	}
	// /metrics with the read token, as Prometheus scrapes it.
	req, _ := http.NewRequest("GET", "https://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer reader")
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "chaosd_") {
		t.Fatalf("/metrics with a read token: %d %.200s", resp.StatusCode, b)
	}
	// Plain HTTP on the TLS port gets no API answer.
	plain, _ := client.NewClient("http://"+addr, "secret-token")
	if _, err := plain.Experiments(ctx); err == nil {
		t.Fatal("plain HTTP answered on the TLS port")
	}
	// A client that does not trust chaosd's CA is refused.
	untrusted, _ := client.NewClient("https://"+addr, "secret-token")
	if _, err := untrusted.Experiments(ctx); !errors.Is(err, api.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client without the CA: %v", err)
	}
}

// TestCredentialFileModes: chaosd refuses to start with a token or key
// file others can read or write, naming the file and its mode.
func TestCredentialFileModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		file func(h *harness) string
		mode os.FileMode
	}{
		{"API token world-readable", func(h *harness) string { return h.cfg.TokenFile }, 0o644},
		{"agent token group-writable", func(h *harness) string { return h.cfg.AgentTokenFile }, 0o660},
		{"TLS key world-readable", func(h *harness) string { return h.cfg.Listen.TLS.KeyFile }, 0o604},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "", nil, nil)
			pki := filepath.Join(h.dir, "pki")
			if _, err := certgen.Generate(certgen.Spec{Dir: pki, Chaosd: []string{"127.0.0.1"}}); err != nil {
				t.Fatal(err)
			}
			h.cfg.Listen.TCP = "127.0.0.1:0"
			h.cfg.Listen.TLS = &ListenTLS{CertFile: certgen.CertPath(pki, "chaosd"), KeyFile: certgen.KeyPath(pki, "chaosd")}
			f := tc.file(h)
			if err := os.Chmod(f, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := New(h.cfg, zaptest.NewLogger(t))
			if err == nil || !strings.Contains(err.Error(), f) {
				t.Fatalf("New = %v; want refused naming %s", err, f)
			}
			if want := fmt.Sprintf("mode %04o", tc.mode); !strings.Contains(err.Error(), want) {
				t.Fatalf("New = %v; want %q", err, want)
			}
		})
	}
}
