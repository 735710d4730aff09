// Package amtest runs a real Alertmanager (Debian's
// prometheus-alertmanager) on loopback for tests.
package amtest

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Start runs Alertmanager with a config that routes everything to a
// receiver with no integrations, waits until it is ready and returns its
// base URL. The test is skipped, saying which package to install, when
// the binary is missing.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		bin, err = exec.LookPath("alertmanager")
	}
	if err != nil {
		t.Skip("no Alertmanager binary: apt-get install prometheus-alertmanager (hack/deps.sh does)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+dir, "--web.listen-address="+addr, "--cluster.listen-address=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
	}
	t.Fatal("alertmanager did not become ready in 20s")
	return ""
}

// Silence is what the API says about one silence.
type Silence struct {
	ID       string `json:"id"`
	Comment  string `json:"comment"`
	Matchers []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsEqual bool   `json:"isEqual"`
	} `json:"matchers"`
	Status struct {
		State string `json:"state"` // active, pending, expired
	} `json:"status"`
}

// Get reads one silence.
func Get(t testing.TB, base, id string) Silence {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/silence/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Silence
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
