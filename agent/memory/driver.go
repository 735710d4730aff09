package memory

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
	"github.com/chaosd/chaosd/agent/kubepod"
)

// Config configures the memory driver.
type Config struct {
	// Exe is the binary that runs the stressor; default: this process's
	// executable (os.Executable).
	Exe string
	// ArgPrefix goes before the stressor's own arguments, e.g.
	// ["agent-stressor"] for the agent's hidden command.
	ArgPrefix []string
	// CgroupRoot is the hierarchy holding the memory controller, or where
	// to look for it (kubepod.DetectHierarchy: v2 at the directory, else
	// v1 at its memory/, else v2 at its unified/ if it has the memory
	// controller); default /sys/fs/cgroup.
	CgroupRoot string
	// CgroupDriver is kubelet's cgroup driver, for faults with Fault.Pod
	// set ("" or auto: both layouts).
	CgroupDriver kubepod.CgroupDriver
	// ProcRoot is procfs of the agent's own PID namespace; default /proc.
	ProcRoot string
	// Owner is written on every stressor's command line; Prune only kills
	// stressors with the same owner, so several agents can share a PID
	// namespace (e.g. the lab). Default "chaosd-agent"; use the node name.
	Owner string
	// StartTimeout bounds how long Apply waits for the stressor to report
	// it started (default 10s); KillTimeout how long Revert waits for a
	// killed stressor to disappear (default 5s). Both waits also end with
	// the call's context.
	StartTimeout time.Duration
	KillTimeout  time.Duration
	// CgroupNS is a cgroup namespace file to start stressors in, e.g.
	// /proc/1/ns/cgroup (the host's, with the host's PID namespace); "":
	// the agent's own. Needed on cgroup v2 when the agent runs in a
	// container with a cgroup namespace of its own (see fork).
	CgroupNS string
}

// Margin is how much longer a stressor's own deadline runs than the
// lease it was set or renewed for. The agent's own timer reverts the
// fault (kills the stressor) at the end of the lease; the stressor's
// deadline passes Margin later, so while the agent is alive the agent
// ends the fault (logged, in the ledger, verified) and a renewal that
// reaches the agent in time always finds the stressor still there. A
// renewal crosses a pipe in microseconds; 250 ms covers scheduling
// hiccups of either process and keeps a hung agent's stressor well within
// lease + 1 s.
const Margin = 250 * time.Millisecond

// selfTimeout is the time a stressor holds on by itself for a fault held
// until `until` (its lease end), from now: until - now + Margin, at least
// 1 ms.
func selfTimeout(now, until time.Time) time.Duration {
	d := until.Sub(now)
	if d > math.MaxInt64-Margin {
		d = math.MaxInt64 - Margin
	}
	return max(d+Margin, time.Millisecond)
}

// Driver runs memory stressors. It implements the agent's Driver and
// SelfExpiring interfaces; all methods are safe for concurrent use.
type Driver struct {
	cfg   Config
	lg    *zap.Logger
	cg    cgroupFS
	cgErr error
	page  int

	mu       sync.Mutex
	children map[int]*child // running stressors started by this Driver
	closed   bool
	wg       sync.WaitGroup // reaper and forker goroutines
}

// child is a stressor this Driver started and reaps.
type child struct {
	pid      int
	start    uint64
	faultID  string
	cgroup   string
	cmd      *exec.Cmd
	lifeline *os.File // write end of the stressor's stdin
	started  chan struct{}
	eof      chan struct{} // its output ended: it exited
	done     chan struct{}
	// placed is closed when Apply is done with the PID; the reaper waits
	// for it before reaping, so the PID cannot be reused while Apply reads
	// its start time and moves it into the cgroup.
	placed     chan struct{}
	placedOnce sync.Once
	allocated  atomic.Uint64
	killed     atomic.Bool // by this Driver
	tail       []string    // last lines that were not progress reports
	exit       string      // set before done is closed
}

