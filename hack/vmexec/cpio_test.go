package main

import (
	"bytes"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

type cpioEntry struct {
	name       string
	mode       uint32
	nlink      uint32
	rmaj, rmin uint32
	data       string
}

// readCPIO parses a newc archive (possibly several concatenated), checking
// the magic and the 4-byte alignment the kernel relies on.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off < len(b) {
		if b[off] == 0 { // padding between concatenated archives
			off++
			continue
		}
		if off%4 != 0 {
			t.Fatalf("header at unaligned offset %d", off)
		}
		if got := string(b[off : off+6]); got != cpioMagic {
			t.Fatalf("offset %d: magic %q", off, got)
		}
		e := cpioEntry{mode: field(1), nlink: field(4), rmaj: field(9), rmin: field(10)}
		size, namesize := int(field(6)), int(field(11))
		nameStart := off + 110
		e.name = string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", e.name)
		}
		dataStart := align(nameStart + namesize)
		e.data = string(b[dataStart : dataStart+size])
		off = align(dataStart + size)
		out = append(out, e)
	}
	return out
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Bytes("/usr/bin/x", 0o755, []byte("hello")))
	must(w.Symlink("bin/sh", "../bin/busybox"))
	must(w.CharDev("dev/console", 0o600, 5, 1))
	must(w.Dir("usr", 0o700)) // already made as a parent: not repeated
	must(w.Bytes("empty", 0o644, nil))
	must(w.Close())

	got := readCPIO(t, buf.Bytes())
	want := []cpioEntry{
		{name: "usr", mode: cpioTypeDir | 0o755, nlink: 2},
		{name: "usr/bin", mode: cpioTypeDir | 0o755, nlink: 2},
		{name: "usr/bin/x", mode: cpioTypeReg | 0o755, nlink: 1, data: "hello"},
		{name: "bin", mode: cpioTypeDir | 0o755, nlink: 2},
		{name: "bin/sh", mode: cpioTypeLnk | 0o777, nlink: 1, data: "../bin/busybox"},
		{name: "dev", mode: cpioTypeDir | 0o755, nlink: 2},
		{name: "dev/console", mode: cpioTypeChr | 0o600, nlink: 1, rmaj: 5, rmin: 1},
		{name: "empty", mode: cpioTypeReg | 0o644, nlink: 1},
		{name: cpioTrailer, nlink: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}
}

func TestCPIOFileShortRead(t *testing.T) {
	w := newCPIOWriter(io.Discard, 0)
	if err := w.File("f", 0o644, 10, strings.NewReader("short")); err == nil {
		t.Fatal("File with a short reader succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed File succeeded")
	}
}

// TestCPIOReadableByCpio cross-checks the format with an independent
// reader when the host has one (busybox cpio or GNU cpio).
func TestCPIOReadableByCpio(t *testing.T) {
	var cmd []string
	if p, err := exec.LookPath("cpio"); err == nil {
		cmd = []string{p, "-it", "--quiet"}
	} else if err := checkStatic("/bin/busybox"); err == nil {
		cmd = []string{"/bin/busybox", "cpio", "-t"}
	} else {
		t.Skip("no cpio or busybox on this machine to cross-check with")
	}
	var buf bytes.Buffer
	w := newCPIOWriter(&buf, 0)
	w.Bytes("a/b/c.txt", 0o644, []byte("abc"))
	w.Symlink("a/l", "b")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin = &buf
	out, err := c.Output() // the block count goes to stderr
	if err != nil {
		t.Fatalf("%v: %v", cmd, err)
	}
	if got, want := strings.Fields(string(out)), []string{"a", "a/b", "a/b/c.txt", "a/l"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%v listed %q, want %q", cmd, got, want)
	}
}
