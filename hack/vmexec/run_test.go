package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAptDepends(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
		wantErr         bool
	}{
		{name: "bookworm", out: "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", want: "linux-image-6.1.0-56-cloud-amd64"},
		{name: "alternatives", out: "linux-image-cloud-amd64\n |Depends: linux-image-6.12.9-cloud-amd64\n  Depends: foo\n", want: "linux-image-6.12.9-cloud-amd64"},
		{name: "unknown package", out: "W: No packages found\n", wantErr: true},
		{name: "empty", out: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAptDepends(tc.out)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseAptDepends = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseModinfoDepends(t *testing.T) {
	raw := []byte("license=GPL\x00depends=nf_tables,nf_reject_ipv4,nft-reject\x00retpoline=Y\x00")
	if got, want := parseModinfoDepends(raw), []string{"nf_tables", "nf_reject_ipv4", "nft_reject"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := parseModinfoDepends([]byte("depends=\x00")); got != nil {
		t.Errorf("empty depends = %v", got)
	}
}

func TestResolveModules(t *testing.T) {
	idx := &moduleIndex{
		files: map[string]string{
			"nft_reject_inet": "kernel/net/netfilter/nft_reject_inet.ko",
			"nft_reject":      "kernel/net/netfilter/nft_reject.ko",
			"nf_tables":       "kernel/net/netfilter/nf_tables.ko",
			"nfnetlink":       "kernel/net/netfilter/nfnetlink.ko",
			"libcrc32c":       "kernel/lib/libcrc32c.ko",
			"sch_netem":       "kernel/net/sched/sch_netem.ko",
			"broken":          "kernel/broken.ko",
		},
		builtin: map[string]bool{"sch_fq_codel": true},
	}
	deps := map[string][]string{
		"kernel/net/netfilter/nft_reject_inet.ko": {"nf_tables", "nft_reject"},
		"kernel/net/netfilter/nft_reject.ko":      {"nf_tables"},
		"kernel/net/netfilter/nf_tables.ko":       {"nfnetlink", "libcrc32c"},
		"kernel/broken.ko":                        {"nowhere"},
	}
	idx.deps = func(rel string) ([]string, error) { return deps[rel], nil }

	order, missing, err := idx.resolveModules([]string{"sch_netem", "nft_reject_inet", "sch_fq_codel", "nf_tables", "sch-nope"})
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{
		"kernel/net/sched/sch_netem.ko",
		"kernel/net/netfilter/nfnetlink.ko",
		"kernel/lib/libcrc32c.ko",
		"kernel/net/netfilter/nf_tables.ko",
		"kernel/net/netfilter/nft_reject.ko",
		"kernel/net/netfilter/nft_reject_inet.ko",
	}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("order = %v, want %v", order, wantOrder)
	}
	if !reflect.DeepEqual(missing, []string{"sch_nope"}) {
		t.Errorf("missing = %v", missing)
	}
	if _, _, err := idx.resolveModules([]string{"broken"}); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("missing dependency: err = %v", err)
	}
}

func TestGuestArgs(t *testing.T) {
	in := []string{"-test.paniconexit0", "-test.testlogfile=/tmp/go-build1/b001/testlog.txt", "-test.timeout=10m0s", "-test.testlogfile", "/x", "-test.v=true"}
	want := []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true"}
	if got := guestArgs(in); !reflect.DeepEqual(got, want) {
		t.Errorf("guestArgs = %v, want %v", got, want)
	}
}

func TestGuestEnv(t *testing.T) {
	got := guestEnv([]string{"CHAOSD_BIN_DIR=/b", "CHAOSD_VM_MEM=2G", "CHAOSD_IN_VM=0", "GODEBUG=x=1", "HOME=/home/me", "SECRET=s", "PATH=/usr/local/go/bin"})
	want := map[string]string{
		"CHAOSD_BIN_DIR": "/b", "GODEBUG": "x=1",
		"CHAOSD_IN_VM": "1", "HOME": "/root", "USER": "root", "PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "TMPDIR": "/tmp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guestEnv = %v, want %v", got, want)
	}
}

func TestParseOptions(t *testing.T) {
	env := map[string]string{"CHAOSD_VM_CACHE": "/c", "CHAOSD_VM_TIMEOUT": "90s", "CHAOSD_VM_MODULES": "tun, bridge"}
	o, cmd, err := parseOptions([]string{"-mem", "2G", "/tmp/x.test", "-test.v=true"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Cache != "/c" || o.Mem != "2G" || o.Timeout != 90*time.Second || !reflect.DeepEqual(o.Modules, []string{"tun", "bridge"}) {
		t.Errorf("options = %+v", o)
	}
	if !reflect.DeepEqual(cmd, []string{"/tmp/x.test", "-test.v=true"}) {
		t.Errorf("command = %v", cmd)
	}
	o, _, _ = parseOptions([]string{"/tmp/x.test", "-test.timeout=40m0s"}, func(string) string { return "" }, io.Discard)
	if o.Timeout != 40*time.Minute+30*time.Second {
		t.Errorf("timeout with -test.timeout=40m = %s, want 40m30s", o.Timeout)
	}
	o, _, _ = parseOptions([]string{"/tmp/x.test", "-test.timeout", "1m"}, func(string) string { return "" }, io.Discard)
	if o.Timeout != defaultTimeout {
		t.Errorf("timeout with -test.timeout 1m = %s, want the default", o.Timeout)
	}
	o, _, _ = parseOptions([]string{"/tmp/x.test", "-test.timeout=40m"}, func(k string) string { return env[k] }, io.Discard)
	if o.Timeout != 90*time.Second {
		t.Errorf("CHAOSD_VM_TIMEOUT must win over -test.timeout: %s", o.Timeout)
	}
	o, _, err = parseOptions([]string{"-files", "/usr/sbin/ip=/sbin/ip,/b/chaosd", "/tmp/x.test"}, func(string) string { return "" }, io.Discard)
	if want := []extraFile{{"/usr/sbin/ip", "/sbin/ip"}, {"/b/chaosd", "/b/chaosd"}}; err != nil || !reflect.DeepEqual(o.Files, want) {
		t.Errorf("-files: %+v, %v; want %+v", o.Files, err, want)
	}
	if _, _, err := parseOptions([]string{"/tmp/x.test"}, func(k string) string {
		if k == "CHAOSD_VM_FILES" {
			return "/x=/tmp/x"
		}
		return ""
	}, io.Discard); err == nil || !strings.Contains(err.Error(), "CHAOSD_VM_FILES") {
		t.Errorf("CHAOSD_VM_FILES under /tmp in the guest: err = %v", err)
	}
	if _, _, err := parseOptions(nil, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("no test binary: no error")
	}
	if _, _, err := parseOptions([]string{"x"}, func(k string) string {
		if k == "CHAOSD_VM_TIMEOUT" {
			return "soon"
		}
		return ""
	}, io.Discard); err == nil {
		t.Error("bad CHAOSD_VM_TIMEOUT: no error")
	}
}

func TestReadResult(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          int
		wantErr       bool
	}{
		{name: "pass", content: "EXIT=0\r\n", want: 0},
		{name: "fail", content: "EXIT=1\n", want: 1},
		{name: "noise before", content: "junk\nEXIT=2\r\n", want: 2},
		{name: "empty", content: "", wantErr: true},
		{name: "cut off", content: "EXIT=", wantErr: true},
		{name: "out of range", content: "EXIT=300\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.content), 0o644)
			got, err := readResult(p)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("readResult = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := readResult(filepath.Join(dir, "absent")); err == nil {
		t.Error("absent result file: no error")
	}
}

func TestConsoleFilter(t *testing.T) {
	in := "\x1bc\x1b[?7lSeaBIOS\r\n[    0.000000] Linux version 6.1\r\n" + guestReadyMarker + "\r\n" +
		"=== RUN   TestX\r\n[    3.141592] sch_netem: version 1.3\r\n--- PASS: TestX (0.00s)\r\nPASS\r\npartial"
	var out bytes.Buffer
	c := &consoleFilter{out: &out}
	if err := c.copyFrom(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if want := "=== RUN   TestX\n--- PASS: TestX (0.00s)\nPASS\npartial"; out.String() != want {
		t.Errorf("filtered console = %q, want %q", out.String(), want)
	}
	if !c.ready || !strings.Contains(c.boot.String(), "Linux version") {
		t.Errorf("ready=%v boot=%q", c.ready, c.boot.String())
	}

	out.Reset()
	v := &consoleFilter{out: &out, verbose: true}
	v.copyFrom(strings.NewReader(in))
	if out.String() != in {
		t.Errorf("verbose console changed the text: %q", out.String())
	}
}

func TestCheckStatic(t *testing.T) {
	if err := checkStatic(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("absent file: no error")
	}
	if err := checkStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("/bin/sh (dynamic): err = %v", err)
	}
}

func TestGuestWorkdirIsNeverUnderAGuestMount(t *testing.T) {
	for _, host := range []string{"/tmp/ci-check/agent", "/run/x/pkg", "/dev/shm/p", "/work/main/agent"} {
		w := guestWorkdir(host)
		for _, m := range []string{"/tmp", "/run", "/dev", "/proc", "/sys"} {
			if strings.HasPrefix(w, m+"/") {
				t.Errorf("guest workdir %s for %s is under the guest mount %s", w, host, m)
			}
		}
		if !strings.HasSuffix(w, host) {
			t.Errorf("guest workdir %s does not mirror %s", w, host)
		}
	}
}
