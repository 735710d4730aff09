package memory

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Stressor protocol, on its stdout (one line each):
//
//	started <targetBytes>   after the go byte, once the mapping exists
//	allocated <bytes>       after each ramp step
//	holding <bytes>         the target is reached; it now sleeps
//
// On stdin it waits for one 'g' byte (the agent writes it once the process
// is in the target cgroup), then treats EOF on stdin as "the agent is gone
// or wants me gone" and exits.
const (
	goByte    = 'g'
	rampTick  = 100 * time.Millisecond
	exitUsage = 2
	exitAlone = 3 // parent gone before PDEATHSIG was armed
	exitAlloc = 4
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
// spread over the ramp, then holds the memory until killed or until stdin
// reaches EOF.
func StressorMain(args []string) int {
	fs := flag.NewFlagSet("agent-stressor", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	isStressor := fs.Bool(markerArg[2:], false, "marks a chaosd memory stressor")
	_ = fs.String(ownerFlag[2:len(ownerFlag)-1], "", "the agent that owns this stressor")
	faultID := fs.String(faultIDFlag[2:len(faultIDFlag)-1], "", "the fault this stressor serves")
	size := fs.Uint64("size", 0, "bytes to allocate and touch")
	ramp := fs.Float64("ramp-seconds", 0, "spread the allocation over this many seconds")
	parent := fs.Int("parent", 0, "PID of the agent that started this stressor")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if !*isStressor || *faultID == "" || *size == 0 || *parent <= 0 || *ramp < 0 {
		fmt.Fprintln(os.Stderr, "agent-stressor: needs", markerArg, faultIDFlag+"ID --size=N --parent=PID")
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
	mem, err := mapAnon(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent-stressor:", err)
		return exitAlloc
	}
	out := bufio.NewWriter(os.Stdout)
	report := func(format string, n uint64) {
		fmt.Fprintf(out, format+"\n", n)
		out.Flush()
	}
	report("started %d", *size)
	go func() {
		io.Copy(io.Discard, in) // lifeline: returns at EOF
		os.Exit(0)
	}()

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
