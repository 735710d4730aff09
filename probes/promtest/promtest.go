// Package promtest starts a real Prometheus server for tests, listening on
// 127.0.0.1 with its own config and data directory, scraping the given
// targets every second. Any package's tests may use it:
//
//	url := promtest.Start(t, exporterHostPort)
//	ev, _ := prom.New(url)
//
// The server is stopped (by PID) and its directory removed when the test
// ends. Tests are skipped only when no prometheus binary is installed
// (Debian package "prometheus"; set PROMETHEUS_BIN to use another).
package promtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultBinary is where Debian's prometheus package installs the server.
const DefaultBinary = "/usr/bin/prometheus"

// Options configure StartWith.
type Options struct {
	// Targets are host:port pairs scraped at /metrics (job "test").
	Targets []string
	// ScrapeInterval is the scrape (and rule evaluation) interval; default 1s.
	ScrapeInterval time.Duration
	// OpenMetrics, when set, is OpenMetrics text (ending in "# EOF")
	// backfilled into the data directory with promtool before the server
	// starts, for deterministic history. Timestamps are in seconds and must
	// lie within the retention (15 days) before now.
	OpenMetrics string
	// StartTimeout bounds start-up: readiness plus every target up;
	// default 30s.
	StartTimeout time.Duration
	// Rules, when set, is a Prometheus rules file (groups: ...) the
	// server evaluates every ScrapeInterval.
	Rules string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the base URL of the HTTP API, e.g. "http://127.0.0.1:41234".
	URL string
	// PID is the server's process id.
	PID int
	// Dir holds the config, the data directory and the server's log.
	Dir string
}

// Binaries returns the prometheus and promtool paths, skipping the test
// when prometheus is not installed. promtool is looked up next to it.
func Binaries(t testing.TB) (prometheus, promtool string) {
	t.Helper()
	prometheus = os.Getenv("PROMETHEUS_BIN")
	if prometheus == "" {
		prometheus = DefaultBinary
		if _, err := os.Stat(prometheus); err != nil {
			p, lerr := exec.LookPath("prometheus")
			if lerr != nil {
				t.Skipf("prometheus binary not found at %s or in PATH (install Debian package prometheus, or set PROMETHEUS_BIN): integration test needs a real server", DefaultBinary)
			}
			prometheus = p
		}
	}
	promtool = filepath.Join(filepath.Dir(prometheus), "promtool")
	if _, err := os.Stat(promtool); err != nil {
		if p, lerr := exec.LookPath("promtool"); lerr == nil {
			promtool = p
		}
	}
	return prometheus, promtool
}

// Start runs Prometheus scraping scrapeTargets (host:port) every second,
// waits until it is ready and every target is up, and returns its base URL.
// It fails the test if Prometheus does not come up.
func Start(t testing.TB, scrapeTargets ...string) string {
	t.Helper()
	return StartWith(t, Options{Targets: scrapeTargets}).URL
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin, promtool := Binaries(t)
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	dir := t.TempDir() // removed after our stop (cleanups run last-in first-out)

	if o.Rules != "" {
		if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(o.Rules), 0o644); err != nil {
			t.Fatalf("write rules: %v", err)
		}
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, config(o), 0o644); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	data := filepath.Join(dir, "data")
	if o.OpenMetrics != "" {
		backfill(t, promtool, dir, data, o.OpenMetrics)
	}

	// The free port is found by binding and releasing it, so another process
	// may take it first; retry a few times when the server exits at once.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := start(t, bin, dir, cfg, data, o)
		if err == nil {
			return s
		}
		lastErr = err
		t.Logf("prometheus start attempt %d: %v", attempt, err)
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func config(o Options) []byte {
	var b bytes.Buffer
	iv := o.ScrapeInterval.String()
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	if o.Rules != "" {
		b.WriteString("rule_files: [rules.yml]\n")
	}
	b.WriteString("scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [")
	for i, tg := range o.Targets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(tg))
	}
	b.WriteString("]\n")
	return b.Bytes()
}

func backfill(t testing.TB, promtool, dir, data, om string) {
	t.Helper()
	in := filepath.Join(dir, "backfill.om")
	if !strings.HasSuffix(strings.TrimSpace(om), "# EOF") {
		om = strings.TrimRight(om, "\n") + "\n# EOF\n"
	}
	if err := os.WriteFile(in, []byte(om), 0o644); err != nil {
		t.Fatalf("write backfill input: %v", err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatalf("create data dir: %v", err)
	}
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", in, data).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool backfill: %v\n%s", err, out)
	}
}

func start(t testing.TB, bin, dir, cfg, data string, o Options) (*Server, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=info",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()

	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("prometheus pid %d ignored SIGTERM for 10s; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-done
		}
	}

	s := &Server{URL: "http://" + addr, PID: cmd.Process.Pid, Dir: dir}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	if err := waitReady(ctx, hc, s.URL, done); err != nil {
		stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(logPath, 30))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("prometheus log (last lines):\n%s", tail(logPath, 40))
		}
	})
	if err := waitTargetsUp(ctx, hc, s.URL, len(o.Targets)); err != nil {
		t.Fatalf("prometheus at %s: %v", s.URL, err)
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, hc *http.Client, base string, done <-chan error) error {
	for {
		select {
		case err := <-done:
			return fmt.Errorf("prometheus exited during start-up: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready at %s: %w", base, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

// waitTargetsUp waits until count(up == 1) equals n.
func waitTargetsUp(ctx context.Context, hc *http.Client, base string, n int) error {
	if n == 0 {
		return nil
	}
	var last string
	for {
		got, err := countUp(ctx, hc, base)
		if err == nil && got == n {
			return nil
		}
		last = fmt.Sprintf("%d of %d targets up (err %v)", got, n, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("targets not up: %s", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func countUp(ctx context.Context, hc *http.Client, base string) (int, error) {
	u := base + "/api/v1/query?query=" + url.QueryEscape("count(up == 1)")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode up query: %w", err)
	}
	if body.Status != "success" || len(body.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.Atoi(s)
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
