package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// options are vmexec's settings: flags before the test binary, or
// environment variables.
type options struct {
	Cache     string
	Mem       string
	Timeout   time.Duration
	KernelPkg string   // pin, e.g. linux-image-6.1.0-56-cloud-amd64; empty: current
	Modules   []string // on top of defaultModules
	Files     []extraFile
	Verbose   bool
	Dmesg     bool
	Qemu      string
	Busybox   string
}

const (
	defaultCache   = "/var/cache/chaosd-vm"
	defaultMem     = "1024M"
	defaultTimeout = 10 * time.Minute
	qemuPackage    = "qemu-system-x86 (apt-get install --no-install-recommends qemu-system-x86)"
	busyboxPackage = "busybox-static (apt-get install busybox-static)"
)

// parseOptions reads the environment, then flags from args; it returns the
// test binary's command line.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, []string, error) {
	o := options{
		Cache:     getenv("CHAOSD_VM_CACHE"),
		Mem:       getenv("CHAOSD_VM_MEM"),
		KernelPkg: getenv("CHAOSD_VM_KERNEL"),
		Verbose:   getenv("CHAOSD_VM_VERBOSE") == "1",
		Dmesg:     getenv("CHAOSD_VM_DMESG") == "1",
		Qemu:      "qemu-system-x86_64",
		Busybox:   "/bin/busybox",
	}
	if o.Mem == "" {
		o.Mem = defaultMem
	}
	o.Timeout = defaultTimeout
	if t := getenv("CHAOSD_VM_TIMEOUT"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return o, nil, fmt.Errorf("CHAOSD_VM_TIMEOUT=%q: want a positive duration like 10m", t)
		}
		o.Timeout = d
	}
	modules := getenv("CHAOSD_VM_MODULES")
	files := getenv("CHAOSD_VM_FILES")
	fs := flag.NewFlagSet("vmexec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vmexec [flags] TEST-BINARY [ARGS...]   (as go test -exec)")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Cache, "cache", o.Cache, "cache directory for kernels and initramfs (env CHAOSD_VM_CACHE; default "+defaultCache+" if writable, else the user's cache dir)")
	fs.StringVar(&o.Mem, "mem", o.Mem, "guest memory, as QEMU's -m (env CHAOSD_VM_MEM)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "kill the VM after this long (env CHAOSD_VM_TIMEOUT)")
	fs.StringVar(&o.KernelPkg, "kernel", o.KernelPkg, "kernel package to boot; empty: the current dependency of "+kernelMeta+" (env CHAOSD_VM_KERNEL)")
	fs.StringVar(&modules, "modules", modules, "extra kernel modules to load, comma-separated (env CHAOSD_VM_MODULES)")
	fs.StringVar(&files, "files", files, "host files to copy into the guest, comma-separated HOST or HOST=GUEST paths; dynamically linked executables bring their loader and shared libraries (env CHAOSD_VM_FILES)")
	fs.BoolVar(&o.Verbose, "verbose", o.Verbose, "show the whole guest console, boot and kernel messages included (env CHAOSD_VM_VERBOSE=1)")
	fs.BoolVar(&o.Dmesg, "dmesg", o.Dmesg, "print the guest kernel log after the test (env CHAOSD_VM_DMESG=1)")
	err := fs.Parse(args)
	if err != nil {
		return o, nil, err
	}
	for _, m := range strings.Split(modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Modules = append(o.Modules, m)
		}
	}
	if o.Files, err = parseExtraFiles(files); err != nil {
		return o, nil, fmt.Errorf("CHAOSD_VM_FILES / -files: %w", err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return o, nil, fmt.Errorf("no test binary given")
	}
	timeoutSet := getenv("CHAOSD_VM_TIMEOUT") != ""
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	if t := testTimeout(fs.Args()[1:]); !timeoutSet && t > 0 && t+30*time.Second > o.Timeout {
		// let the test binary's own -test.timeout fire first: its panic
		// shows where the test hung
		o.Timeout = t + 30*time.Second
	}
	return o, fs.Args(), nil
}

// testTimeout returns the test binary's -test.timeout, or 0.
func testTimeout(args []string) time.Duration {
	for i, a := range args {
		a = strings.TrimPrefix(a, "-")
		v, ok := strings.CutPrefix(a, "-test.timeout=")
		if !ok {
			v, ok = strings.CutPrefix(a, "test.timeout=")
		}
		if !ok && (a == "test.timeout" || a == "-test.timeout") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			if d, err := time.ParseDuration(v); err == nil {
				return d
			}
		}
	}
	return 0
}

// defaultCacheDir is /var/cache/chaosd-vm when it is writable (root), else
// the user's cache directory.
func defaultCacheDir() string {
	if err := os.MkdirAll(defaultCache, 0o755); err == nil {
		if f, err := os.CreateTemp(defaultCache, ".probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return defaultCache
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "chaosd-vm")
	}
	return defaultCache
}

// guestEnv is the test binary's environment in the guest: a fixed base
// plus the host's CHAOSD_* (not CHAOSD_VM_*) and Go runtime variables.
func guestEnv(hostEnv []string) map[string]string {
	env := map[string]string{}
	for _, kv := range hostEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "CHAOSD_VM_"):
		case strings.HasPrefix(k, "CHAOSD_"), k == "GODEBUG", k == "GOTRACEBACK", k == "GOMAXPROCS", k == "GOGC", k == "GOMEMLIMIT":
			env[k] = v
		}
	}
	env["CHAOSD_IN_VM"] = "1"
	env["HOME"] = "/root"
	env["USER"] = "root"
	env["PATH"] = "/bin:/sbin:/usr/bin:/usr/sbin"
	env["TMPDIR"] = "/tmp"
	return env
}

