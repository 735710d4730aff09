// Package loadgen is the lab's steady load generator: it asks the gateway
// for owner details at a fixed rate and writes, per second, how many
// requests succeeded from the user's point of view (HTTP 200 and every pet
// with visits) and how many failed. That file is the ground truth the
// tool's Prometheus-based measurements are checked against.
package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/lab/petclinic"
	"github.com/chaosd/chaosd/lab/truth"
)

// Options configures a run.
type Options struct {
	Target   string        // gateway base URL
	RPS      int           // requests per second
	Duration time.Duration // 0: until ctx ends
	Truth    string        // ground-truth CSV path
	Owners   int           // owner ids 1..Owners, round-robin
	Timeout  time.Duration // per request
}

// DefaultOptions returns the lab defaults.
func DefaultOptions() Options {
	return Options{RPS: 20, Owners: 10, Timeout: 2 * time.Second}
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Target == "":
		return errors.New("--target is required")
	case o.RPS < 1 || o.RPS > 1000:
		return fmt.Errorf("--rps must be in 1..1000, got %d", o.RPS)
	case o.Duration < 0:
		return fmt.Errorf("--duration must not be negative, got %s", o.Duration)
	case o.Truth == "":
		return errors.New("--truth is required")
	case o.Owners < 1:
		return fmt.Errorf("--owners must be >= 1, got %d", o.Owners)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

// Succeeded reports whether an owner-details answer is a success for the
// user: HTTP 200, at least one pet, and every pet with a non-empty visits
// list (the seed data guarantees visits, so an empty list is the circuit
// breaker's fallback hiding a failure).
func Succeeded(status int, body io.Reader) bool {
	if status != http.StatusOK {
		return false
	}
	var od petclinic.OwnerDetails
	if err := json.NewDecoder(body).Decode(&od); err != nil || len(od.Pets) == 0 {
		return false
	}
	for _, p := range od.Pets {
		if len(p.Visits) == 0 {
			return false
		}
	}
	return true
}

// counter accumulates outcomes per completion second.
type counter struct {
	mu  sync.Mutex
	sec map[int64]*bucket
}

// bucket is one second of completions: outcomes, when the earliest failed
// request completing in it was sent, and when its last failure completed
// (unix ms, 0 when none).
type bucket struct {
	ok, failed              int
	firstFailed, lastFailed int64
}

func (c *counter) add(at time.Time, ok bool, sent time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := at.Unix()
	b := c.sec[s]
	if b == nil {
		b = &bucket{}
		c.sec[s] = b
	}
	if ok {
		b.ok++
		return
	}
	b.failed++
	if ms := sent.UnixMilli(); b.firstFailed == 0 || ms < b.firstFailed {
		b.firstFailed = ms
	}
	if ms := at.UnixMilli(); ms > b.lastFailed {
		b.lastFailed = ms
	}
}

func (c *counter) take(s int64) bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.sec[s]
	delete(c.sec, s)
	if b == nil {
		return bucket{}
	}
	return *b
}

// Run generates load until ctx ends or the duration passes, writing the
// ground-truth file every second.
func Run(ctx context.Context, o Options, log *zap.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = zap.NewNop()
	}
	f, err := os.OpenFile(o.Truth, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create ground truth: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	if _, err := w.WriteString(truth.Header + "\n"); err != nil {
		return fmt.Errorf("write ground truth: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write ground truth: %w", err)
	}

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	client := &http.Client{Timeout: o.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: o.RPS, IdleConnTimeout: 30 * time.Second}}
	defer client.CloseIdleConnections()
	cnt := &counter{sec: map[int64]*bucket{}}
	start := time.Now()
	next := start.Unix() // next second to write
	var total [2]int
	flushUpTo := func(last int64) error {
		for ; next <= last; next++ {
			b := cnt.take(next)
			total[0] += b.ok
			total[1] += b.failed
			if _, err := fmt.Fprintf(w, "%d,%d,%d,%d,%d\n", next, b.ok, b.failed, b.firstFailed, b.lastFailed); err != nil {
				return fmt.Errorf("write ground truth: %w", err)
			}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write ground truth: %w", err)
		}
		return nil
	}

	sem := make(chan struct{}, 3*o.RPS) // bounds requests in flight
	var wg sync.WaitGroup
	fire := func(owner int) {
		select {
		case sem <- struct{}{}:
		default:
			now := time.Now()
			cnt.add(now, false, now) // too many in flight: a failure for the user too
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sent := time.Now()
			ok := get(client, o.Target+"/api/gateway/owners/"+strconv.Itoa(owner))
			cnt.add(time.Now(), ok, sent)
		}()
	}

	tick := time.NewTicker(time.Second / time.Duration(o.RPS))
	defer tick.Stop()
	// Write each second shortly after it ends.
	flush := time.NewTimer(time.Until(time.Unix(next+1, 0).Add(50 * time.Millisecond)))
	defer flush.Stop()
	log.Info("load started", zap.String("target", o.Target), zap.Int("rps", o.RPS), zap.String("truth", o.Truth))
	owner := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			fire(owner%o.Owners + 1)
			owner++
		case now := <-flush.C:
			if err := flushUpTo(now.Unix() - 1); err != nil {
				return err
			}
			flush.Reset(time.Until(time.Unix(now.Unix()+1, 0).Add(50 * time.Millisecond)))
		}
	}
	wg.Wait() // in-flight requests end within the timeout
	if err := flushUpTo(time.Now().Unix()); err != nil {
		return err
	}
	log.Info("load stopped", zap.Int("ok", total[0]), zap.Int("failed", total[1]), zap.Duration("elapsed", time.Since(start)))
	return nil
}

func get(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	ok := Succeeded(resp.StatusCode, resp.Body)
	_, _ = io.Copy(io.Discard, resp.Body)
	return ok
}
