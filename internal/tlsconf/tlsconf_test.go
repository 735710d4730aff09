package tlsconf_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/internal/certgen"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

// pki makes a CA with chaosd's certificate and an agent's for 127.0.0.1.
func pki(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := certgen.Generate(certgen.Spec{Dir: dir, Chaosd: []string{"127.0.0.1"},
		Agents: []certgen.Agent{{Name: "n1", Hosts: []string{"127.0.0.1"}}}, Clients: []string{"chaosctl"}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mtlsServer serves 200 with the agent's certificate, requiring a client
// certificate of dir's CA.
func mtlsServer(t *testing.T, dir string) string {
	t.Helper()
	sc, err := tlsconf.Server(tlsconf.ServerFiles{CertFile: certgen.CertPath(dir, "agent-n1"), KeyFile: certgen.KeyPath(dir, "agent-n1"),
		ClientCAFile: filepath.Join(dir, certgen.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(l, sc))
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String()
}

func get(t *testing.T, url string, cc *tls.Config) error {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cc}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func TestMutualTLS(t *testing.T) {
	dir := pki(t)
	other := pki(t) // another CA
	srv := mtlsServer(t, dir)
	ca := filepath.Join(dir, certgen.CAFile)
	for _, tc := range []struct {
		name    string
		files   tlsconf.ClientFiles
		wantErr string
	}{
		{"chaosd's client certificate", tlsconf.ClientFiles{CAFile: ca, CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")}, ""},
		{"no client certificate", tlsconf.ClientFiles{CAFile: ca}, "certificate"},
		{"client certificate of another CA", tlsconf.ClientFiles{CAFile: ca, CertFile: certgen.CertPath(other, "chaosd"), KeyFile: certgen.KeyPath(other, "chaosd")}, "certificate"},
		{"server of another CA", tlsconf.ClientFiles{CAFile: filepath.Join(other, certgen.CAFile), CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")}, "unknown authority"},
		{"server name not in the certificate", tlsconf.ClientFiles{CAFile: ca, ServerName: "elsewhere", CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")}, "elsewhere"},
		{"server name of the agent", tlsconf.ClientFiles{CAFile: ca, ServerName: "n1", CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := tlsconf.Client(tc.files)
			if err != nil {
				t.Fatal(err)
			}
			err = get(t, srv, cc)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatal("accepted")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q; want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestTLS11Refused(t *testing.T) {
	dir := pki(t)
	srv := mtlsServer(t, dir)
	c, err := tls.Dial("tcp", strings.TrimPrefix(srv, "https://"), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // the point of the test
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake accepted")
	}
}

func TestWorldReadableKeyRefused(t *testing.T) {
	dir := pki(t)
	key := certgen.KeyPath(dir, "agent-n1")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := tlsconf.Server(tlsconf.ServerFiles{CertFile: certgen.CertPath(dir, "agent-n1"), KeyFile: key})
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("Server with a 0644 key = %v; want refused naming the file and its mode", err)
	}
}

func TestCertgenModes(t *testing.T) {
	dir := pki(t)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, e := range ents {
		fi, _ := e.Info()
		if strings.HasSuffix(e.Name(), ".key") {
			keys++
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", e.Name(), fi.Mode().Perm())
			}
		}
	}
	if keys != 4 { // ca, chaosd, agent-n1, chaosctl
		t.Errorf("%d keys written, want 4", keys)
	}
	// A second run reuses the CA: the first agent's certificate still
	// verifies against ca.crt.
	if _, err := certgen.Generate(certgen.Spec{Dir: dir, Agents: []certgen.Agent{{Name: "n2", Hosts: []string{"10.0.0.2"}}}}); err != nil {
		t.Fatal(err)
	}
	srv := mtlsServer(t, dir)
	cc, err := tlsconf.Client(tlsconf.ClientFiles{CAFile: filepath.Join(dir, certgen.CAFile), CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")})
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, srv, cc); err != nil {
		t.Fatalf("after adding a certificate: %v", err)
	}
}
