package main

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// baseFormat changes whenever the layout of the base archive changes, so
// stale cached archives are rebuilt.
const baseFormat = "vmexec-base-1"

// defaultModules are loaded in every guest: what the agent's faults and
// their tests need (qdiscs, classifiers, actions, veth/ifb/dummy links,
// nftables with reject and conntrack) plus xfrm_user so that
// netlink.NewHandle with default protocols works.
var defaultModules = []string{
	"sch_netem", "sch_htb", "sch_prio", "sch_tbf", "sch_fq", "sch_fq_codel", "sch_sfq", "sch_ingress",
	"cls_u32", "cls_basic", "cls_fw", "cls_matchall", "cls_bpf",
	"act_mirred", "act_gact",
	"veth", "ifb", "dummy",
	"nf_tables", "nft_reject", "nft_reject_inet", "nft_ct", "nft_limit", "nft_fib_inet", "nf_conntrack",
	"xfrm_user",
}

// checkStatic fails unless path is an x86-64 ELF without an interpreter:
// the guest has no dynamic loader or libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is built for %s; the VM is x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the VM has no libc: build it with CGO_ENABLED=0 (CGO_ENABLED=0 go test -exec vmexec ..., as hack/vmtest.sh does)", path)
		}
	}
	return nil
}

// busyboxApplets lists the applets' install paths (bin/sh, sbin/ip, …) by
// asking the host's busybox, which is the binary the guest gets.
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	var list []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "bin/busybox" {
			list = append(list, l)
		}
	}
	return list, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ensureBase returns the path of the cached base archive for kernel k,
// busybox and the wanted modules, building it on a miss. It holds busybox
// with its applet links, the modules in load order and their list, and
// /dev/console for the kernel to open before /init runs.
func ensureBase(ctx context.Context, cache string, k kernel, busybox string, modules []string, logf func(string, ...any)) (string, error) {
	bbSum, err := fileSHA256(busybox)
	if err != nil {
		return "", fmt.Errorf("hash busybox: %w", err)
	}
	key := sha256.Sum256([]byte(baseFormat + "\n" + k.Release + "\n" + bbSum + "\n" + strings.Join(modules, ",")))
	out := filepath.Join(cache, "initramfs", k.Release+"-"+hex.EncodeToString(key[:8])+".cpio")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	logf("building base initramfs for %s", k.Release)
	idx, err := loadModuleIndex(k.ModulesDir)
	if err != nil {
		return "", err
	}
	order, missing, err := idx.resolveModules(modules)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		logf("kernel %s has no module %s; skipped", k.Release, strings.Join(missing, ", "))
	}
	applets, err := busyboxApplets(ctx, busybox)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".base-*.cpio")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	w := newCPIOWriter(tmp, 0)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "root", "etc", "mnt", "var"} {
		w.Dir(d, 0o755)
	}
	w.Dir("tmp", 0o1777)
	w.CharDev("dev/console", 0o600, 5, 1)
	w.CharDev("dev/null", 0o666, 1, 3)
	if err := addHostFile(w, "bin/busybox", busybox, 0o755); err != nil {
		return "", err
	}
	for _, a := range applets {
		w.Symlink(a, strings.Repeat("../", strings.Count(a, "/"))+"bin/busybox")
	}
	var list []string
	for _, rel := range order {
		guestRel := path.Join(k.Release, filepath.ToSlash(rel))
		if err := addHostFile(w, "lib/modules/"+guestRel, filepath.Join(k.ModulesDir, rel), 0o644); err != nil {
			return "", err
		}
		list = append(list, guestRel)
	}
	w.Bytes(guestModulesList, 0o644, []byte(strings.Join(list, "\n")+"\n"))
	w.Bytes("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	w.Bytes("etc/group", 0o644, []byte("root:x:0:\n"))
	w.Bytes("etc/hosts", 0o644, []byte("127.0.0.1 localhost vmexec\n::1 localhost\n"))
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("write base initramfs: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

func addHostFile(w *cpioWriter, name, hostPath string, perm fs.FileMode) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return w.File(name, perm, st.Size(), f)
}

// addTree copies the host directory src to dst in the archive: regular
// files, directories and symlinks (other file types are skipped).
func addTree(w *cpioWriter, dst, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return w.Dir(name, info.Mode().Perm())
		case info.Mode().IsRegular():
			return addHostFile(w, name, p, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return w.Symlink(name, target)
		}
		return nil
	})
}

// writeRunArchive writes to out the base archive followed by a second
// archive with /init, the test binary, the extra files (which replace
// base files of the same name, busybox applet links included) and the
// package's testdata/.
func writeRunArchive(out, base string, r guestRun, testBin, pkgDir string, extra []extraFile) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := os.Open(base)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, b)
	b.Close()
	if err != nil {
		return fmt.Errorf("copy base initramfs: %w", err)
	}
	w := newCPIOWriter(f, 1<<24)
	w.Bytes("init", 0o755, []byte(initScript(r)))
	if err := addHostFile(w, r.Argv[0], testBin, 0o755); err != nil {
		return fmt.Errorf("add test binary: %w", err)
	}
	for _, e := range extra {
		st, err := os.Stat(e.Host)
		if err != nil {
			return fmt.Errorf("add extra file: %w", err)
		}
		if err := addHostFile(w, e.Guest, e.Host, st.Mode().Perm()); err != nil {
			return fmt.Errorf("add extra file %s as %s: %w", e.Host, e.Guest, err)
		}
	}
	w.Dir(r.Workdir, 0o755)
	td := filepath.Join(pkgDir, "testdata")
	if st, err := os.Stat(td); err == nil && st.IsDir() {
		if err := addTree(w, path.Join(r.Workdir, "testdata"), td); err != nil {
			return fmt.Errorf("add testdata: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write run initramfs: %w", err)
	}
	return f.Close()
}