// state is the driver's ledger state: Prepare fills the target, Apply adds
// the process identity.
type state struct {
	FaultID       string `json:"faultId"`
	Cgroup        string `json:"cgroup"`
	CgroupVersion int    `json:"cgroupVersion"`
	LimitBytes    uint64 `json:"limitBytes"`
	LimitSource   string `json:"limitSource"` // "cgroup <path>" or "node"
	TargetBytes   uint64 `json:"targetBytes"`
	// PodCgroup is the pod's cgroup (pod-scoped faults). The stressor then
	// runs in Cgroup, a leaf the driver creates inside it (LeafCgroup):
	// its memory counts against the pod's limit, it joins no container's
	// cgroup (no container OOM group takes the workload with it), and v2's
	// no-internal-processes rule is kept. Revert removes the leaf.
	PodCgroup   string  `json:"podCgroup,omitempty"`
	LeafCgroup  bool    `json:"leafCgroup,omitempty"`
	RampSeconds float64 `json:"rampSeconds,omitempty"`
	PID         int     `json:"pid,omitempty"`
	// StartTime is field 22 of /proc/PID/stat (clock ticks after boot):
	// with BootID it names the process, not just the PID.
	StartTime uint64 `json:"startTime,omitempty"`
	BootID    string `json:"bootId,omitempty"`
}

// New builds a driver. A missing memory cgroup is not an error here:
// Probe reports it, and Prepare and Apply refuse.
func New(cfg Config, lg *zap.Logger) (*Driver, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("memory driver: find own executable: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Owner == "" {
		cfg.Owner = "chaosd-agent"
	}
	if strings.ContainsAny(cfg.Owner, "\x00\n") {
		return nil, fmt.Errorf("memory driver: invalid owner %q", cfg.Owner)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = 5 * time.Second
	}
	drv, err := kubepod.ParseDriver(string(cfg.CgroupDriver))
	if err != nil {
		return nil, fmt.Errorf("memory driver: %w", err)
	}
	cfg.CgroupDriver = drv
	d := &Driver{cfg: cfg, lg: lg, page: os.Getpagesize(), children: map[int]*child{}}
	d.cg, d.cgErr = detectCgroup(cfg.CgroupRoot)
	return d, nil
}

// Kind returns agentapi.KindMemory.
func (d *Driver) Kind() agentapi.Kind { return agentapi.KindMemory }

// NodeBound reports that a memory fault lives only on this node (a
// stressor process and, for a pod, a leaf cgroup): a crash of the node
// ends it.
func (d *Driver) NodeBound() bool { return true }

// CgroupRoot and CgroupVersion report the detected hierarchy (0 if none).
func (d *Driver) CgroupRoot() string { return d.cg.Root }

// CgroupVersion is 1 or 2, or 0 when no memory cgroup was found.
func (d *Driver) CgroupVersion() int { return d.cg.Version }

// Probe reports whether this node can run memory faults.
func (d *Driver) Probe(context.Context) error {
	if !supported {
		return errors.New("the memory fault needs Linux")
	}
	if d.cgErr != nil {
		return d.cgErr
	}
	if err := d.cg.probe(); err != nil {
		return err
	}
	if _, err := os.Stat(d.cfg.Exe); err != nil {
		return fmt.Errorf("stressor executable: %w", err)
	}
	if _, err := d.memTotal(); err != nil {
		return err
	}
	return nil
}

func (d *Driver) memTotal() (uint64, error) {
	data, err := os.ReadFile(filepath.Join(d.cfg.ProcRoot, "meminfo"))
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	return parseMemTotal(data)
}

func (d *Driver) bootID() string {
	data, _ := os.ReadFile(filepath.Join(d.cfg.ProcRoot, "sys/kernel/random/boot_id"))
	return strings.TrimSpace(string(data))
}

