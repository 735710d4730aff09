// Package deptest checks, in tests, what a package links: a dependency
// fence fails the build's tests when someone imports what a binary or a
// wire package must not carry (netlink in chaosctl, anything but the
// standard library in an API package).
package deptest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type listed struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

// list runs "go list -deps" on pkg (for the host's GOOS/GOARCH and for
// another platform too, so build-tagged files are covered) and returns
// every package it links.
func list(t testing.TB, pkg string, goos string) map[string]listed {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports", pkg)
	if goos != "" {
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pkg, err)
	}
	deps := map[string]listed{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		deps[p.ImportPath] = p
	}
	return deps
}

// Forbid fails t if pkg links any package whose import path starts with
// one of the prefixes.
func Forbid(t testing.TB, pkg string, prefixes ...string) {
	t.Helper()
	for _, goos := range []string{"", "darwin"} {
		for dep := range list(t, pkg, goos) {
			for _, p := range prefixes {
				if dep == p || strings.HasPrefix(dep, p+"/") {
					t.Errorf("%s links %s (GOOS=%s); it must not link %s", pkg, dep, goos, p)
				}
			}
		}
	}
}

// OnlyStd fails t if pkg imports anything but the standard library.
func OnlyStd(t testing.TB, pkg string) {
	t.Helper()
	deps := list(t, pkg, "")
	self, ok := deps[pkg]
	if !ok {
		for _, p := range deps {
			if strings.HasSuffix(p.ImportPath, strings.TrimPrefix(pkg, ".")) {
				self = p
			}
		}
	}
	for dep, p := range deps {
		if !p.Standard && dep != self.ImportPath {
			t.Errorf("%s links %s; a wire package may import only the standard library", pkg, dep)
		}
	}
}
