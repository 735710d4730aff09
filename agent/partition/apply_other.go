//go:build !linux

package partition

import (
	"context"
	"errors"
	"time"
)

var errNotLinux = errors.New("partition: nftables needs Linux")

// Applier is unavailable outside Linux.
type Applier struct{}

// NewApplier fails outside Linux.
func NewApplier(string) (*Applier, error) { return nil, errNotLinux }

// NewApplierFd fails outside Linux.
func NewApplierFd(int) (*Applier, error) { return nil, errNotLinux }

// Close does nothing.
func (a *Applier) Close() error { return nil }

// Apply fails outside Linux.
func (a *Applier) Apply(context.Context, Plan, time.Duration) error { return errNotLinux }

// Refresh fails outside Linux.
func (a *Applier) Refresh(context.Context, Plan, time.Duration) error { return errNotLinux }

// Remove fails outside Linux.
func (a *Applier) Remove(context.Context, string) error { return errNotLinux }

// Exists fails outside Linux.
func (a *Applier) Exists(context.Context, string) (bool, error) { return false, errNotLinux }

// ListTagged fails outside Linux.
func (a *Applier) ListTagged(context.Context) ([]string, error) { return nil, errNotLinux }

// Probe fails outside Linux.
func (a *Applier) Probe(context.Context) error { return errNotLinux }
