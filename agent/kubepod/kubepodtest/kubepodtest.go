//go:build linux

package kubepodtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

// Node is a fake node's kubelet cgroup layout. Root is the test's cgroup
// directory, which stands for the hierarchy root: give it to the code
// under test as its cgroup root.
type Node struct {
	Root    string
	Version int
	Driver  kubepod.CgroupDriver
	t       testing.TB
}

var seq atomic.Int64

// Hierarchy returns the real hierarchy holding the memory controller
// (v2 at /sys/fs/cgroup with memory delegated, else v1 at
// /sys/fs/cgroup/memory), or skips the test saying what is missing.
func Hierarchy(t testing.TB) kubepod.Hierarchy {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups, network namespaces and processes")
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil && strings.Contains(string(b), "memory") {
		return kubepod.Hierarchy{Root: "/sys/fs/cgroup", Version: 2}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		return kubepod.Hierarchy{Root: "/sys/fs/cgroup/memory", Version: 1}
	}
	t.Skip("needs cgroup v2 with the memory controller delegated at /sys/fs/cgroup, or the cgroup v1 memory controller at /sys/fs/cgroup/memory")
	return kubepod.Hierarchy{}
}

// NewNode creates chaosd-test-kp-<pid>-<n> in the real hierarchy, to
// hold a kubelet layout for driver (cgroupfs or systemd).
func NewNode(t testing.TB, driver kubepod.CgroupDriver) *Node {
	t.Helper()
	h := Hierarchy(t)
	n := &Node{Root: filepath.Join(h.Root, fmt.Sprintf("chaosd-test-kp-%d-%d", os.Getpid(), seq.Add(1))), Version: h.Version, Driver: driver, t: t}
	if err := os.Mkdir(n.Root, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	t.Cleanup(func() { RemoveTree(t, n.Root) })
	n.delegate("")
	return n
}

// delegate enables the memory controller for rel's children (v2), as
// kubelet and systemd do down to each pod.
func (n *Node) delegate(rel string) {
	if n.Version != 2 {
		return
	}
	if err := os.WriteFile(filepath.Join(n.Root, rel, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		n.t.Fatalf("enable memory for children of %s: %v", rel, err)
	}
}

// mkdirs creates rel and its missing parents, each delegating memory to
// its children (v2) except rel itself when it is to hold processes.
func (n *Node) mkdirs(rel string, leaf bool) {
	p := ""
	els := strings.Split(rel, "/")
	for i, el := range els {
		p = path.Join(p, el)
		err := os.Mkdir(filepath.Join(n.Root, p), 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			n.t.Fatalf("create cgroup %s: %v", p, err)
		}
		if !leaf || i < len(els)-1 {
			n.delegate(p)
		}
	}
}

// PodOptions shape a fake pod.
type PodOptions struct {
	Name string // default pod-<n>
	QOS  string // default Burstable
	// MemoryLimit on the pod's cgroup (bytes; 0: none).
	MemoryLimit uint64
	// ContainerID of the container the process runs in (default c<n>).
	ContainerID string
}

// Pod is a fake pod: its cgroup, one container cgroup with one process in
// its own network namespace.
type Pod struct {
	API       agentapi.Pod
	Cgroup    string // relative to the node's root
	Container string // the container's cgroup, relative to the node's root
	NS        netns.NsHandle
	node      *Node
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd is reaped
}

// PID is the pod's process now.
func (p *Pod) PID() int { return p.cmd.Process.Pid }

// NSPath names the pod's namespace for code that wants a path.
func (p *Pod) NSPath() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(p.NS)) }

