//go:build unix

package promtest

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestIntegrationStartStops(t *testing.T) {
	var srv *Server
	t.Run("run", func(t *testing.T) {
		srv = StartWith(t, Options{})
		if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
			t.Fatalf("URL = %s, want loopback", srv.URL)
		}
		hc := &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(srv.URL + "/-/ready")
		if err != nil {
			t.Fatalf("GET /-/ready: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /-/ready = %d", resp.StatusCode)
		}
	})
	if srv == nil {
		t.Fatal("no server started")
	}
	// The subtest's cleanup stopped the process and removed the directory.
	if err := syscall.Kill(srv.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("prometheus pid %d still exists after cleanup (kill 0: %v)", srv.PID, err)
	}
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Errorf("dir %s still exists after cleanup (stat: %v)", srv.Dir, err)
	}
}