// Prepare validates the fault, checks the target cgroup and computes the
// target size from the limit it has now; nothing is changed.
func (d *Driver) Prepare(_ context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	st, err := d.plan(*f)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

func (d *Driver) plan(f agentapi.Fault) (state, error) {
	if err := validate(f.Memory); err != nil {
		return state{}, err
	}
	if d.cgErr != nil {
		return state{}, d.cgErr
	}
	m := f.Memory
	st := state{FaultID: f.ID, Cgroup: m.Cgroup, CgroupVersion: d.cg.Version, RampSeconds: m.RampSeconds}
	limitAt := m.Cgroup
	if f.Pod != nil && m.Cgroup == "" {
		if err := kubepod.ValidatePod(f.Pod); err != nil {
			return state{}, err
		}
		pod, err := kubepod.FindPodCgroup(d.cg.hierarchy(), d.cfg.CgroupDriver, *f.Pod)
		if err != nil {
			return state{}, fmt.Errorf("pod: %w", err)
		}
		if err := d.cg.checkPod(pod); err != nil {
			return state{}, err
		}
		st.PodCgroup, st.Cgroup, st.LeafCgroup = pod, path.Join(pod, d.leafName(f.ID)), true
		limitAt = pod
	} else if err := d.cg.checkTarget(m.Cgroup); err != nil {
		return state{}, err
	}
	total, err := d.memTotal()
	if err != nil {
		return state{}, err
	}
	limit, source, err := d.cg.effectiveLimit(limitAt, total)
	if err != nil {
		return state{}, err
	}
	target, err := targetBytes(m, limit, total, d.page)
	if err != nil {
		return state{}, err
	}
	st.LimitBytes, st.LimitSource, st.TargetBytes = limit, source, target
	return st, nil
}

// leafPrefix starts the names of the leaf cgroups this driver's owner
// creates in pods' cgroups.
func (d *Driver) leafPrefix() string {
	h := fnv.New32a()
	h.Write([]byte(d.cfg.Owner))
	return fmt.Sprintf("%smem-%08x-", kubepod.OwnPrefix, h.Sum32())
}

// leafName is the stressor's leaf cgroup of a fault: the owner's prefix,
// the fault ID with characters outside [A-Za-z0-9_.] replaced (cut to 40)
// and a hash of the raw ID, so distinct faults never share a leaf.
func (d *Driver) leafName(faultID string) string {
	var b strings.Builder
	for _, r := range faultID {
		if b.Len() >= 40 {
			break
		}
		if r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	h := fnv.New32a()
	h.Write([]byte(faultID))
	return fmt.Sprintf("%s%s-%08x", d.leafPrefix(), b.String(), h.Sum32())
}

func (d *Driver) parseState(f agentapi.Fault, raw json.RawMessage) state {
	var st state
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &st) // a bad state still reverts by fault ID
	}
	if st.FaultID == "" {
		st.FaultID = f.ID
	}
	return st
}

