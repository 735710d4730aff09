package runner

import (
	"fmt"
	"math"
	"strings"

	"github.com/chaosd/chaosd/probes"
)

// describeFailures lists failing results for a reason or an event.
func describeFailures(res []probes.Result) string {
	if len(res) > 1 && res[0].Error != "" {
		// One cause for all (Prometheus down): say it once.
		same := true
		names := make([]string, len(res))
		for i, r := range res {
			same = same && r.Error == res[0].Error
			names[i] = r.Probe
		}
		if same {
			return fmt.Sprintf("%s: %s", strings.Join(names, ", "), res[0].Error)
		}
	}
	parts := make([]string, len(res))
	for i, r := range res {
		if r.Error != "" {
			parts[i] = fmt.Sprintf("%s: %s", r.Probe, r.Error)
		} else {
			parts[i] = fmt.Sprintf("%s = %s", r.Probe, fmtValue(r))
		}
	}
	return strings.Join(parts, "; ")
}

func fmtValue(r probes.Result) string {
	if r.Error != "" {
		return r.Error
	}
	if math.IsNaN(r.Value) {
		return "NaN"
	}
	return fmt.Sprintf("%.4g", r.Value)
}

func sameProbes(a, b []probes.Probe) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Query != b[i].Query || a[i].Condition() != b[i].Condition() {
			return false
		}
	}
	return true
}

func joinReasons(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
