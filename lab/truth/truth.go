// Package truth reads the load generator's ground-truth file (one line per
// second of requests that succeeded or failed from the user's point of
// view) and measures impact and recovery from it, independently of
// Prometheus, so the tool's own measurements can be checked against it.
package truth

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Header is the first line of a ground-truth file. Lines count requests by
// the second they completed in; the last two columns (unix milliseconds, 0
// when none) say when the earliest failed request of the second was sent
// and when its last failed request completed. They make impact and
// recovery exact to one request interval rather than one second; files
// without them still parse.
const Header = "unix_second,ok,failed,first_failed_ms,last_failed_ms"

// Second is one line: requests that completed during that second.
type Second struct {
	Unix   int64
	OK     int
	Failed int
	// FirstFailed is when the earliest failed request of the second was
	// sent, LastFailed when its last failed request completed (zero when
	// unknown or none).
	FirstFailed, LastFailed time.Time
}

// Start is the beginning of the second.
func (s Second) Start() time.Time { return time.Unix(s.Unix, 0) }

// Read parses the ground-truth file at path.
func Read(path string) ([]Second, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ground truth: %w", err)
	}
	defer f.Close()
	secs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read ground truth %s: %w", path, err)
	}
	return secs, nil
}

// Parse parses a ground-truth CSV. A last line cut short by a concurrent
// writer is ignored.
func Parse(r io.Reader) ([]Second, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	var out []Second
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if line == 1 {
			if got := strings.Join(rec, ","); got != Header && got != "unix_second,ok,failed" {
				return nil, fmt.Errorf("line 1: header %q, want %q", got, Header)
			}
			continue
		}
		s, err := parseRecord(rec)
		if err != nil {
			if _, more := cr.Read(); errors.Is(more, io.EOF) {
				return out, nil // partial last line
			}
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if n := len(out); n > 0 && s.Unix <= out[n-1].Unix {
			return nil, fmt.Errorf("line %d: second %d not after %d", line, s.Unix, out[n-1].Unix)
		}
		out = append(out, s)
	}
}

func parseRecord(rec []string) (Second, error) {
	if len(rec) != 3 && len(rec) != 5 {
		return Second{}, fmt.Errorf("%d fields, want 5 (or 3)", len(rec))
	}
	var s Second
	var err error
	if s.Unix, err = strconv.ParseInt(rec[0], 10, 64); err != nil {
		return Second{}, fmt.Errorf("unix_second: %w", err)
	}
	if s.OK, err = strconv.Atoi(rec[1]); err != nil || s.OK < 0 {
		return Second{}, fmt.Errorf("ok %q: not a count", rec[1])
	}
	if s.Failed, err = strconv.Atoi(rec[2]); err != nil || s.Failed < 0 {
		return Second{}, fmt.Errorf("failed %q: not a count", rec[2])
	}
	if len(rec) == 5 {
		for i, dst := range []*time.Time{&s.FirstFailed, &s.LastFailed} {
			ms, err := strconv.ParseInt(rec[3+i], 10, 64)
			if err != nil || ms < 0 {
				return Second{}, fmt.Errorf("%s %q: not a unix millisecond time", strings.Split(Header, ",")[3+i], rec[3+i])
			}
			if ms > 0 {
				*dst = time.UnixMilli(ms)
			}
		}
	}
	return s, nil
}

// Slack is how far before the injection time a failure still counts as
// impact (injection time and buckets are both truncated to seconds).
const Slack = time.Second

// Analyze finds the first impact after injected and the recovery:
//
//   - firstImpact is when the first failed request completing at or after
//     injected-Slack was sent: the user was affected from the moment the
//     request that failed was made (the start of its completion second
//     when the file has no millisecond columns);
//   - recovered is when the last failed request before the final run of
//     seconds with failed == 0 and ok > 0 completed — from then on every
//     user request succeeded (the start of the run's first second without
//     millisecond columns). Trailing seconds with no completed request at
//     all (the load generator stopping) are ignored.
//
// With millisecond columns both are exact to one request interval.
//
// ok is true when an impact was found and the data ends recovered. With
// no impact, firstImpact is zero and recovered is still reported.
func Analyze(secs []Second, injected time.Time) (firstImpact, recovered time.Time, ok bool) {
	return AnalyzeHold(secs, injected, DefaultHold)
}

// DefaultHold is how long the final clean run of seconds must last for
// Analyze to call it a recovery. Callers that judge data which may stop
// mid-outage (chaoslab truth) ask for more with AnalyzeHold: a short clean
// gap at the end of the data is no recovery.
const DefaultHold = time.Second

// AnalyzeHold is Analyze with the clean run required to last hold (whole
// seconds, at least one).
func AnalyzeHold(secs []Second, injected time.Time, hold time.Duration) (firstImpact, recovered time.Time, ok bool) {
	from := injected.Add(-Slack).Unix()
	for _, s := range secs {
		if s.Unix >= from && s.Failed > 0 {
			firstImpact = s.Start()
			if !s.FirstFailed.IsZero() {
				firstImpact = s.FirstFailed
			}
			break
		}
	}
	end := len(secs)
	for end > 0 && secs[end-1].OK == 0 && secs[end-1].Failed == 0 {
		end--
	}
	i := end
	for i > 0 && secs[i-1].Failed == 0 && secs[i-1].OK > 0 {
		i--
	}
	need := max(int((hold+time.Second-1)/time.Second), 1)
	if end-i >= need {
		recovered = secs[i].Start()
		if i > 0 && !secs[i-1].LastFailed.IsZero() {
			recovered = secs[i-1].LastFailed
		}
	}
	return firstImpact, recovered, !firstImpact.IsZero() && !recovered.IsZero() && !recovered.Before(firstImpact)
}

// ErrNotRecovered means the data shows an impact with no recovery after it.
var ErrNotRecovered = errors.New("no recovery in the ground truth")

// RTO is the ground-truth recovery time: recovered − firstImpact, 0 when
// there was no impact at all after injected.
func RTO(secs []Second, injected time.Time) (time.Duration, error) {
	first, rec, ok := Analyze(secs, injected)
	switch {
	case first.IsZero():
		return 0, nil
	case !ok:
		return 0, ErrNotRecovered
	}
	return rec.Sub(first), nil
}