// Apply starts the stressor in the target cgroup. It is placed there
// before it allocates anything of the target (cgroup v2: cloned into the
// cgroup; v1: its PID is written to cgroup.procs before it gets the go
// byte), and Apply returns once it has mapped its memory. The stressor
// holds its own deadline from the go byte: the fault's lease (never past
// its deadline) plus Margin, moved by each Renew. The returned state adds
// its PID, start time and the boot ID. When ctx ends before the stressor
// reported it started, Apply kills it and fails. A fault without a
// deadline and a lease is refused: the stressor must hold one.
func (d *Driver) Apply(ctx context.Context, f agentapi.Fault, raw json.RawMessage) (json.RawMessage, error) {
	if f.Deadline.IsZero() || !(f.LeaseSeconds > 0) {
		return nil, errors.New("memory: the fault needs a deadline and a lease (the stressor holds its own)")
	}
	until := agentapi.LeaseEnd(time.Now(), f.Deadline, f.LeaseSeconds)
	st := d.parseState(f, raw)
	if st.PID > 0 && d.alive(st) {
		return json.Marshal(st) // already running
	}
	if st.TargetBytes == 0 {
		var err error
		if st, err = d.plan(f); err != nil {
			return nil, err
		}
	} else if d.cgErr != nil {
		return nil, d.cgErr
	} else if st.LeafCgroup {
		if err := d.cg.checkPod(st.PodCgroup); err != nil {
			return nil, fmt.Errorf("pod: %w", err)
		}
	} else if err := d.cg.checkTarget(st.Cgroup); err != nil {
		return nil, err
	}
	if st.LeafCgroup {
		if err := os.Mkdir(d.cg.Dir(st.Cgroup), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create the stressor's cgroup in the pod's: %w", err)
		}
	}
	c, err := d.start(ctx, st, until)
	if err != nil {
		if st.LeafCgroup {
			if rerr := d.removeLeaf(ctx, st); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return nil, err
	}
	st.PID, st.StartTime, st.BootID = c.pid, c.start, d.bootID()
	d.lg.Info("memory fault applied",
		zap.String("run", f.RunID), zap.String("fault", f.ID), zap.String("cgroup", st.Cgroup),
		zap.Int("pid", c.pid), zap.Uint64("targetBytes", st.TargetBytes),
		zap.Float64("rampSeconds", st.RampSeconds), zap.String("limitSource", st.LimitSource))
	return json.Marshal(st)
}

func (d *Driver) args(st state, lease time.Duration) []string {
	a := append([]string{}, d.cfg.ArgPrefix...)
	return append(a,
		markerArg,
		ownerFlag+d.cfg.Owner,
		faultIDFlag+st.FaultID,
		"--size="+strconv.FormatUint(st.TargetBytes, 10),
		"--ramp-seconds="+strconv.FormatFloat(st.RampSeconds, 'g', -1, 64),
		"--parent="+strconv.Itoa(os.Getpid()),
		"--lease-ms="+strconv.FormatInt(max(lease.Milliseconds(), 1), 10),
	)
}

// start runs one stressor and waits until it reports it started, or ctx
// ends. Its own deadline is until plus Margin.
func (d *Driver) start(ctx context.Context, st state, until time.Time) (c *child, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errors.New("memory driver closed")
	}
	dir := d.cg.Dir(st.Cgroup)
	cgFD := -1
	if d.cg.Version == 2 {
		if cgFD, err = openDir(dir); err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
		}
		defer closeFD(cgFD)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stressor stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("stressor stdout pipe: %w", err)
	}
	newCmd := func(fd int) *exec.Cmd {
		cmd := exec.Command(d.cfg.Exe, d.args(st, selfTimeout(time.Now(), until))...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
		cmd.SysProcAttr = sysProcAttr(fd)
		return cmd
	}
	done := make(chan struct{})
	res := make(chan forked, 1)
	d.wg.Add(1)
	go d.fork(newCmd, cgFD, dir, res, done)
	r := <-res
	inR.Close()
	outW.Close()
	if r.err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start stressor %s: %w", d.cfg.Exe, r.err)
	}
	cmd := r.cmd
	c = &child{pid: cmd.Process.Pid, faultID: st.FaultID, cgroup: st.Cgroup, cmd: cmd, lifeline: inW,
		started: make(chan struct{}), eof: make(chan struct{}), done: done, placed: make(chan struct{})}
	// release must not read the named result c: a failing return has set
	// it to nil by the time deferred calls run.
	ch := c
	release := func() { ch.placedOnce.Do(func() { close(ch.placed) }) }
	defer release()
	d.mu.Lock()
	d.children[c.pid] = c
	d.mu.Unlock()
	d.wg.Add(1)
	go d.reap(c, outR)

	fail := func(err error) (*child, error) {
		release()
		// The kill must be waited for even when ctx has ended: a fresh
		// bound, KillTimeout.
		d.stop(context.Background(), c)
		if len(c.tail) > 0 {
			err = fmt.Errorf("%w (stressor said: %s)", err, strings.Join(c.tail, "; "))
		}
		return nil, err
	}
	ps, err := readStat(d.cfg.ProcRoot, c.pid)
	if err != nil {
		return fail(fmt.Errorf("read stressor start time: %w", err))
	}
	d.mu.Lock()
	c.start = ps.StartTime
	d.mu.Unlock()
	if r.placeErr != nil {
		return fail(r.placeErr)
	}
	// Membership through the target's cgroup.procs, not /proc/PID/cgroup:
	// that path is relative to the reader's cgroup namespace root.
	if !kubepod.InCgroup(dir, c.pid) {
		return fail(fmt.Errorf("stressor %d is not in %s after being placed there (is %s the host's cgroup filesystem?)", c.pid, dir, d.cg.Root))
	}
	// The go byte, and the deadline as of now (the argument's counted from
	// before the fork).
	if _, err := inW.Write(append([]byte{goByte}, renewLine(selfTimeout(time.Now(), until))...)); err != nil {
		return fail(fmt.Errorf("start stressor %d: %w", c.pid, err))
	}
	select {
	case <-c.started:
		return c, nil
	case <-c.eof:
		release()
		select {
		case <-c.done:
		case <-time.After(d.cfg.KillTimeout):
		}
		return fail(fmt.Errorf("stressor %d exited before it started: %s", c.pid, c.exit))
	case <-time.After(d.cfg.StartTimeout):
		return fail(fmt.Errorf("stressor %d did not start within %s", c.pid, d.cfg.StartTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("stressor %d: start abandoned: %w", c.pid, ctx.Err()))
	}
}

