package tlsconf_test

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/chaosd/chaosd/internal/certgen"
	"github.com/chaosd/chaosd/internal/tlsconf"
)

// BenchmarkAgentCall measures one small API call from chaosd to an agent
// over loopback: plain HTTP, mutual TLS on a reused connection (what
// chaosd's clients do: keep-alive), and mutual TLS with a new connection
// and handshake per call (the worst case: the handshake's cost).
func BenchmarkAgentCall(b *testing.B) {
	dir := b.TempDir()
	if _, err := certgen.Generate(certgen.Spec{Dir: dir, Chaosd: []string{"127.0.0.1"},
		Agents: []certgen.Agent{{Name: "n1", Hosts: []string{"127.0.0.1"}}}}); err != nil {
		b.Fatal(err)
	}
	sc, err := tlsconf.Server(tlsconf.ServerFiles{CertFile: certgen.CertPath(dir, "agent-n1"), KeyFile: certgen.KeyPath(dir, "agent-n1"),
		ClientCAFile: filepath.Join(dir, certgen.CAFile)})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := tlsconf.Client(tlsconf.ClientFiles{CAFile: filepath.Join(dir, certgen.CAFile), CertFile: certgen.CertPath(dir, "chaosd"), KeyFile: certgen.KeyPath(dir, "chaosd")})
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"node":"n1"}`) })
	serve := func(wrap func(net.Listener) net.Listener) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(wrap(l))
		b.Cleanup(func() { srv.Close() })
		return l.Addr().String()
	}
	plain := serve(func(l net.Listener) net.Listener { return l })
	mtls := serve(func(l net.Listener) net.Listener { return tls.NewListener(l, sc) })
	for _, bc := range []struct {
		name      string
		url       string
		keepAlive bool
	}{
		{"plain-reused", "http://" + plain, true},
		{"mtls-reused", "https://" + mtls, true},
		{"plain-new-connection", "http://" + plain, false},
		{"mtls-new-connection", "https://" + mtls, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &http.Transport{TLSClientConfig: cc.Clone(), DisableKeepAlives: !bc.keepAlive}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			for b.Loop() {
				resp, err := hc.Get(bc.url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
