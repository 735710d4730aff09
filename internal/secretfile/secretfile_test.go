package secretfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"owner only", 0o600, true},
		{"owner read", 0o400, true},
		{"group read", 0o640, true},
		{"world readable", 0o644, false},
		{"world writable", 0o602, false},
		{"group writable", 0o620, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "token")
			if err := os.WriteFile(p, []byte(" secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			tok, err := ReadToken(p)
			if tc.ok {
				if err != nil || tok != "secret" {
					t.Fatalf("ReadToken = %q, %v; want secret", tok, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("mode %04o accepted", tc.mode)
			}
			for _, want := range []string{p, fmt.Sprintf("mode %04o", tc.mode)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func TestCheckFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "data")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "token")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Check(link); err == nil || !strings.Contains(err.Error(), "mode 0644") {
		t.Fatalf("Check(link to 0644) = %v; want refused naming mode 0644", err)
	}
}

func TestReadTokenEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadToken(p); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("ReadToken(empty) = %v", err)
	}
}