// forked is what fork reports.
type forked struct {
	cmd      *exec.Cmd
	err      error // the stressor could not be started
	placeErr error // started, but not moved into its cgroup
}

// fork starts the stressor from a goroutine locked to its OS thread for
// as long as the stressor lives (until done is closed, once it has been
// reaped), then lets that thread end. PDEATHSIG fires when the forking
// *thread* exits: a pooled thread could be taken and ended by any
// goroutine that locks a thread and exits, killing a live stressor; this
// one only ends once the stressor is gone.
//
// With Config.CgroupNS the thread first joins that cgroup namespace (the
// host's): from a container's own cgroup namespace (cgroup v2, the
// containerd default) the kernel refuses to place a process in a cgroup
// outside it, as pods' cgroups are. The stressor inherits it.
//
// The stressor is cloned straight into the cgroup (cgroupFD >= 0, v2), or
// its PID is written to dir's cgroup.procs here, on the same thread.
func (d *Driver) fork(newCmd func(int) *exec.Cmd, cgroupFD int, dir string, res chan<- forked, done <-chan struct{}) {
	defer d.wg.Done()
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	if d.cfg.CgroupNS != "" {
		if err := setCgroupNS(d.cfg.CgroupNS); err != nil {
			res <- forked{err: fmt.Errorf("join cgroup namespace %s: %w", d.cfg.CgroupNS, err)}
			return
		}
	}
	cmd, placed := newCmd(cgroupFD), cgroupFD >= 0
	err := cmd.Start()
	if err != nil && placed && cloneIntoCgroupUnsupported(err) {
		cmd, placed = newCmd(-1), false
		err = cmd.Start()
	}
	if err != nil {
		if placed && errors.Is(err, syscall.ENOENT) {
			err = fmt.Errorf("%w (cloning it into %s was refused: the cgroup is gone, or outside the agent's cgroup namespace: give the agent the host's, e.g. --cgroupns=/proc/1/ns/cgroup with the host's PID namespace)", err, dir)
		}
		res <- forked{err: err}
		return
	}
	var placeErr error
	if !placed {
		procs := filepath.Join(dir, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			placeErr = fmt.Errorf("move stressor %d into %s: %w", cmd.Process.Pid, procs, err)
			if errors.Is(err, syscall.ENOENT) {
				placeErr = fmt.Errorf("%w (the cgroup is gone, or outside the agent's cgroup namespace: give the agent the host's, e.g. --cgroupns=/proc/1/ns/cgroup)", placeErr)
			}
		}
	}
	res <- forked{cmd: cmd, placeErr: placeErr}
	<-done
}

// reap reads the stressor's reports until it exits, then waits for it so
// no zombie remains.
func (d *Driver) reap(c *child, out *os.File) {
	defer d.wg.Done()
	sc := bufio.NewScanner(out)
	startedOnce := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var n uint64
		if len(f) == 2 {
			n, _ = strconv.ParseUint(f[1], 10, 64)
		}
		switch {
		case len(f) == 2 && f[0] == "started" && !startedOnce:
			startedOnce = true
			close(c.started)
		case len(f) == 2 && f[0] == "allocated":
			c.allocated.Store(n)
		case len(f) == 2 && f[0] == "holding":
			c.allocated.Store(n)
			d.lg.Info("memory stressor reached its target", zap.String("fault", c.faultID),
				zap.Int("pid", c.pid), zap.Uint64("bytes", n))
		default:
			if !startedOnce && len(c.tail) < 5 {
				c.tail = append(c.tail, sc.Text())
			}
			d.lg.Warn("memory stressor output", zap.String("fault", c.faultID),
				zap.Int("pid", c.pid), zap.String("line", sc.Text()))
		}
	}
	out.Close()
	close(c.eof)
	<-c.placed
	err := c.cmd.Wait()
	c.lifeline.Close()
	c.exit = "exited"
	if err != nil {
		c.exit = err.Error()
	}
	d.mu.Lock()
	delete(d.children, c.pid)
	d.mu.Unlock()
	fields := []zap.Field{zap.String("fault", c.faultID), zap.Int("pid", c.pid),
		zap.String("exit", c.exit), zap.Uint64("allocatedBytes", c.allocated.Load())}
	if c.cmd.ProcessState.ExitCode() == exitExpired {
		d.lg.Warn("memory stressor's own deadline passed without a renewal; it freed its memory and exited", fields...)
	} else if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() &&
		ws.Signal() == syscall.SIGKILL && !c.killed.Load() {
		// Not our kill: almost always the OOM killer of the target cgroup.
		if n, ok := d.cg.oomKills(c.cgroup); ok {
			fields = append(fields, zap.Uint64("cgroupOOMKills", n))
		}
		d.lg.Warn("memory stressor killed by someone else (OOM kill in its cgroup?); the fault stays active but holds no memory", fields...)
	} else {
		d.lg.Info("memory stressor exited", fields...)
	}
	close(c.done)
}

