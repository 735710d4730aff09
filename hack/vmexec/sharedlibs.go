package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// loaderDirs are the directories Debian's x86-64 loader searches when
// neither an ld.so.cache (the guest has none) nor a run path names the
// library: `/lib64/ld-linux-x86-64.so.2 --help` lists them as its
// "system search path".
var loaderDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// sharedObject is a file a dynamically linked executable needs at run
// time: Guest is where the guest's loader looks for it, Host the file on
// the host to copy there (symlinks are followed when it is read).
type sharedObject struct {
	Guest, Host string
}

// elfDeps is what one ELF file asks of the loader.
type elfDeps struct {
	Interp  string   // PT_INTERP; "" for static executables and libraries
	Needed  []string // DT_NEEDED
	RunPath []string // DT_RUNPATH, or DT_RPATH when there is no DT_RUNPATH
	Dynamic bool     // has a dynamic section
}

// readELFDeps reads the loader's instructions from an x86-64 ELF file.
func readELFDeps(p string) (elfDeps, error) {
	f, err := elf.Open(p)
	if err != nil {
		return elfDeps{}, err
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return elfDeps{}, fmt.Errorf("%s is built for %s/%s; the VM is x86-64", p, f.Machine, f.Class)
	}
	var d elfDeps
	for _, prog := range f.Progs {
		switch prog.Type {
		case elf.PT_INTERP:
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return elfDeps{}, fmt.Errorf("%s: read PT_INTERP: %w", p, err)
			}
			d.Interp = strings.TrimRight(string(b), "\x00")
		case elf.PT_DYNAMIC:
			d.Dynamic = true
		}
	}
	if !d.Dynamic {
		return d, nil
	}
	if d.Needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return elfDeps{}, fmt.Errorf("%s: read DT_NEEDED: %w", p, err)
	}
	rp, err := f.DynString(elf.DT_RUNPATH)
	if err == nil && len(rp) == 0 {
		rp, err = f.DynString(elf.DT_RPATH)
	}
	if err != nil {
		return elfDeps{}, fmt.Errorf("%s: read run path: %w", p, err)
	}
	for _, s := range rp {
		d.RunPath = append(d.RunPath, strings.Split(s, ":")...)
	}
	return d, nil
}

// isX8664ELF reports whether p is a 64-bit x86-64 ELF file (the loader
// skips libraries of another architecture, say i386 ones in /lib).
func isX8664ELF(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Machine == elf.EM_X86_64 && f.Class == elf.ELFCLASS64
}

// errNotDynamic says an executable needs no loader.
var errNotDynamic = errors.New("not dynamically linked")

// sharedObjects returns the loader and every shared library (transitively)
// the dynamically linked executable exe needs, each at the path the
// guest's loader will look for it: the interpreter at its PT_INTERP path,
// libraries in the first run-path or loader directory that holds them on
// the host. It returns errNotDynamic for static executables. It reads the
// ELF headers only; nothing is executed.
func sharedObjects(exe string) ([]sharedObject, error) {
	d, err := readELFDeps(exe)
	if err != nil {
		return nil, err
	}
	if d.Interp == "" {
		return nil, errNotDynamic
	}
	out := []sharedObject{{Guest: d.Interp, Host: d.Interp}}
	seen := map[string]bool{d.Interp: true}
	type pending struct {
		name, from string // from: the object whose DT_NEEDED names it
		runPath    []string
	}
	var queue []pending
	enqueue := func(obj string, deps elfDeps) {
		for _, n := range deps.Needed {
			queue = append(queue, pending{name: n, from: obj, runPath: deps.RunPath})
		}
	}
	enqueue(exe, d)
	names := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if names[p.name] {
			continue // the loader loads each SONAME once
		}
		names[p.name] = true
		lib, err := findLibrary(p.name, p.from, p.runPath)
		if err != nil {
			return nil, err
		}
		if seen[lib] {
			continue
		}
		seen[lib] = true
		out = append(out, sharedObject{Guest: lib, Host: lib})
		deps, err := readELFDeps(lib)
		if err != nil {
			return nil, err
		}
		enqueue(lib, deps)
	}
	return out, nil
}

// findLibrary resolves a DT_NEEDED name as the loader would without an
// ld.so.cache: a name with a slash is a path; otherwise the run path of
// the object that needs it ($ORIGIN is that object's directory), then the
// loader's system directories.
func findLibrary(name, from string, runPath []string) (string, error) {
	if strings.Contains(name, "/") {
		if isX8664ELF(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s needs %s, which is not an x86-64 ELF file", from, name)
	}
	origin := filepath.Dir(from)
	if real, err := filepath.EvalSymlinks(from); err == nil {
		origin = filepath.Dir(real)
	}
	var dirs []string
	for _, rp := range runPath {
		rp = strings.ReplaceAll(strings.ReplaceAll(rp, "${ORIGIN}", origin), "$ORIGIN", origin)
		if rp != "" {
			dirs = append(dirs, rp)
		}
	}
	dirs = append(dirs, loaderDirs...)
	for _, dir := range dirs {
		p := path.Join(dir, name)
		if isX8664ELF(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s needs %s, found in none of %s", from, name, strings.Join(dirs, ", "))
}

// requireFile fails unless p is a regular file (after symlinks).
func requireFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}
