package main

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// extraFile is a host file copied into the guest for a run
// (CHAOSD_VM_FILES): programs the test starts, such as the lab's binaries
// or Prometheus.
type extraFile struct {
	Host  string // absolute path on the host; symlinks are followed
	Guest string // absolute path in the guest
}

// guestHidden are guest directories /init mounts a file system over (or
// that belong to the harness): a file placed there would be hidden or
// would clash.
var guestHidden = []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/vmexec"}

// parseExtraFiles parses a comma-separated list of HOST or HOST=GUEST
// entries. HOST alone lands at the same path in the guest; HOST=GUEST puts
// it elsewhere, e.g. /usr/sbin/ip=/sbin/ip to shadow busybox's applet,
// which comes first in the guest's PATH.
func parseExtraFiles(spec string) ([]extraFile, error) {
	var out []extraFile
	for _, e := range strings.Split(spec, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		host, guest, mapped := strings.Cut(e, "=")
		if !mapped {
			guest = host
		}
		if !filepath.IsAbs(host) {
			return nil, fmt.Errorf("extra file %q: the host path must be absolute", e)
		}
		if !path.IsAbs(guest) {
			return nil, fmt.Errorf("extra file %q: the guest path must be absolute", e)
		}
		g := path.Clean(guest)
		if g == "/" || g == "/init" {
			return nil, fmt.Errorf("extra file %q: cannot replace %s in the guest", e, g)
		}
		for _, h := range guestHidden {
			if g == h || strings.HasPrefix(g, h+"/") {
				return nil, fmt.Errorf("extra file %q: %s is under %s, which the guest mounts over or vmexec owns; map it elsewhere with HOST=GUEST", e, g, h)
			}
		}
		out = append(out, extraFile{Host: filepath.Clean(host), Guest: g})
	}
	return out, nil
}

// withSharedObjects returns files plus the loader and shared libraries
// of every dynamically linked executable among them (at the paths the
// guest's loader looks in), each guest path once, sorted. Two different
// host files for one guest path are an error.
func withSharedObjects(files []extraFile) ([]extraFile, error) {
	byGuest := map[string]string{}
	add := func(f extraFile) error {
		if h, ok := byGuest[f.Guest]; ok && h != f.Host {
			return fmt.Errorf("guest path %s would get both %s and %s", f.Guest, h, f.Host)
		}
		byGuest[f.Guest] = f.Host
		return nil
	}
	for _, f := range files {
		if err := requireFile(f.Host); err != nil {
			return nil, fmt.Errorf("extra file: %w", err)
		}
		if err := add(f); err != nil {
			return nil, err
		}
		if !isX8664ELF(f.Host) {
			continue // a script or data file
		}
		objs, err := sharedObjects(f.Host)
		if errors.Is(err, errNotDynamic) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("shared libraries of %s: %w", f.Host, err)
		}
		for _, o := range objs {
			if err := add(extraFile{Host: o.Host, Guest: o.Guest}); err != nil {
				return nil, err
			}
		}
	}
	out := make([]extraFile, 0, len(byGuest))
	for g, h := range byGuest {
		out = append(out, extraFile{Host: h, Guest: g})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Guest < out[j].Guest })
	return out, nil
}
