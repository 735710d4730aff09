package experiments

import "time"

// Duration is a time.Duration written as a Prometheus-style duration
// string ("500ms", "30s", "15m", "1h30m") in specs and JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
