//go:build !linux

package latency

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
)

var errNotLinux = errors.New("latency: tc netem needs Linux")

// Driver is the latency fault driver; off Linux every method fails.
type Driver struct{}

// New fails off Linux.
func New(nsPath string, lg *zap.Logger) (*Driver, error) { return nil, errNotLinux }

// NewWithConfig fails off Linux.
func NewWithConfig(cfg Config, lg *zap.Logger) (*Driver, error) { return nil, errNotLinux }

// Kind returns agentapi.KindLatency.
func (d *Driver) Kind() agentapi.Kind { return agentapi.KindLatency }

// NodeBound reports that a latency fault lives only in this node's kernel.
func (d *Driver) NodeBound() bool { return true }

// Probe fails off Linux.
func (d *Driver) Probe(context.Context) error { return errNotLinux }

// Prepare validates the fault but cannot resolve interfaces off Linux.
func (d *Driver) Prepare(_ context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	if _, err := Parse(f.Latency); err != nil {
		return nil, err
	}
	return nil, errNotLinux
}

// Apply fails off Linux.
func (d *Driver) Apply(context.Context, agentapi.Fault, json.RawMessage) (json.RawMessage, error) {
	return nil, errNotLinux
}

// Revert has nothing to do off Linux.
func (d *Driver) Revert(context.Context, agentapi.Fault, json.RawMessage) error { return nil }

// Remaining has nothing to report off Linux.
func (d *Driver) Remaining(context.Context, agentapi.Fault, json.RawMessage) (string, error) {
	return "", nil
}

// Prune has nothing to do off Linux.
func (d *Driver) Prune(context.Context, []json.RawMessage) ([]string, error) { return nil, nil }

// SelfExpiry reports the kernel mechanism the Linux driver uses.
func (d *Driver) SelfExpiry() (string, time.Duration) { return agentapi.SelfExpiryKernel, 0 }

// Renew fails off Linux.
func (d *Driver) Renew(context.Context, agentapi.Fault, json.RawMessage, time.Time) (string, error) {
	return "", errNotLinux
}

// Close does nothing off Linux.
func (d *Driver) Close() error { return nil }
