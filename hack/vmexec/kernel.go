package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// kernelMeta is the Debian package that pulls in the current cloud kernel.
const kernelMeta = "linux-image-cloud-amd64"

// kernel is an unpacked kernel in the cache.
type kernel struct {
	Release    string // e.g. 6.1.0-56-cloud-amd64, the lib/modules directory name
	Vmlinuz    string
	ModulesDir string // lib/modules/<Release>
}

var kernelPkgRe = regexp.MustCompile(`^linux-image-(\d[^\s]*)$`)

// parseAptDepends finds the versioned kernel package in the output of
// `apt-cache depends linux-image-cloud-amd64`.
func parseAptDepends(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.TrimPrefix(f[0], "|") == "Depends:" && kernelPkgRe.MatchString(f[1]) {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no linux-image-<version> dependency in apt-cache output %q", strings.TrimSpace(out))
}

// resolveKernelPackage names the kernel package to use: pin, or the
// current dependency of the cloud meta-package (running apt-get update once
// if apt knows nothing yet).
func resolveKernelPackage(ctx context.Context, pin string) (string, error) {
	if pin != "" {
		if !kernelPkgRe.MatchString(pin) {
			return "", fmt.Errorf("CHAOSD_VM_KERNEL=%q is not a linux-image-<version> package name", pin)
		}
		return pin, nil
	}
	depends := func() (string, error) {
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", kernelMeta).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("apt-cache depends %s: %w: %s", kernelMeta, err, bytes.TrimSpace(out))
		}
		return parseAptDepends(string(out))
	}
	pkg, err := depends()
	if err == nil {
		return pkg, nil
	}
	if out, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
		return "", fmt.Errorf("%v; apt-get update: %w: %s", err, uerr, bytes.TrimSpace(out))
	}
	return depends()
}

// cachedKernels lists the releases already unpacked in the cache, newest
// name last.
func cachedKernels(cache string) []string {
	entries, _ := os.ReadDir(filepath.Join(cache, "kernels"))
	var rels []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(cache, "kernels", e.Name(), "vmlinuz")); err == nil {
			rels = append(rels, e.Name())
		}
	}
	sort.Strings(rels)
	return rels
}

// ensureKernel returns the kernel of package pkg from the cache, fetching
// it with apt-get download and unpacking it with dpkg-deb -x on a miss. The
// kernel is never installed on the host. Only vmlinuz and lib/modules are
// kept.
func ensureKernel(ctx context.Context, cache, pkg string, logf func(string, ...any)) (kernel, error) {
	rel := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(cache, "kernels", rel)
	k := kernel{Release: rel, Vmlinuz: filepath.Join(dir, "vmlinuz"), ModulesDir: filepath.Join(dir, "lib", "modules", rel)}
	if _, err := os.Stat(k.Vmlinuz); err == nil {
		return k, nil
	}
	logf("fetching kernel package %s (apt-get download, not installed)", pkg)
	if err := os.MkdirAll(filepath.Join(cache, "kernels"), 0o755); err != nil {
		return kernel{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(cache, "kernels"), ".fetch-")
	if err != nil {
		return kernel{}, err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads; let it write here.
	_ = os.Chmod(tmp, 0o777)
	dl := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	dl.Dir = tmp
	if out, err := dl.CombinedOutput(); err != nil {
		return kernel{}, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return kernel{}, fmt.Errorf("apt-get download %s: expected one .deb, found %d", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return kernel{}, fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(debs[0]), err, bytes.TrimSpace(out))
	}
	stage := filepath.Join(tmp, "stage")
	if err := os.MkdirAll(filepath.Join(stage, "lib", "modules"), 0o755); err != nil {
		return kernel{}, err
	}
	if err := os.Rename(filepath.Join(root, "boot", "vmlinuz-"+rel), filepath.Join(stage, "vmlinuz")); err != nil {
		return kernel{}, fmt.Errorf("%s has no boot/vmlinuz-%s: %w", pkg, rel, err)
	}
	// Debian moved modules from /lib to /usr/lib in later releases.
	var modErr error
	for _, base := range []string{"lib", "usr/lib"} {
		if modErr = os.Rename(filepath.Join(root, base, "modules", rel), filepath.Join(stage, "lib", "modules", rel)); modErr == nil {
			break
		}
	}
	if modErr != nil {
		return kernel{}, fmt.Errorf("%s has no lib/modules/%s: %w", pkg, rel, modErr)
	}
	if err := os.Rename(stage, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Stat(k.Vmlinuz); serr != nil { // lost no race: a real failure
			return kernel{}, fmt.Errorf("store kernel in cache: %w", err)
		}
	}
	return k, nil
}

// moduleIndex maps module names (with '_', as modinfo's depends= has them)
// to paths relative to the modules directory.
type moduleIndex struct {
	files   map[string]string
	builtin map[string]bool
	deps    func(path string) ([]string, error)
}

func modName(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return strings.ReplaceAll(base, "-", "_")
}

// loadModuleIndex indexes the .ko files under dir and reads modules.builtin.
func loadModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{files: map[string]string{}, builtin: map[string]bool{}}
	idx.deps = func(rel string) ([]string, error) { return koDepends(filepath.Join(dir, rel)) }
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			rel, _ := filepath.Rel(dir, p)
			idx.files[modName(rel)] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	f, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			idx.builtin[modName(line)] = true
		}
	}
	return idx, sc.Err()
}

// koDepends reads depends= from the .modinfo section of a module.
func koDepends(path string) ([]string, error) {
	if !strings.HasSuffix(path, ".ko") {
		return nil, fmt.Errorf("%s: compressed modules are not supported (busybox insmod needs plain .ko)", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := io.ReadAll(sec.Open())
	if err != nil {
		return nil, fmt.Errorf("%s: read .modinfo: %w", path, err)
	}
	return parseModinfoDepends(data), nil
}

// parseModinfoDepends extracts the depends= list from a raw .modinfo
// section (NUL-separated key=value strings).
func parseModinfoDepends(data []byte) []string {
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps
		}
	}
	return nil
}

// resolveModules returns the module files to insmod, dependencies first,
// each once. Modules built into the kernel are skipped. Wanted modules the
// kernel has in neither form are returned in missing; a missing dependency
// is an error.
func (idx *moduleIndex) resolveModules(want []string) (order, missing []string, err error) {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, wanted bool) error
	visit = func(name string, wanted bool) error {
		name = strings.ReplaceAll(name, "-", "_")
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		if idx.builtin[name] {
			state[name] = 2
			return nil
		}
		rel, ok := idx.files[name]
		if !ok {
			if wanted {
				missing = append(missing, name)
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s: dependency not found in the kernel package", name)
		}
		state[name] = 1
		deps, err := idx.deps(rel)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		for _, d := range deps {
			if err := visit(d, false); err != nil {
				return fmt.Errorf("%s needs %w", name, err)
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, w := range want {
		if err := visit(w, true); err != nil {
			return nil, nil, err
		}
	}
	return order, missing, nil
}
