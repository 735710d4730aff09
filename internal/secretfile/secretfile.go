// Package secretfile reads credentials (bearer tokens, private keys) from
// files and refuses files that other users could read or that anyone but
// the owner could change: chaosd and the agent check every token and key
// file at start, so a leaked or swapped credential is caught before it is
// used.
package secretfile

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Unsafe are the permission bits a credential file must not have: read or
// write for others, write for the group. Group read is allowed (a Secret
// mounted with defaultMode 0440 and an fsGroup, or a key in an ssl-cert
// group).
const Unsafe fs.FileMode = 0o006 | 0o020

// Check refuses path when its mode has any Unsafe bit. Symbolic links are
// followed (a Kubernetes Secret volume links each key to a file in a
// hidden directory): the mode checked is the target's.
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&Unsafe != 0 {
		return fmt.Errorf("%s has mode %04o: a credential file must not be readable by others nor writable by anyone but its owner (chmod 600 %s; in Kubernetes set the Secret volume's defaultMode to 0400)", path, m, path)
	}
	return nil
}

// Read checks path (see Check) and returns its content.
func Read(path string) ([]byte, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// ReadToken reads a bearer token: the file's content without surrounding
// white space, which must not be empty.
func ReadToken(path string) (string, error) {
	b, err := Read(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}