// stop kills a child of ours and waits for its reaper, at most
// KillTimeout or until ctx ends.
func (d *Driver) stop(ctx context.Context, c *child) error {
	c.killed.Store(true)
	_ = c.cmd.Process.Signal(syscall.SIGKILL) // pidfd-backed: never hits a reused PID
	c.lifeline.Close()
	select {
	case <-c.done:
		return nil
	case <-time.After(d.cfg.KillTimeout):
		return fmt.Errorf("stressor %d did not exit within %s of SIGKILL", c.pid, d.cfg.KillTimeout)
	case <-ctx.Done():
		return fmt.Errorf("stressor %d: wait for exit after SIGKILL: %w", c.pid, ctx.Err())
	}
}

// ownChild returns our running child with this PID and start time.
func (d *Driver) ownChild(pid int, start uint64) *child {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.children[pid]; c != nil && c.start == start {
		return c
	}
	return nil
}

// isStressor says whether pid is, right now, the stressor of faultID with
// this start time (any owner), alive and not a zombie.
func (d *Driver) isStressor(pid int, start uint64, faultID string) bool {
	ps, err := readStat(d.cfg.ProcRoot, pid)
	if err != nil || ps.StartTime != start || ps.State == 'Z' || ps.State == 'X' {
		return false
	}
	cl, err := os.ReadFile(filepath.Join(d.cfg.ProcRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	m, ok := parseMarker(cl)
	return ok && m.FaultID == faultID
}

func (d *Driver) alive(st state) bool {
	if st.BootID != "" && st.BootID != d.bootID() {
		return false
	}
	return d.isStressor(st.PID, st.StartTime, st.FaultID)
}

// kill removes the stressor (pid, start) of faultID if it is still that
// process; anything else, including "gone", is success.
func (d *Driver) kill(ctx context.Context, pid int, start uint64, faultID string) error {
	if c := d.ownChild(pid, start); c != nil {
		return d.stop(ctx, c)
	}
	killed, err := killIf(pid, func() bool { return d.isStressor(pid, start, faultID) })
	if err != nil || !killed {
		return err
	}
	deadline := time.Now().Add(d.cfg.KillTimeout)
	for d.isStressor(pid, start, faultID) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stressor %d did not exit within %s of SIGKILL", pid, d.cfg.KillTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stressor %d: wait for exit after SIGKILL: %w", pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Revert kills the fault's stressor: the recorded PID only if its start
// time and command-line marker still match (a reused PID is never
// signalled), then any other stressor of this owner marked with the
// fault's ID (e.g. one started by an Apply whose state never reached the
// ledger). A process already gone is success.
func (d *Driver) Revert(ctx context.Context, f agentapi.Fault, raw json.RawMessage) error {
	st := d.parseState(f, raw)
	if st.BootID != "" && st.BootID != d.bootID() {
		return nil // rebooted since: nothing of it can be left
	}
	var errs []error
	if st.PID > 0 {
		errs = append(errs, d.kill(ctx, st.PID, st.StartTime, st.FaultID))
	}
	procs, err := d.scan()
	errs = append(errs, err)
	for _, p := range procs {
		if p.FaultID == st.FaultID {
			errs = append(errs, d.kill(ctx, p.pid, p.start, p.FaultID))
		}
	}
	if st.LeafCgroup && errors.Join(errs...) == nil {
		errs = append(errs, d.removeLeaf(ctx, st))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("revert memory fault %s: %w", f.ID, err)
	}
	d.lg.Info("memory fault reverted", zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("cgroup", st.Cgroup), zap.Int("pid", st.PID))
	return nil
}

// Remaining names the fault's stressor processes still alive (zombies
// count as gone: their memory is freed). A stressor the OOM killer took is
// gone too.
func (d *Driver) Remaining(_ context.Context, f agentapi.Fault, raw json.RawMessage) (string, error) {
	st := d.parseState(f, raw)
	var left []string
	seen := map[int]bool{}
	if st.PID > 0 && d.alive(st) {
		left = append(left, fmt.Sprintf("memory stressor pid %d", st.PID))
		seen[st.PID] = true
	}
	procs, err := d.scan()
	for _, p := range procs {
		if p.FaultID == st.FaultID && !seen[p.pid] {
			left = append(left, fmt.Sprintf("memory stressor pid %d", p.pid))
		}
	}
	if st.LeafCgroup && d.isLeaf(st.Cgroup) && (st.BootID == "" || st.BootID == d.bootID()) {
		if _, serr := os.Stat(d.cg.Dir(st.Cgroup)); serr == nil {
			left = append(left, "cgroup "+st.Cgroup)
		}
	}
	return strings.Join(left, ", "), err
}

// SelfExpiry says a memory fault ends by itself: the stressor exits
// Margin after the lease it was last given.
func (d *Driver) SelfExpiry() (string, time.Duration) {
	return agentapi.SelfExpiryProcess, Margin
}

// Renew moves the stressor's own deadline to until plus Margin, over its
// lifeline. It returns the stressor, or "" when it is gone (OOM-killed,
// killed by someone, or its deadline passed). A live stressor this
// driver did not start (no lifeline: only after a restart of the agent,
// whose recovery reverts it anyway) cannot be renewed: an error.
func (d *Driver) Renew(ctx context.Context, f agentapi.Fault, raw json.RawMessage, until time.Time) (string, error) {
	st := d.parseState(f, raw)
	c := d.ownChild(st.PID, st.StartTime)
	if c == nil {
		left, err := d.Remaining(ctx, f, raw)
		if err != nil || left == "" {
			return "", err
		}
		return "", fmt.Errorf("memory stressor pid %d was not started by this agent process: its own deadline cannot be renewed", st.PID)
	}
	select {
	case <-c.eof:
		return "", nil // it exited
	default:
	}
	wd := time.Now().Add(time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(wd) {
		wd = dl
	}
	_ = c.lifeline.SetWriteDeadline(wd) // a stressor that stopped reading must not hold us
	if _, err := c.lifeline.Write([]byte(renewLine(selfTimeout(time.Now(), until)))); err != nil {
		select {
		case <-c.eof:
			return "", nil // it exited meanwhile
		case <-time.After(100 * time.Millisecond):
		}
		return "", fmt.Errorf("renew memory stressor %d: %w", c.pid, err)
	}
	if !d.alive(st) {
		return "", nil
	}
	return fmt.Sprintf("memory stressor pid %d", c.pid), nil
}

// isLeaf says rel is a leaf cgroup of this driver's owner (so removing it
// can never remove anyone else's cgroup, whatever a ledger says).
func (d *Driver) isLeaf(rel string) bool {
	return rel != "" && strings.HasPrefix(path.Base(rel), d.leafPrefix())
}

// removeLeaf removes the stressor's leaf cgroup; gone already is success.
// A cgroup whose last process just died may still count as populated for
// a moment (EBUSY): it retries until KillTimeout or ctx ends.
func (d *Driver) removeLeaf(ctx context.Context, st state) error {
	if !d.isLeaf(st.Cgroup) {
		return fmt.Errorf("refusing to remove %q: not a stressor cgroup of this agent", st.Cgroup)
	}
	dir := d.cg.Dir(st.Cgroup)
	deadline := time.Now().Add(d.cfg.KillTimeout)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove the stressor's cgroup %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove the stressor's cgroup %s: %w (%w)", dir, err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Prune kills stressors of this owner that no kept fault owns (by fault ID
// or by PID and start time) and returns what it killed.
func (d *Driver) Prune(ctx context.Context, keep []json.RawMessage) ([]string, error) {
	type ident struct {
		pid   int
		start uint64
	}
	keepIDs, keepProcs := map[string]bool{}, map[ident]bool{}
	for _, raw := range keep {
		var st state
		if json.Unmarshal(raw, &st) != nil {
			continue
		}
		if st.FaultID != "" {
			keepIDs[st.FaultID] = true
		}
		if st.PID > 0 {
			keepProcs[ident{st.PID, st.StartTime}] = true
		}
	}
	procs, err := d.scan()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range procs {
		if keepIDs[p.FaultID] || keepProcs[ident{p.pid, p.start}] {
			continue
		}
		if err := d.kill(ctx, p.pid, p.start, p.FaultID); err != nil {
			errs = append(errs, err)
			continue
		}
		d.lg.Info("memory stressor pruned", zap.String("fault", p.FaultID), zap.Int("pid", p.pid))
		removed = append(removed, fmt.Sprintf("memory stressor pid %d (fault %s)", p.pid, p.FaultID))
	}
	// Leaf cgroups of this owner in pods' cgroups that no kept fault owns.
	keepLeaves := map[string]bool{}
	for _, raw := range keep {
		var st state
		if json.Unmarshal(raw, &st) == nil && st.LeafCgroup {
			keepLeaves[st.Cgroup] = true
		}
	}
	for _, leaf := range d.leaves() {
		if keepLeaves[leaf] {
			continue
		}
		if err := d.removeLeaf(ctx, state{Cgroup: leaf}); err != nil {
			errs = append(errs, err)
			continue
		}
		d.lg.Info("memory stressor cgroup pruned", zap.String("cgroup", leaf))
		removed = append(removed, "cgroup "+leaf)
	}
	return removed, errors.Join(errs...)
}

// leaves lists this owner's leaf cgroups under the kubepods roots (pod
// cgroups are two or three levels below a root).
func (d *Driver) leaves() []string {
	if d.cgErr != nil {
		return nil
	}
	var out []string
	var walk func(rel string, depth int)
	walk = func(rel string, depth int) {
		ents, err := os.ReadDir(d.cg.Dir(rel))
		if err != nil {
			return
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			child := path.Join(rel, e.Name())
			if d.isLeaf(child) {
				out = append(out, child)
			} else if depth > 0 && !strings.HasPrefix(e.Name(), kubepod.OwnPrefix) {
				walk(child, depth-1)
			}
		}
	}
	for _, root := range (kubepod.Layout{Driver: kubepod.DriverAuto}).Roots() {
		walk(root, 3)
	}
	return out
}

// Close kills every stressor this Driver still runs (the agent reverts
// faults before closing; this is the backstop) and waits for the reapers.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	var cs []*child
	for _, c := range d.children {
		cs = append(cs, c)
	}
	d.mu.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, d.stop(context.Background(), c))
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

// marked is a live stressor of this owner found in procfs.
type marked struct {
	marker
	pid   int
	start uint64
}

// scan lists live stressors carrying this driver's owner marker.
func (d *Driver) scan() ([]marked, error) {
	ents, err := os.ReadDir(d.cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", d.cfg.ProcRoot, err)
	}
	self := os.Getpid()
	var out []marked
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cl, err := os.ReadFile(filepath.Join(d.cfg.ProcRoot, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		m, ok := parseMarker(cl)
		if !ok || m.Owner != d.cfg.Owner {
			continue
		}
		ps, err := readStat(d.cfg.ProcRoot, pid)
		if err != nil || ps.State == 'Z' || ps.State == 'X' {
			continue
		}
		out = append(out, marked{marker: m, pid: pid, start: ps.StartTime})
	}
	return out, nil
}

// errGone: the process does not exist.
var errGone = errors.New("process gone")

func readStat(procRoot string, pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return procStat{}, errGone
	}
	if err != nil {
		return procStat{}, err
	}
	return parseStat(data)
}
