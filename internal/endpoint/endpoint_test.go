package endpoint

import (
	"context"
	"errors"
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

func TestCall(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusTeapot)
		w.Write(b)
	})}
	go srv.Serve(l) //nolint:errcheck
	defer srv.Close()
	hc, base, _ := Client("unix://"+sock, "svc")
	defer hc.CloseIdleConnections()
	ans, err := Call(context.Background(), hc, "POST", base+"/x", "tok", map[string]int{"a": 1}, 1<<20)
	if err != nil || ans.Status != http.StatusTeapot || string(ans.Body) != `{"a":1}` || ans.Header.Get("X-Seen") != "application/json" {
		t.Fatalf("answer %+v %v: any status is an answer, the body and headers come back", ans, err)
	}
	if ans, err := Call(context.Background(), hc, "GET", base+"/x", "", nil, 1<<20); err != nil || ans.Status != 401 {
		t.Fatalf("without token: %+v %v", ans, err)
	}
	dead, deadBase, _ := Client("unix://"+filepath.Join(t.TempDir(), "none.sock"), "svc")
	_, err = Call(context.Background(), dead, "GET", deadBase+"/x", "tok", nil, 1<<20)
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("no server: %v, want a *TransportError", err)
	}
	if _, err := Call(context.Background(), hc, "POST", base+"/x", "tok", func() {}, 1<<20); err == nil || errors.As(err, &te) {
		t.Fatalf("unencodable body: %v, want a local error", err)
	}
}
