package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// cpioWriter writes a "newc" (SVR4, no checksum) cpio archive, the format
// the kernel unpacks as an initramfs. Parent directories are created on
// demand, so entries may be added in any order. Archives written by
// separate cpioWriters may be concatenated: the kernel unpacks each in turn
// and later entries replace earlier files of the same name.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
	// mode bits of the file type, as the kernel's stat.h has them
	cpioTypeReg  = 0o100000
	cpioTypeDir  = 0o040000
	cpioTypeLnk  = 0o120000
	cpioTypeChr  = 0o020000
	cpioPermMask = 0o7777
)

// firstIno lets a second archive use inode numbers that do not collide
// with the first's (the kernel only compares them for hard links, which
// these archives never have, but distinct numbers keep tools like cpio -t
// honest).
func newCPIOWriter(w io.Writer, firstIno uint32) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: firstIno, dirs: map[string]bool{".": true, "": true}}
}

// cleanName turns "/a/b/" or "a//b" into "a/b".
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// Dir adds a directory and any missing parents.
func (c *cpioWriter) Dir(name string, perm fs.FileMode) error {
	name = cleanName(name)
	if c.dirs[name] {
		return c.err
	}
	if err := c.Dir(path.Dir(name), 0o755); err != nil {
		return err
	}
	c.dirs[name] = true
	return c.header(name, cpioTypeDir|uint32(perm&cpioPermMask), 2, 0, 0, 0)
}

// File adds a regular file of exactly size bytes read from r.
func (c *cpioWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	name = cleanName(name)
	if err := c.Dir(path.Dir(name), 0o755); err != nil {
		return err
	}
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: %s: size %d does not fit the newc format", name, size)
	}
	if err := c.header(name, cpioTypeReg|uint32(perm&cpioPermMask), 1, uint32(size), 0, 0); err != nil {
		return err
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("cpio: %s: wrote %d of %d bytes: %w", name, n, size, err)
		return c.err
	}
	return c.pad(size)
}

// Bytes adds a regular file holding data.
func (c *cpioWriter) Bytes(name string, perm fs.FileMode, data []byte) error {
	return c.File(name, perm, int64(len(data)), bytes.NewReader(data))
}

// Symlink adds a symbolic link name → target.
func (c *cpioWriter) Symlink(name, target string) error {
	name = cleanName(name)
	if err := c.Dir(path.Dir(name), 0o755); err != nil {
		return err
	}
	if err := c.header(name, cpioTypeLnk|0o777, 1, uint32(len(target)), 0, 0); err != nil {
		return err
	}
	if _, err := io.WriteString(c.w, target); err != nil {
		c.err = err
		return err
	}
	return c.pad(int64(len(target)))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	name = cleanName(name)
	if err := c.Dir(path.Dir(name), 0o755); err != nil {
		return err
	}
	return c.header(name, cpioTypeChr|uint32(perm&cpioPermMask), 1, 0, major, minor)
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *cpioWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	c.ino = 0
	if err := c.header(cpioTrailer, 0, 1, 0, 0, 0); err != nil {
		return err
	}
	return c.w.Flush()
}

func (c *cpioWriter) header(name string, mode, nlink, size, rmajor, rminor uint32) error {
	if c.err != nil {
		return c.err
	}
	ino := uint32(0)
	if name != cpioTrailer {
		c.ino++
		ino = c.ino
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
	h := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cpioMagic, ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := io.WriteString(c.w, h+name+"\x00"); err != nil {
		c.err = err
		return err
	}
	return c.pad(int64(len(h) + len(name) + 1))
}

// pad writes zeros up to the next multiple of four after n bytes.
func (c *cpioWriter) pad(n int64) error {
	if c.err != nil {
		return c.err
	}
	if r := n % 4; r != 0 {
		if _, err := c.w.Write(make([]byte, 4-r)); err != nil {
			c.err = err
			return err
		}
	}
	return nil
}
