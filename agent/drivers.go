package agent

import (
	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/partition"
)

// defaultDrivers builds every fault driver of a production agent for the
// network namespace in cfg, and a function that releases them.
func defaultDrivers(cfg Config, lg *zap.Logger) ([]Driver, func(), error) {
	ap, err := partition.NewApplier(cfg.NetNSPath)
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() { ap.Close() }
	drivers := []Driver{&partitionDriver{be: ap}}
	return drivers, closeAll, nil
}
