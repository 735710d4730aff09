package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/agentclient"
	"github.com/chaosd/chaosd/agent/partition"
	"github.com/chaosd/chaosd/internal/certgen"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

// TestTCPMutualTLS: on TCP the agent speaks only TLS and only to a caller
// with a client certificate of its CA; chaosd's passes.
func TestTCPMutualTLS(t *testing.T) {
	pki := t.TempDir()
	other := t.TempDir()
	for _, d := range []string{pki, other} {
		if _, err := certgen.Generate(certgen.Spec{Dir: d, Chaosd: []string{},
			Agents: []certgen.Agent{{Name: "node-a", Hosts: []string{"127.0.0.1"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	h := startAgent(t, partition.NewFake(), func(c *Config) {
		c.TCPAddr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile = certgen.CertPath(pki, "agent-node-a"), certgen.KeyPath(pki, "agent-node-a")
		c.ClientCAFile = filepath.Join(pki, certgen.CAFile)
	})
	ports := h.cfg.Control.TCP()
	if len(ports) != 1 {
		t.Fatalf("control ports %v", ports)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ca := filepath.Join(pki, certgen.CAFile)
	client := func(t *testing.T, scheme string, f *tlsconf.ClientFiles) *agentclient.Client {
		t.Helper()
		var opts []agentclient.Option
		if f != nil {
			tc, err := tlsconf.Client(*f)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, agentclient.WithTLS(tc))
		}
		c, err := agentclient.NewClient(scheme+"://"+addr, testToken, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		scheme string
		files  *tlsconf.ClientFiles
		ok     bool
	}{
		{"chaosd's certificate", "https", &tlsconf.ClientFiles{CAFile: ca, CertFile: certgen.CertPath(pki, "chaosd"), KeyFile: certgen.KeyPath(pki, "chaosd")}, true},
		{"no client certificate", "https", &tlsconf.ClientFiles{CAFile: ca}, false},
		{"certificate of another CA", "https", &tlsconf.ClientFiles{CAFile: ca, CertFile: certgen.CertPath(other, "chaosd"), KeyFile: certgen.KeyPath(other, "chaosd")}, false},
		{"agent not trusted", "https", &tlsconf.ClientFiles{CAFile: filepath.Join(other, certgen.CAFile), CertFile: certgen.CertPath(pki, "chaosd"), KeyFile: certgen.KeyPath(pki, "chaosd")}, false},
		{"plain HTTP", "http", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := client(t, tc.scheme, tc.files).Status(ctx)
			if tc.ok {
				if err != nil || st.Node == "" {
					t.Fatalf("Status = %+v, %v", st, err)
				}
				return
			}
			if err == nil {
				t.Fatal("answered")
			}
			var ae *agentapi.APIError
			if errors.As(err, &ae) && ae.Status != 400 {
				// Only a TLS failure, or Go's "client sent an HTTP
				// request to an HTTPS server" 400, is a refusal here.
				t.Fatalf("got an HTTP answer: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	// The TLS version floor.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // the point of the test
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 accepted")
	} else if !strings.Contains(err.Error(), "version") {
		t.Logf("TLS 1.1: %v", err)
	}
}
