package memory

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// Markers on every stressor's command line. Prune and Revert only ever
// signal processes whose argv carries markerArg and a matching owner.
const (
	markerArg   = "--chaosd-memory-stressor"
	ownerFlag   = "--chaosd-owner="
	faultIDFlag = "--chaosd-fault-id="
)

// v1Unlimited: cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages
// (9223372036854771712 on 4 KiB pages); anything this large is no limit.
const v1Unlimited = uint64(1) << 62

// validate checks a memory fault's parameters; errors name the field.
func validate(m *agentapi.Memory) error {
	if m == nil {
		return errors.New("memory: parameters missing")
	}
	hasSize, hasFrac := m.SizeBytes > 0, m.Fraction != 0
	if hasSize == hasFrac {
		return errors.New("memory: exactly one of sizeBytes and fraction must be set")
	}
	if hasFrac && (math.IsNaN(m.Fraction) || m.Fraction <= 0 || m.Fraction > 1) {
		return fmt.Errorf("memory.fraction: must be within (0, 1], got %v", m.Fraction)
	}
	if math.IsNaN(m.RampSeconds) || math.IsInf(m.RampSeconds, 0) || m.RampSeconds < 0 {
		return fmt.Errorf("memory.rampSeconds: must be >= 0, got %v", m.RampSeconds)
	}
	return validateCgroupPath(m.Cgroup)
}

// validateCgroupPath accepts "" (the root) or a clean relative path.
func validateCgroupPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("memory.cgroup: must be relative to the cgroup root, got %q", p)
	}
	if strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("memory.cgroup: invalid character in %q", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("memory.cgroup: must not contain \"..\", got %q", p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("memory.cgroup: must be a clean path (no \".\", \"//\" or trailing \"/\"), got %q", p)
	}
	return nil
}

// targetBytes is what the stressor allocates: SizeBytes, or Fraction of
// limit, rounded down to whole pages. memTotal bounds explicit sizes.
func targetBytes(m *agentapi.Memory, limit, memTotal uint64, page int) (uint64, error) {
	pg := uint64(page)
	if m.SizeBytes > 0 {
		if memTotal > 0 && m.SizeBytes > memTotal {
			return 0, fmt.Errorf("memory.sizeBytes: %d exceeds node memory (MemTotal %d)", m.SizeBytes, memTotal)
		}
		t := m.SizeBytes / pg * pg
		if t == 0 {
			return 0, fmt.Errorf("memory.sizeBytes: must be at least one page (%d bytes), got %d", pg, m.SizeBytes)
		}
		return t, nil
	}
	t := uint64(m.Fraction*float64(limit)) / pg * pg
	if t == 0 {
		return 0, fmt.Errorf("memory.fraction: %v of %d bytes is less than one page", m.Fraction, limit)
	}
	return t, nil
}

// parseLimit parses memory.max (v2: "max" = none) or memory.limit_in_bytes
// (v1: a huge number = none). ok is false when there is no limit.
func parseLimit(version int, s string) (limit uint64, ok bool, err error) {
	s = strings.TrimSpace(s)
	if version == 2 && s == "max" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse memory limit %q: %w", s, err)
	}
	if version == 1 && n >= v1Unlimited {
		return 0, false, nil
	}
	return n, true, nil
}

// procStat is what the driver needs from /proc/PID/stat.
type procStat struct {
	State     byte   // field 3: R, S, D, Z, ...
	StartTime uint64 // field 22: clock ticks after boot
}

// parseStat parses /proc/PID/stat. comm (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return procStat{}, errors.New("parse /proc stat: no ')' after comm")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), so field N is f[N-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after comm, want >= 20", len(f))
	}
	st, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return procStat{State: f[0][0], StartTime: st}, nil
}

// marker is the identity a stressor carries on its command line.
type marker struct {
	Owner   string
	FaultID string
}

// parseMarker reads a stressor's marker from its argv (NUL-separated
// /proc/PID/cmdline); ok is false for any other process.
func parseMarker(cmdline []byte) (m marker, ok bool) {
	var seen, hasID bool
	for _, a := range strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00") {
		switch {
		case a == markerArg:
			seen = true
		case strings.HasPrefix(a, ownerFlag):
			m.Owner = strings.TrimPrefix(a, ownerFlag)
		case strings.HasPrefix(a, faultIDFlag):
			m.FaultID, hasID = strings.TrimPrefix(a, faultIDFlag), true
		}
	}
	return m, seen && hasID
}

// parseMemTotal returns MemTotal from /proc/meminfo in bytes.
func parseMemTotal(data []byte) (uint64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse MemTotal: %w", err)
			}
			if len(f) >= 3 && f[2] == "kB" {
				n *= 1024
			}
			return n, nil
		}
	}
	return 0, errors.New("no MemTotal in meminfo")
}

// parseKeyed returns the value of key in a "key value" file such as
// memory.events (v2) or memory.oom_control (v1).
func parseKeyed(data []byte, key string) (uint64, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, err := strconv.ParseUint(f[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
