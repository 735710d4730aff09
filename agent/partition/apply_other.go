//go:build !linux

package partition

import "errors"

var errNotLinux = errors.New("partition: nftables needs Linux")

// Applier is unavailable outside Linux.
type Applier struct{}

// NewApplier fails outside Linux.
func NewApplier(string) (*Applier, error) { return nil, errNotLinux }

// Close does nothing.
func (a *Applier) Close() error { return nil }

// Apply fails outside Linux.
func (a *Applier) Apply(Plan) error { return errNotLinux }

// Remove fails outside Linux.
func (a *Applier) Remove(string) error { return errNotLinux }

// Exists fails outside Linux.
func (a *Applier) Exists(string) (bool, error) { return false, errNotLinux }

// ListTagged fails outside Linux.
func (a *Applier) ListTagged() ([]string, error) { return nil, errNotLinux }

// Probe fails outside Linux.
func (a *Applier) Probe() error { return errNotLinux }
