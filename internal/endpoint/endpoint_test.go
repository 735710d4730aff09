package endpoint

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestClient(t *testing.T) {
	cases := []struct {
		in, base, err string
	}{
		{in: "unix:///run/x.sock", base: "http://svc"},
		{in: "unix://rel/x.sock", base: "http://svc"},
		{in: "http://10.0.0.1:7080", base: "http://10.0.0.1:7080"},
		{in: "https://h:1/prefix/", base: "https://h:1/prefix"},
		{in: "unix://", err: "needs a socket path"},
		{in: "http://", err: "missing host"},
		{in: "tcp://h:1", err: "scheme must be unix, http or https"},
		{in: "::", err: "endpoint"},
	}
	for _, tc := range cases {
		_, base, err := Client(tc.in, "svc")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || base != tc.base {
			t.Errorf("%q: base %q err %v, want %q", tc.in, base, err, tc.base)
		}
	}
}

func TestUnixSocketIsReached(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) })}
	go srv.Serve(l) //nolint:errcheck
	defer srv.Close()
	hc, base, err := Client("unix://"+sock, "chaosd")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/healthz", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "chaosd" {
		t.Fatalf("host %q", b)
	}
	hc.CloseIdleConnections()
}
