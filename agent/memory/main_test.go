package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

// The test binary doubles as the agent's binary: "agent-stressor" is the
// hidden stressor mode (as `chaosd agent-stressor`), "test-agent" a
// stand-in agent that applies one fault and blocks, so tests can SIGKILL it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "agent-stressor":
			os.Exit(StressorMain(os.Args[2:]))
		case "test-agent":
			os.Exit(testAgentMain(os.Args[2]))
		}
	}
	os.Exit(m.Run())
}

// testAgentConfig is the stand-in agent's job.
type testAgentConfig struct {
	CgroupRoot   string
	CgroupDriver string
	CgroupNS     string
	Owner        string
	Fault        agentapi.Fault
	// LeakLifeline hands the stressor's stdin write end to a `sleep`
	// child, so only PDEATHSIG can kill the stressor when this agent dies.
	LeakLifeline bool
}

// testAgentReport is the stand-in agent's one line of output.
type testAgentReport struct {
	// SelfCgroup is the stand-in's /proc/self/cgroup, as it sees it.
	SelfCgroup string
	State      json.RawMessage
	SleepPID   int
	Error      string
}

func testAgentMain(cfgJSON string) int {
	report := func(r testAgentReport) {
		self, _ := os.ReadFile("/proc/self/cgroup")
		r.SelfCgroup = strings.TrimSpace(string(self))
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	var cfg testAgentConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		report(testAgentReport{Error: err.Error()})
		return 2
	}
	d, err := New(Config{ArgPrefix: []string{"agent-stressor"}, CgroupRoot: cfg.CgroupRoot, Owner: cfg.Owner,
		CgroupDriver: kubepod.CgroupDriver(cfg.CgroupDriver), CgroupNS: cfg.CgroupNS}, nil)
	if err != nil {
		report(testAgentReport{Error: err.Error()})
		return 1
	}
	st, err := d.Prepare(context.Background(), ptr(cfg.Fault))
	if err == nil {
		st, err = d.Apply(context.Background(), cfg.Fault, st)
	}
	if err != nil {
		report(testAgentReport{Error: err.Error()})
		return 1
	}
	r := testAgentReport{State: st}
	if cfg.LeakLifeline {
		var s state
		json.Unmarshal(st, &s)
		fd, err := findLifeline(s.PID)
		if err != nil {
			report(testAgentReport{Error: err.Error()})
			return 1
		}
		sl := exec.Command("sleep", "60")
		sl.ExtraFiles = []*os.File{os.NewFile(uintptr(fd), "lifeline")}
		if err := sl.Start(); err != nil {
			report(testAgentReport{Error: err.Error()})
			return 1
		}
		r.SleepPID = sl.Process.Pid
	}
	report(r)
	for {
		time.Sleep(time.Hour)
	}
}

// findLifeline returns this process's fd for the pipe that is the
// stressor's stdin.
func findLifeline(pid int) (int, error) {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); l == want {
			return strconv.Atoi(e.Name())
		}
	}
	return 0, fmt.Errorf("no fd for %s", want)
}

func TestStressorRefusesWhenParentIsNotTheAgent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "agent-stressor", markerArg, ownerFlag+"t", faultIDFlag+"x", "--size=4096", "--parent=1", "--lease-ms=60000")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitAlone {
		t.Fatalf("stressor with a wrong parent: err %v, want exit %d; output %q", err, exitAlone, out)
	}
	if !strings.Contains(string(out), "parent 1 is gone") {
		t.Errorf("output %q does not say the parent is gone", out)
	}
}

func TestStressorUsage(t *testing.T) {
	if got := StressorMain([]string{"--size=4096"}); got != exitUsage {
		t.Fatalf("StressorMain without marker = %d, want %d", got, exitUsage)
	}
}