// AddPod creates a pod with one running process in a new network
// namespace.
func (n *Node) AddPod(o PodOptions) *Pod {
	t := n.t
	t.Helper()
	i := seq.Add(1)
	if o.Name == "" {
		o.Name = fmt.Sprintf("pod-%d", i)
	}
	if o.QOS == "" {
		o.QOS = kubepod.Burstable
	}
	if o.ContainerID == "" {
		o.ContainerID = fmt.Sprintf("c%064d", i)[:64]
	}
	uid := fmt.Sprintf("0000%04d-aaaa-4bbb-8ccc-%012d", i%10000, os.Getpid())
	api := agentapi.Pod{Namespace: "test", Name: o.Name, UID: uid, QOSClass: o.QOS, ContainerIDs: []string{"containerd://" + o.ContainerID}}
	cands, err := kubepod.Layout{Driver: n.Driver, Version: n.Version}.PodCgroups(api)
	if err != nil {
		t.Fatal(err)
	}
	p := &Pod{API: api, Cgroup: cands[0], Container: kubepod.ContainerCgroups(cands[0], o.ContainerID)[0], node: n}
	n.mkdirs(p.Cgroup, false)
	if o.MemoryLimit > 0 {
		file := "memory.limit_in_bytes"
		if n.Version == 2 {
			file = "memory.max"
		}
		if err := os.WriteFile(filepath.Join(n.Root, p.Cgroup, file), []byte(strconv.FormatUint(o.MemoryLimit, 10)), 0); err != nil {
			t.Fatalf("set pod memory limit: %v", err)
		}
	}
	n.mkdirs(p.Container, true)
	p.NS = NewNS(t)
	t.Cleanup(func() { p.NS.Close() })
	p.start()
	t.Cleanup(p.stop)
	return p
}

// NewNS creates a network namespace without entering it, held by the
// returned handle (the caller closes it).
func NewNS(t testing.TB) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	return ns
}

// start runs `sleep` in the pod's namespace and moves it into the
// container's cgroup. It is forked by a goroutine locked to its OS thread
// switched into the pod's namespace, which then waits for it and only
// then ends (taking the thread with it): PDEATHSIG, which fires when the
// forking *thread* exits, can then only reach a process already gone,
// while a test process that dies takes its pods' processes with it.
func (p *Pod) start() {
	t := p.node.t
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		err := netns.Set(p.NS)
		if err == nil {
			err = cmd.Start()
		}
		started <- err
		if err == nil {
			cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		<-exited
		t.Fatalf("start the pod's process: %v", err)
	}
	p.cmd, p.exited = cmd, exited
	procs := filepath.Join(p.node.Root, p.Container, "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		p.stop()
		t.Fatalf("move the pod's process into %s: %v", procs, err)
	}
}

// stop kills the pod's process (through its os.Process: the one this
// package started, never a reused PID) and waits until it is reaped.
func (p *Pod) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Restart replaces the pod's process with a new one in the same network
// namespace and container cgroup (a container restart).
func (p *Pod) Restart() {
	p.node.t.Helper()
	old := p.PID()
	p.stop()
	p.start()
	if p.PID() == old {
		p.node.t.Fatalf("restarted process has the old PID %d", old)
	}
}

// Delete removes the pod as kubelet would: its process dies, its network
// namespace goes (the test's last reference is closed), and its cgroup
// tree is removed. Processes someone else left in its cgroups (a
// stressor) must have been killed first, as kubelet kills the whole pod.
func (p *Pod) Delete() {
	t := p.node.t
	t.Helper()
	p.stop()
	p.NS.Close()
	RemoveTree(t, filepath.Join(p.node.Root, p.Cgroup))
}

// Procs returns the PIDs in a cgroup (relative to the node's root).
func (n *Node) Procs(rel string) []int {
	data, _ := os.ReadFile(filepath.Join(n.Root, rel, "cgroup.procs"))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// RemoveTree removes a cgroup directory and every cgroup below it,
// deepest first, retrying while a cgroup whose processes just died is
// still busy. Processes still inside make it fail the test.
func RemoveTree(t testing.TB, dir string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.Remove(dirs[i])
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				procs, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
				t.Errorf("remove cgroup %s: %v (processes: %q)", dirs[i], err, strings.TrimSpace(string(procs)))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
