package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// vm is one boot of the guest.
type vm struct {
	Qemu    string
	Kernel  string
	Initrd  string
	Mem     string
	Result  string // file the guest's second serial port is written to
	Verbose bool   // pass the whole console through, boot noise included
}

func (v vm) args() []string {
	return []string{
		"-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
		"-m", v.Mem, "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-nic", "none", // the guest never gets a network device to the outside
		"-kernel", v.Kernel, "-initrd", v.Initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-serial", "stdio", "-serial", "file:" + v.Result,
	}
}

// guestExitError carries the test binary's non-zero exit status.
type guestExitError struct{ code int }

func (e *guestExitError) Error() string {
	return fmt.Sprintf("guest test binary exited with status %d", e.code)
}

// boot runs the VM until it powers off, streaming the console to stdout,
// and returns the exit status the guest reported on its result port. The
// console never decides the outcome.
func (v vm) boot(ctx context.Context, timeout time.Duration, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.Qemu, v.args()...)
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = 5 * time.Second
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", v.Qemu, err)
	}
	started := time.Now()
	con := &consoleFilter{out: stdout, verbose: v.Verbose}
	copyErr := con.copyFrom(pipe)
	waitErr := cmd.Wait()
	if con.ready && cmd.ProcessState != nil {
		// How long the guest took to boot, and how much of a host core
		// QEMU got: an emulated guest on a busy host runs slow.
		wall := time.Since(started)
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		fmt.Fprintf(stderr, "vmexec: guest booted to /init in %s; the VM ran %s on %s of host CPU (%.0f%% of one core)\n",
			con.readyAt.Sub(started).Round(10*time.Millisecond), wall.Round(100*time.Millisecond),
			cpu.Round(100*time.Millisecond), 100*cpu.Seconds()/wall.Seconds())
	}

	code, resErr := readResult(v.Result)
	if resErr == nil {
		if code != 0 {
			return &guestExitError{code: code}
		}
		return nil
	}
	// No status: explain why, with what the guest printed while booting.
	if !con.ready {
		con.dumpBoot(stderr)
	}
	if q := bytes.TrimSpace(qemuErr.Bytes()); len(q) > 0 {
		fmt.Fprintf(stderr, "vmexec: qemu stderr:\n%s\n", q)
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("guest did not finish within %s (set CHAOSD_VM_TIMEOUT to allow more)", timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case waitErr != nil:
		return fmt.Errorf("qemu failed: %w", waitErr)
	case !con.ready:
		return fmt.Errorf("guest did not boot to /init (no %q on the console); boot log above: %v", guestReadyMarker, resErr)
	case copyErr != nil:
		return fmt.Errorf("read guest console: %w", copyErr)
	}
	return fmt.Errorf("guest reported no exit status (the test binary may have crashed the kernel or run out of memory: try CHAOSD_VM_DMESG=1, CHAOSD_VM_VERBOSE=1 or more CHAOSD_VM_MEM): %v", resErr)
}

var resultRe = regexp.MustCompile(`(?m)^EXIT=(\d+)\r?$`)

// readResult parses the guest's "EXIT=<rc>" line.
func readResult(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read result: %w", err)
	}
	m := resultRe.FindSubmatch(data)
	if m == nil {
		return 0, fmt.Errorf("no EXIT=<status> line in the result port output %q", data)
	}
	code, err := strconv.Atoi(string(m[1]))
	if err != nil || code > 255 {
		return 0, fmt.Errorf("bad exit status %q", m[1])
	}
	return code, nil
}

// kernelLineRe matches printk lines ("[    1.234567] ...").
var kernelLineRe = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)

// consoleFilter passes the test's output through and holds back boot
// noise: everything before the ready marker is kept (bounded) to show on
// failure, and kernel messages after it are dropped.
type consoleFilter struct {
	out     io.Writer
	verbose bool
	ready   bool
	readyAt time.Time // when the ready marker arrived
	boot    bytes.Buffer
}

const maxBootLog = 256 << 10

func (c *consoleFilter) copyFrom(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *consoleFilter) line(line string) {
	text := strings.TrimRight(line, "\r\n")
	if c.verbose {
		if !c.ready && strings.HasSuffix(text, guestReadyMarker) {
			c.ready, c.readyAt = true, time.Now()
		}
		io.WriteString(c.out, line)
		return
	}
	nl := ""
	if strings.HasSuffix(line, "\n") {
		nl = "\n"
	}
	if !c.ready {
		if strings.HasSuffix(text, guestReadyMarker) {
			c.ready, c.readyAt = true, time.Now()
			return
		}
		if c.boot.Len() < maxBootLog {
			c.boot.WriteString(text + nl)
		}
		return
	}
	if kernelLineRe.MatchString(text) {
		return
	}
	io.WriteString(c.out, text+nl)
}

func (c *consoleFilter) dumpBoot(w io.Writer) {
	if c.boot.Len() > 0 {
		fmt.Fprintf(w, "vmexec: guest console before /init was ready:\n%s\n", c.boot.Bytes())
	}
}
