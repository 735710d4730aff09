package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrLocked means another process holds the data directory's lock.
var ErrLocked = errors.New("another chaosd uses this data directory")

// LockFile is the lock file Lock takes in the data directory.
const LockFile = "chaosd.lock"

// Lock takes an exclusive lock (flock) on dir's lock file, without
// waiting: a second chaosd on the same data directory gets ErrLocked
// and must not start (it would remove the live daemon's socket and write
// its run records). The lock ends with the returned release, or with the
// process.
func Lock(dir string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	// Read-only: flock needs no write access, and an open writable file
	// would keep the file system from being remounted read-only.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f.Close, nil
}
