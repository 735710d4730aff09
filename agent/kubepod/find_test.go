package kubepod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// fakeTree writes files (path → content) under a temporary directory;
// directories are created as needed.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetectHierarchy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		sub     string // expected root below the tree
		version int
	}{
		{"v2 root", map[string]string{"cgroup.controllers": "memory"}, "", 2},
		{"v1 memory hierarchy", map[string]string{"memory.limit_in_bytes": "1"}, "", 1},
		{"hybrid: v1 memory below", map[string]string{"memory/memory.limit_in_bytes": "1", "unified/cgroup.controllers": ""}, "memory", 1},
		{"hybrid: memory in unified", map[string]string{"unified/cgroup.controllers": "cpu memory"}, "unified", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files)
			h, err := DetectHierarchy(root)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tc.sub); h.Root != want || h.Version != tc.version {
				t.Fatalf("got %+v, want {%s %d}", h, want, tc.version)
			}
		})
	}
	root := fakeTree(t, map[string]string{"unified/cgroup.controllers": "cpu"})
	if _, err := DetectHierarchy(root); err == nil || !strings.Contains(err.Error(), "neither a cgroup v2 root") {
		t.Fatalf("no memory controller anywhere: %v", err)
	}
}

func TestFindPodCgroup(t *testing.T) {
	pod := agentapi.Pod{Namespace: "petclinic", Name: "visits-0", UID: uid, QOSClass: Burstable}
	sysd := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7f3c1a2e_95b4_4c1d_8e0f_0a1b2c3d4e5f.slice"
	t.Run("cgroupfs", func(t *testing.T) {
		root := fakeTree(t, map[string]string{"kubepods/burstable/pod" + uid + "/cgroup.procs": ""})
		for _, d := range []CgroupDriver{DriverAuto, DriverCgroupfs} {
			got, err := FindPodCgroup(Hierarchy{root, 2}, d, pod)
			if err != nil || got != "kubepods/burstable/pod"+uid {
				t.Errorf("%s: %q, %v", d, got, err)
			}
		}
		// Told systemd on a cgroupfs node: no kubepods.slice at all.
		_, err := FindPodCgroup(Hierarchy{root, 2}, DriverSystemd, pod)
		if err == nil || IsGone(err) || !strings.Contains(err.Error(), "no kubepods cgroup") || !strings.Contains(err.Error(), "tried kubepods.slice") {
			t.Errorf("wrong driver: %v", err)
		}
	})
	t.Run("systemd", func(t *testing.T) {
		root := fakeTree(t, map[string]string{sysd + "/cgroup.procs": ""})
		got, err := FindPodCgroup(Hierarchy{root, 1}, DriverAuto, pod)
		if err != nil || got != sysd {
			t.Errorf("%q, %v", got, err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		root := fakeTree(t, map[string]string{"kubepods/burstable/podother/cgroup.procs": ""})
		_, err := FindPodCgroup(Hierarchy{root, 2}, DriverAuto, pod)
		if !IsGone(err) {
			t.Fatalf("err = %v, want ErrGone", err)
		}
		for _, want := range []string{"petclinic/visits-0", "kubepods/burstable/pod" + uid, sysd, "driver auto"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
	t.Run("no hierarchy", func(t *testing.T) {
		_, err := FindPodCgroup(Hierarchy{t.TempDir(), 2}, DriverAuto, pod)
		if err == nil || IsGone(err) || !strings.Contains(err.Error(), "--cgroup-root") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPodProcesses(t *testing.T) {
	const pod = "kubepods/pod" + uid
	h := Hierarchy{fakeTree(t, map[string]string{
		pod + "/cgroup.procs":                  "",
		pod + "/sandbox1/cgroup.procs":         "100\n",
		pod + "/app2/cgroup.procs":             "300\n301\n",
		pod + "/app1/cgroup.procs":             "200\n",
		pod + "/chaosd-mem-x/cgroup.procs":     "900\n",
		pod + "/crio-conmon-app1/cgroup.procs": "901\n",
		pod + "/other/cgroup.procs":            "400\n",
		pod + "/other/nested/cgroup.procs":     "401\n",
	}), 2}
	proc := fakeTree(t, map[string]string{"100/comm": "pause\n", "400/comm": "java\n", "401/comm": "sh\n"})
	got, err := PodProcesses(h, proc, pod, agentapi.Pod{UID: uid, ContainerIDs: []string{"containerd://app1", "app2", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, p := range got {
		pids = append(pids, strconv.Itoa(p.PID))
	}
	// Listed containers in order, then the rest with pause last; never
	// the agent's own cgroup or conmon.
	if want := "200 300 301 400 401 100"; strings.Join(pids, " ") != want {
		t.Fatalf("order %v, want %s", pids, want)
	}
	if !got[0].Container || got[0].Cgroup != pod+"/app1" || got[5].Container || !got[5].Pause {
		t.Errorf("flags: %+v", got)
	}

	empty := Hierarchy{fakeTree(t, map[string]string{pod + "/cgroup.procs": "", pod + "/c/cgroup.procs": ""}), 2}
	_, err = PodProcesses(empty, proc, pod, agentapi.Pod{UID: uid, ContainerIDs: []string{"c"}})
	if !IsGone(err) || !strings.Contains(err.Error(), pod+"/c") {
		t.Fatalf("empty pod: %v", err)
	}
}

// TestFinderRefusesHostNetwork builds a pod whose only process is this
// test (in the node's network namespace): OpenNetNS must refuse it, and
// FindNetNS for another namespace must say it is gone. No root needed.
func TestFinderRefusesHostNetwork(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	pod := agentapi.Pod{Namespace: "ns", Name: "hostnet", UID: uid, QOSClass: Guaranteed}
	root := fakeTree(t, map[string]string{
		"cgroup.controllers":                     "memory",
		"kubepods/pod" + uid + "/c/cgroup.procs": self + "\n",
	})
	f, err := NewFinder(Config{CgroupRoot: root, Driver: DriverCgroupfs})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := f.Hierarchy(); err != nil || h.Version != 2 {
		t.Fatalf("hierarchy %+v, %v", h, err)
	}
	_, err = f.OpenNetNS(context.Background(), pod)
	if !errors.Is(err, ErrHostNetwork) || !strings.Contains(err.Error(), "ns/hostnet") {
		t.Fatalf("OpenNetNS of a hostNetwork pod: %v", err)
	}
	own, err := StatNS("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ns, err := f.FindNetNS(context.Background(), pod, own)
	if err != nil {
		t.Fatalf("FindNetNS of its own namespace: %v", err)
	}
	if ns.ID != own || ns.PID != os.Getpid() {
		t.Errorf("found %+v", ns)
	}
	ns.Close()
	_, err = f.FindNetNS(context.Background(), pod, NSID{Dev: own.Dev, Ino: own.Ino + 1})
	if !IsGone(err) || !strings.Contains(err.Error(), own.String()) {
		t.Fatalf("FindNetNS of a namespace no process is in: %v", err)
	}
	if _, err := NewFinder(Config{Driver: "kubelet"}); err == nil {
		t.Fatal("NewFinder accepted driver kubelet")
	}
}