// guestArgs drops the arguments that name host files the guest cannot
// write back: go test's -test.testlogfile (used only for its result cache).
func guestArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "-test.testlogfile="), strings.HasPrefix(a, "--test.testlogfile="):
			continue
		case a == "-test.testlogfile" || a == "--test.testlogfile":
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// checkTools fails with the apt package to install when QEMU or a static
// busybox is missing.
func checkTools(o *options) error {
	q, err := exec.LookPath(o.Qemu)
	if err != nil {
		return fmt.Errorf("%s not found: install %s", o.Qemu, qemuPackage)
	}
	o.Qemu = q
	if _, err := os.Stat(o.Busybox); err != nil {
		return fmt.Errorf("%s not found: install %s", o.Busybox, busyboxPackage)
	}
	if err := checkStatic(o.Busybox); err != nil {
		return fmt.Errorf("%s is not a static busybox: install %s", o.Busybox, busyboxPackage)
	}
	return nil
}

// Run runs one test binary in the VM. args are vmexec's own flags, the
// test binary and its arguments.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, cmdline, err := parseOptions(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "vmexec: "+format+"\n", a...) }
	testBin, err := filepath.Abs(cmdline[0])
	if err != nil {
		return err
	}
	if err := checkStatic(testBin); err != nil {
		return err
	}
	if err := checkTools(&o); err != nil {
		return err
	}
	extra, err := withSharedObjects(o.Files)
	if err != nil {
		return err
	}
	pkgDir, err := os.Getwd()
	if err != nil {
		return err
	}

	if o.Cache == "" {
		o.Cache = defaultCacheDir()
	}
	k, base, err := prepare(ctx, o, logf)
	if err != nil {
		return err
	}

	tmp, err := runDir(o.Cache)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := guestRun{
		Workdir:       guestWorkdir(pkgDir),
		Argv:          append([]string{path.Join(guestBinDir, filepath.Base(testBin))}, guestArgs(cmdline[1:])...),
		Env:           guestEnv(os.Environ()),
		DumpKernelLog: o.Dmesg,
	}
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := writeRunArchive(initrd, base, r, testBin, pkgDir, extra); err != nil {
		return err
	}
	v := vm{Qemu: o.Qemu, Kernel: k.Vmlinuz, Initrd: initrd, Mem: o.Mem, Result: filepath.Join(tmp, "result"), Verbose: o.Verbose}
	return v.boot(ctx, o.Timeout, stdout, stderr)
}

// prepare returns the cached kernel and base initramfs, fetching and
// building what is missing under the cache lock.
func prepare(ctx context.Context, o options, logf func(string, ...any)) (kernel, string, error) {
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return kernel{}, "", fmt.Errorf("create cache %s: %w", o.Cache, err)
	}
	unlock, err := lockCache(filepath.Join(o.Cache, ".lock"))
	if err != nil {
		return kernel{}, "", err
	}
	defer unlock()
	pkg, err := currentKernelPackage(ctx, o.Cache, o.KernelPkg)
	if err != nil {
		cached := cachedKernels(o.Cache)
		if len(cached) == 0 {
			return kernel{}, "", fmt.Errorf("find the cloud kernel package: %w", err)
		}
		pkg = "linux-image-" + cached[len(cached)-1]
		logf("cannot ask apt for the current kernel (%v); using cached %s", err, pkg)
	}
	k, err := ensureKernel(ctx, o.Cache, pkg, logf)
	if err != nil {
		return kernel{}, "", err
	}
	base, err := ensureBase(ctx, o.Cache, k, o.Busybox, append(append([]string{}, defaultModules...), o.Modules...), logf)
	if err != nil {
		return kernel{}, "", err
	}
	return k, base, nil
}

// runDir makes the scratch directory of this run under cache/runs, named
// after this process, and removes those left by vmexec processes that were
// killed (go test kills -exec programs on its timeout).
func runDir(cache string) (string, error) {
	runs := filepath.Join(cache, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(runs)
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "run-%d-", &pid); err == nil && pid > 0 && !processAlive(pid) {
			os.RemoveAll(filepath.Join(runs, e.Name()))
		}
	}
	return os.MkdirTemp(runs, fmt.Sprintf("run-%d-", os.Getpid()))
}

// kernelRecheck is how long the resolved name of the current cloud kernel
// is trusted before apt-cache (about a second) is asked again.
const kernelRecheck = 24 * time.Hour

// currentKernelPackage is resolveKernelPackage with the answer remembered
// in the cache for kernelRecheck, so warm runs do not wait for apt.
func currentKernelPackage(ctx context.Context, cache, pin string) (string, error) {
	if pin != "" {
		return resolveKernelPackage(ctx, pin)
	}
	memo := filepath.Join(cache, "current-kernel")
	if st, err := os.Stat(memo); err == nil && time.Since(st.ModTime()) < kernelRecheck {
		if data, err := os.ReadFile(memo); err == nil {
			pkg := strings.TrimSpace(string(data))
			if kernelPkgRe.MatchString(pkg) {
				return pkg, nil
			}
		}
	}
	pkg, err := resolveKernelPackage(ctx, "")
	if err != nil {
		return "", err
	}
	_ = os.WriteFile(memo, []byte(pkg+"\n"), 0o644) // only a memo
	return pkg, nil
}

// guestPkgRoot holds the package directories in the guest. Mirroring the
// host path under it (not at it) keeps a package that lives under /tmp,
// /run or /dev on the host — a CI checkout, say — from being hidden by the
// tmpfs the guest's init mounts there.
const guestPkgRoot = "/vmexec/pkg"

func guestWorkdir(hostDir string) string { return path.Join(guestPkgRoot, hostDir) }
