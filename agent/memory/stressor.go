package memory

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stressor protocol, on its stdout (one line each):
//
//	started <targetBytes>   after the go byte, once the mapping exists
//	allocated <bytes>       after each ramp step
//	holding <bytes>         the target is reached; it now sleeps
//	expired <ms>            no renewal came for its lease: it exits (5)
//
// On stdin it waits for one 'g' byte (the agent writes it once the process
// is in the target cgroup). From then on it holds its own deadline, set
// to --lease-ms from the go byte, and the agent renews it with lines
//
//	renew <ms>              the deadline is now <ms> milliseconds from now
//
// (the first right after the go byte). When the deadline passes without a
// renewal it exits, and its memory is freed with it. EOF on stdin means
// "the agent is gone or wants me gone": it exits at once.
const (
	goByte      = 'g'
	renewWord   = "renew"
	rampTick    = 100 * time.Millisecond
	exitUsage   = 2
	exitAlone   = 3 // parent gone before PDEATHSIG was armed
	exitAlloc   = 4
	exitExpired = 5 // its own deadline passed without a renewal
)

// StressorMain is the entry point of the agent's hidden stressor mode
// (`chaosd agent-stressor ...`); args are the arguments after the mode's
// name, as the driver built them. It returns the process exit status.
//
// It arms PR_SET_PDEATHSIG=SIGKILL and checks its parent is still the
// agent, raises its own oom_score_adj to 1000 (so that, inside the target
// cgroup, the kernel's OOM killer prefers it to the workload), waits for
// the go byte on stdin, maps the target size of anonymous memory
// (MADV_NOHUGEPAGE) and writes one byte per page, in steps every 100 ms
// spread over the ramp, then holds the memory until killed, until stdin
// reaches EOF, or until its own deadline passes without a renewal.
func StressorMain(args []string) int {
	fs := flag.NewFlagSet("agent-stressor", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	isStressor := fs.Bool(markerArg[2:], false, "marks a chaosd memory stressor")
	_ = fs.String(ownerFlag[2:len(ownerFlag)-1], "", "the agent that owns this stressor")
	faultID := fs.String(faultIDFlag[2:len(faultIDFlag)-1], "", "the fault this stressor serves")
	size := fs.Uint64("size", 0, "bytes to allocate and touch")
	ramp := fs.Float64("ramp-seconds", 0, "spread the allocation over this many seconds")
	parent := fs.Int("parent", 0, "PID of the agent that started this stressor")
	leaseMs := fs.Int64("lease-ms", 0, "exit this many milliseconds after the go byte unless renewed")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if !*isStressor || *faultID == "" || *size == 0 || *parent <= 0 || *ramp < 0 || *leaseMs <= 0 {
		fmt.Fprintln(os.Stderr, "agent-stressor: needs", markerArg, faultIDFlag+"ID --size=N --parent=PID --lease-ms=N")
		return exitUsage
	}
	if err := stressorPrelude(*parent); err != nil {
		fmt.Fprintln(os.Stderr, "agent-stressor:", err)
		return exitAlone
	}
	// Best effort: an unprivileged process may always raise its own score.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)

	in := bufio.NewReader(os.Stdin)
	if b, err := in.ReadByte(); err != nil || b != goByte {
		return 0 // the agent gave up before placing us
	}
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	report := func(format string, n uint64) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format+"\n", n)
		out.Flush()
	}
	// The lifeline: renewals move the deadline, EOF ends us at once.
	renewals := make(chan time.Duration)
	go func() {
		for {
			line, err := in.ReadString('\n')
			if err != nil {
				os.Exit(0) // EOF: the agent is gone, or closed it to end us
			}
			if d, ok := parseRenew(line); ok {
				renewals <- d
			}
		}
	}()
	go holdDeadline(time.Duration(*leaseMs)*time.Millisecond, renewals, func(d time.Duration) {
		report("expired %d", uint64(d.Milliseconds()))
		os.Exit(exitExpired) // the kernel frees the memory with the process
	})

	mem, err := mapAnon(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent-stressor:", err)
		return exitAlloc
	}
	report("started %d", *size)

	page := uint64(os.Getpagesize())
	start := time.Now()
	var done uint64
	for done < *size {
		want := *size
		if *ramp > 0 {
			if frac := time.Since(start).Seconds() / *ramp; frac < 1 {
				want = uint64(frac*float64(*size)) / page * page
			}
		}
		for ; done < want; done += page {
			mem[done] = 0xA5
		}
		if done < *size {
			report("allocated %d", done)
			time.Sleep(rampTick)
		}
	}
	report("holding %d", min(done, *size))
	for {
		time.Sleep(time.Hour)
	}
}

// holdDeadline calls expire once lease passes without a renewal; each
// renewal sets the time left anew. expire gets the lease last set.
func holdDeadline(lease time.Duration, renewals <-chan time.Duration, expire func(time.Duration)) {
	t := time.NewTimer(lease)
	for {
		select {
		case d := <-renewals:
			t.Stop()
			lease = d
			t.Reset(d)
		case <-t.C:
			expire(lease)
			return
		}
	}
}

// parseRenew reads a "renew <ms>" line.
func parseRenew(line string) (time.Duration, bool) {
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != renewWord {
		return 0, false
	}
	ms, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || ms <= 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// renewLine is the line that sets a stressor's deadline d from now.
func renewLine(d time.Duration) string {
	return fmt.Sprintf("%s %d\n", renewWord, max(d.Milliseconds(), 1))
}
