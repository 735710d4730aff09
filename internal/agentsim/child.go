package agentsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// envChild carries a child fleet's Config (JSON) to the child process.
const envChild = "CHAOSD_AGENTSIM_CHILD"

// Remote is a fleet served by a child process (Spawn).
type Remote struct {
	nodes []Node
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// Spawn serves cfg in a child process, so that the caller's CPU time and
// memory are its own: the running test binary again, whose TestMain must
// start with
//
//	if agentsim.ServeChild() { os.Exit(0) }
func Spawn(cfg Config) (*Remote, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &Remote{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		r.Stop()
		return nil, fmt.Errorf("agentsim: child fleet did not start (%q, %v)", line, err)
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck
	for i := range cfg.Agents {
		name := fmt.Sprintf("n%d", i+1)
		r.nodes = append(r.nodes, Node{Name: name, Endpoint: "unix://" + filepath.Join(cfg.Dir, name+".sock")})
	}
	return r, nil
}

// Nodes lists the agents.
func (r *Remote) Nodes() []Node { return r.nodes }

// Stop ends the child (its agents revert what they hold) and waits for it.
func (r *Remote) Stop() error {
	r.stdin.Close()
	return r.cmd.Wait()
}

// ServeChild, in a child process started by Spawn, serves the fleet until
// the parent closes stdin and returns true; elsewhere it returns false at
// once.
func ServeChild() bool {
	js := os.Getenv(envChild)
	if js == "" {
		return false
	}
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "agentsim child:", err)
		return true
	}
	f, err := Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentsim child:", err)
		return true
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := f.Stop(); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintln(os.Stderr, "agentsim child: stop:", err)
	}
	return true
}
