package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseExtraFiles(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []extraFile
		wantErr    string
	}{
		{name: "same path", spec: "/work/bin/chaosd", want: []extraFile{{Host: "/work/bin/chaosd", Guest: "/work/bin/chaosd"}}},
		{name: "mapped, spaces and empty entries", spec: " /usr/sbin/ip=/sbin/ip ,, /usr/bin/prometheus",
			want: []extraFile{{Host: "/usr/sbin/ip", Guest: "/sbin/ip"}, {Host: "/usr/bin/prometheus", Guest: "/usr/bin/prometheus"}}},
		{name: "empty", spec: "", want: nil},
		{name: "relative host", spec: "bin/chaosd", wantErr: "absolute"},
		{name: "relative guest", spec: "/bin/x=x", wantErr: "absolute"},
		{name: "under a guest mount", spec: "/tmp/ci/bin/chaosd", wantErr: "mounts over"},
		{name: "under run", spec: "/x=/run/x", wantErr: "mounts over"},
		{name: "the harness's", spec: "/x=/vmexec/bin/x", wantErr: "vmexec owns"},
		{name: "init", spec: "/x=/init", wantErr: "cannot replace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseExtraFiles(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseExtraFiles(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
		})
	}
}

// hostDynamicExecutable is a dynamically linked executable of the host
// (Debian's /bin/sh, as TestCheckStatic assumes).
func hostDynamicExecutable(t *testing.T) string {
	t.Helper()
	if err := checkStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Skipf("/bin/sh is not a dynamically linked x86-64 executable here: %v", err)
	}
	return "/bin/sh"
}

func TestSharedObjectsOfADynamicExecutable(t *testing.T) {
	sh := hostDynamicExecutable(t)
	objs, err := sharedObjects(sh)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := readELFDeps(sh)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) < 2 || objs[0].Guest != deps.Interp {
		t.Fatalf("want the loader %s first, then libraries; got %+v", deps.Interp, objs)
	}
	libc := false
	for _, o := range objs[1:] {
		if o.Guest != o.Host || !isX8664ELF(o.Host) {
			t.Errorf("library %+v: want an x86-64 ELF file at the same path", o)
		}
		inLoaderDir := false
		for _, d := range loaderDirs {
			inLoaderDir = inLoaderDir || filepath.Dir(o.Guest) == d
		}
		if !inLoaderDir {
			t.Errorf("library %s is in no directory the guest's loader searches (%v)", o.Guest, loaderDirs)
		}
		libc = libc || filepath.Base(o.Guest) == "libc.so.6"
	}
	if !libc {
		t.Errorf("no libc.so.6 among %+v", objs)
	}
}

func TestSharedObjectsOfAStaticExecutable(t *testing.T) {
	if err := checkStatic("/bin/busybox"); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	if _, err := sharedObjects("/bin/busybox"); err != errNotDynamic {
		t.Errorf("static busybox: err = %v, want errNotDynamic", err)
	}
}

func TestFindLibraryRunPathOrigin(t *testing.T) {
	sh := hostDynamicExecutable(t)
	objs, err := sharedObjects(sh)
	if err != nil {
		t.Fatal(err)
	}
	// Any x86-64 shared object will do as the library.
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib", "libexample.so.1")
	copyFile(t, objs[len(objs)-1].Host, lib)
	got, err := findLibrary("libexample.so.1", filepath.Join(dir, "bin", "tool"), []string{"$ORIGIN/../lib"})
	if err != nil || got != lib {
		t.Fatalf("findLibrary = %q, %v; want %q", got, err, lib)
	}
	if _, err := findLibrary("libnowhere-vmexec.so.9", "/bin/tool", nil); err == nil || !strings.Contains(err.Error(), "/bin/tool needs libnowhere-vmexec.so.9") {
		t.Errorf("missing library: err = %v", err)
	}
}

func TestWithSharedObjects(t *testing.T) {
	sh := hostDynamicExecutable(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)

	got, err := withSharedObjects([]extraFile{{Host: sh, Guest: "/opt/sh"}, {Host: script, Guest: "/opt/script.sh"}})
	if err != nil {
		t.Fatal(err)
	}
	byGuest := map[string]string{}
	for i, f := range got {
		byGuest[f.Guest] = f.Host
		if i > 0 && got[i-1].Guest >= f.Guest {
			t.Errorf("not sorted by guest path: %s before %s", got[i-1].Guest, f.Guest)
		}
	}
	deps, _ := readELFDeps(sh)
	if byGuest["/opt/sh"] != sh || byGuest["/opt/script.sh"] != script || byGuest[deps.Interp] != deps.Interp {
		t.Errorf("want the executable, the script and the loader; got %+v", got)
	}
	if n := len(got); n < 4 {
		t.Errorf("want at least one library besides the loader; got %+v", got)
	}

	if _, err := withSharedObjects([]extraFile{{Host: sh, Guest: "/opt/x"}, {Host: script, Guest: "/opt/x"}}); err == nil || !strings.Contains(err.Error(), "would get both") {
		t.Errorf("two files for one guest path: err = %v", err)
	}
	if _, err := withSharedObjects([]extraFile{{Host: dir, Guest: "/opt/d"}}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: err = %v", err)
	}
	if _, err := withSharedObjects([]extraFile{{Host: filepath.Join(dir, "absent"), Guest: "/opt/a"}}); err == nil {
		t.Error("an absent file: no error")
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}
