// Package springboot is the node agent's driver for the exception and
// app-latency fault kinds: it applies and reverts Chaos Monkey for Spring
// Boot assaults through a service's /actuator/chaosmonkey endpoints, so
// those faults follow the agent's ledger, deadline and lease rules like
// the kernel-level ones.
//
// Restore rule: Prepare captures the service's assault settings, watcher
// settings and enabled status; Apply writes only the fields of its kind
// (level, deterministic, and exceptionsActive+exception or
// latencyActive+latencyRangeStart/End), the watchers it enables, and
// enables Chaos Monkey; Revert writes exactly those fields back to their
// captured values and restores the enabled status. Fields the driver never
// wrote are never touched.
package springboot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/chaosd/chaosd/agent/agentapi"
)

// ActuatorPath is the Chaos Monkey endpoint under a service's base URL.
const ActuatorPath = "/actuator/chaosmonkey"

// CMSB's answers to GET /status.
const (
	statusEnabled  = "Ready to be evil!"
	statusDisabled = "You switched me off!"
)

var javaClassName = regexp.MustCompile(`^([A-Za-z_$][A-Za-z0-9_$]*\.)*[A-Za-z_$][A-Za-z0-9_$]*$`)

// State is what the ledger keeps for one fault: the service and the
// settings it had before, enough to revert after a crash.
type State struct {
	URL string `json:"url"` // normalised base URL
	// Assaults and Watchers are GET /assaults and GET /watchers as the
	// service answered them before the fault.
	Assaults json.RawMessage `json:"assaults"`
	Watchers json.RawMessage `json:"watchers"`
	Enabled  bool            `json:"enabled"`
}

// activeURLs is the process-wide set of services with a fault applied (or
// being applied) by any Driver: two faults on one service would capture
// each other's settings as "before", so a second one is refused whatever
// its kind. It is the one piece of package state, because the actuator it
// guards is shared by the exception and app-latency drivers.
var activeURLs = &activeSet{byURL: map[string]string{}}

type activeSet struct {
	mu    sync.Mutex
	byURL map[string]string // URL → fault ID
}

func (s *activeSet) claim(u, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byURL[u]; ok && other != id {
		return fmt.Errorf("springBoot.url: %s already has Chaos Monkey fault %s active; one fault per service at a time", u, other)
	}
	s.byURL[u] = id
	return nil
}

func (s *activeSet) check(u, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byURL[u]; ok && other != id {
		return fmt.Errorf("springBoot.url: %s already has Chaos Monkey fault %s active; one fault per service at a time", u, other)
	}
	return nil
}

// other returns the fault holding u if it is not id.
func (s *activeSet) other(u, id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	other, ok := s.byURL[u]
	return other, ok && other != id
}

func (s *activeSet) release(u, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byURL[u] == id {
		delete(s.byURL, u)
	}
}

// Driver applies and reverts one Chaos Monkey fault kind.
type Driver struct {
	kind   agentapi.Kind
	hc     *http.Client
	lg     *zap.Logger
	active *activeSet
}

// New returns the driver of kind (agentapi.KindException or
// agentapi.KindAppLatency). hc nil: a client with a 5s timeout.
func New(kind agentapi.Kind, hc *http.Client, lg *zap.Logger) (*Driver, error) {
	if kind != agentapi.KindException && kind != agentapi.KindAppLatency {
		return nil, fmt.Errorf("springboot driver: unsupported kind %q (want %s or %s)", kind, agentapi.KindException, agentapi.KindAppLatency)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Driver{kind: kind, hc: hc, lg: lg, active: activeURLs}, nil
}

// Kind is the fault kind served.
func (d *Driver) Kind() agentapi.Kind { return d.kind }

// Probe is always nil: HTTP is always available; whether a service has a
// Chaos Monkey actuator is checked per fault in Prepare.
func (d *Driver) Probe(context.Context) error { return nil }

// Close releases idle connections.
func (d *Driver) Close() error {
	d.hc.CloseIdleConnections()
	return nil
}

// validate checks f and returns the normalised base URL.
func (d *Driver) validate(f agentapi.Fault) (string, error) {
	if f.Kind != d.kind {
		return "", fmt.Errorf("kind: %q is not %q", f.Kind, d.kind)
	}
	sb := f.SpringBoot
	if sb == nil {
		return "", errors.New("springBoot: required for kind " + string(d.kind))
	}
	u, err := url.Parse(sb.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("springBoot.url: %q is not an http(s) URL", sb.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("springBoot.url: %q must not have a query or fragment", sb.URL)
	}
	if sb.Level < 1 || sb.Level > 10000 {
		return "", fmt.Errorf("springBoot.level: must be within 1-10000, got %d", sb.Level)
	}
	switch d.kind {
	case agentapi.KindAppLatency:
		if sb.LatencyRangeStartMs <= 0 {
			return "", fmt.Errorf("springBoot.latencyRangeStartMs: must be > 0, got %d", sb.LatencyRangeStartMs)
		}
		if sb.LatencyRangeEndMs <= 0 {
			return "", fmt.Errorf("springBoot.latencyRangeEndMs: must be > 0, got %d", sb.LatencyRangeEndMs)
		}
		if sb.LatencyRangeStartMs > sb.LatencyRangeEndMs {
			return "", fmt.Errorf("springBoot.latencyRangeStartMs: must be <= latencyRangeEndMs (%d), got %d", sb.LatencyRangeEndMs, sb.LatencyRangeStartMs)
		}
	case agentapi.KindException:
		if e := sb.Exception; e != nil {
			if !javaClassName.MatchString(e.Type) {
				return "", fmt.Errorf("springBoot.exception.type: %q is not a Java class name", e.Type)
			}
			if e.Method != "" && e.Method != "<init>" && !javaClassName.MatchString(e.Method) {
				return "", fmt.Errorf("springBoot.exception.method: %q is not a method name", e.Method)
			}
			for i, a := range e.Arguments {
				if !javaClassName.MatchString(a.Type) {
					return "", fmt.Errorf("springBoot.exception.arguments[%d].type: %q is not a Java class name", i, a.Type)
				}
			}
		}
	}
	for i, w := range sb.Watchers {
		if !slices.Contains(agentapi.SpringWatchers, w) {
			return "", fmt.Errorf("springBoot.watchers[%d]: unknown watcher %q (want one of %s)", i, w, strings.Join(agentapi.SpringWatchers, ", "))
		}
	}
	return strings.TrimRight(u.Scheme+"://"+strings.ToLower(u.Host)+u.Path, "/"), nil
}

// Prepare validates f and captures the service's settings before it.
func (d *Driver) Prepare(ctx context.Context, f *agentapi.Fault) (json.RawMessage, error) {
	base, err := d.validate(*f)
	if err != nil {
		return nil, err
	}
	if err := d.active.check(base, f.ID); err != nil {
		return nil, err
	}
	st, err := d.capture(ctx, base)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// capture reads the current settings of the actuator at base.
func (d *Driver) capture(ctx context.Context, base string) (State, error) {
	st := State{URL: base}
	enabled, err := d.status(ctx, base)
	if err != nil {
		return st, err
	}
	st.Enabled = enabled
	if st.Assaults, err = d.getObject(ctx, base, "/assaults", "level"); err != nil {
		return st, err
	}
	if st.Watchers, err = d.getObject(ctx, base, "/watchers", "restController"); err != nil {
		return st, err
	}
	return st, nil
}

// status reads GET /status: 200 "Ready to be evil!" or 503 "You switched
// me off!"; anything else is not a Chaos Monkey actuator.
func (d *Driver) status(ctx context.Context, base string) (bool, error) {
	code, body, err := d.do(ctx, "GET", base, "/status", nil)
	if err != nil {
		return false, err
	}
	switch b := strings.TrimSpace(string(body)); {
	case code == http.StatusOK && b == statusEnabled:
		return true, nil
	case code == http.StatusServiceUnavailable && b == statusDisabled:
		return false, nil
	}
	return false, notChaosMonkey(base, "/status", code, body)
}

func notChaosMonkey(base, path string, code int, body []byte) error {
	return fmt.Errorf("GET %s%s%s: HTTP %d %q: not a Chaos Monkey for Spring Boot actuator (is chaos-monkey-spring-boot on the classpath, the chaos-monkey profile active and the chaosmonkey endpoint exposed?)",
		base, ActuatorPath, path, code, truncate(body))
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// getObject GETs a JSON object that must have key.
func (d *Driver) getObject(ctx context.Context, base, path, key string) (json.RawMessage, error) {
	code, body, err := d.do(ctx, "GET", base, path, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if code != http.StatusOK || json.Unmarshal(body, &m) != nil || m[key] == nil {
		return nil, notChaosMonkey(base, path, code, body)
	}
	return json.RawMessage(body), nil
}

// do sends one request to the actuator and reads the answer; it gives up
// when ctx ends.
func (d *Driver) do(ctx context.Context, method, base, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+ActuatorPath+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s%s%s: %w", method, base, ActuatorPath, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s%s%s: %w", method, base, ActuatorPath, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s%s%s: read answer: %w", method, base, ActuatorPath, path, err)
	}
	return resp.StatusCode, b, nil
}

// post sends a POST and wants 200.
func (d *Driver) post(ctx context.Context, base, path string, body any) error {
	code, b, err := d.do(ctx, "POST", base, path, body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("POST %s%s%s: HTTP %d %s", base, ActuatorPath, path, code, truncate(b))
	}
	return nil
}

// assaultFields are the /assaults fields a fault of kind writes.
func assaultFields(kind agentapi.Kind) []string {
	if kind == agentapi.KindAppLatency {
		return []string{"level", "deterministic", "latencyActive", "latencyRangeStart", "latencyRangeEnd"}
	}
	return []string{"level", "deterministic", "exceptionsActive", "exception"}
}

func watchersOf(sb *agentapi.SpringBoot) []string {
	if len(sb.Watchers) == 0 {
		return agentapi.DefaultSpringWatchers
	}
	return sb.Watchers
}

// assaultUpdate is the POST /assaults body of f.
func (d *Driver) assaultUpdate(sb *agentapi.SpringBoot) map[string]any {
	u := map[string]any{"level": sb.Level, "deterministic": sb.Deterministic}
	if d.kind == agentapi.KindAppLatency {
		u["latencyActive"] = true
		u["latencyRangeStart"] = sb.LatencyRangeStartMs
		u["latencyRangeEnd"] = sb.LatencyRangeEndMs
		return u
	}
	u["exceptionsActive"] = true
	exc := map[string]any{"type": "java.lang.RuntimeException"} // CMSB's default; method and arguments default too
	if e := sb.Exception; e != nil {
		exc = map[string]any{"type": e.Type}
		if e.Method != "" {
			exc["method"] = e.Method
		}
		if e.Arguments != nil {
			exc["arguments"] = e.Arguments
		}
	}
	u["exception"] = exc
	return u
}

func parseState(state json.RawMessage) (State, error) {
	var st State
	if err := json.Unmarshal(state, &st); err != nil {
		return st, fmt.Errorf("springboot state: %w", err)
	}
	if st.URL == "" || st.Assaults == nil || st.Watchers == nil {
		return st, errors.New("springboot state: missing url or captured settings")
	}
	return st, nil
}

// Apply writes the fault's assault settings and watchers and enables
// Chaos Monkey. On error Revert(f, state) restores what was written.
func (d *Driver) Apply(ctx context.Context, f agentapi.Fault, state json.RawMessage) (json.RawMessage, error) {
	base, err := d.validate(f)
	if err != nil {
		return nil, err
	}
	if _, err := parseState(state); err != nil {
		return nil, err
	}
	if err := d.active.claim(base, f.ID); err != nil {
		return nil, err
	}
	sb := f.SpringBoot
	if err := d.post(ctx, base, "/assaults", d.assaultUpdate(sb)); err != nil {
		return nil, err
	}
	w := map[string]bool{}
	for _, n := range watchersOf(sb) {
		w[n] = true
	}
	if err := d.post(ctx, base, "/watchers", w); err != nil {
		return nil, err
	}
	if err := d.post(ctx, base, "/enable", nil); err != nil {
		return nil, err
	}
	d.lg.Info("chaos monkey fault applied", zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("kind", string(d.kind)), zap.String("target", base), zap.Int("level", sb.Level))
	return nil, nil
}

// restoreBodies are the POST /assaults and /watchers bodies that put back
// the captured values of every field a fault of kind with sb writes (sb
// nil: every watcher).
func restoreBodies(kind agentapi.Kind, sb *agentapi.SpringBoot, st State) (assaults, watchers map[string]json.RawMessage, err error) {
	var before, wBefore map[string]json.RawMessage
	if err := json.Unmarshal(st.Assaults, &before); err != nil {
		return nil, nil, fmt.Errorf("springboot state: assaults: %w", err)
	}
	if err := json.Unmarshal(st.Watchers, &wBefore); err != nil {
		return nil, nil, fmt.Errorf("springboot state: watchers: %w", err)
	}
	assaults = map[string]json.RawMessage{}
	for _, k := range assaultFields(kind) {
		if v, ok := before[k]; ok && string(v) != "null" {
			assaults[k] = v
		}
	}
	names := agentapi.SpringWatchers
	if sb != nil {
		names = watchersOf(sb)
	}
	watchers = map[string]json.RawMessage{}
	for _, k := range names {
		if v, ok := wBefore[k]; ok && string(v) != "null" {
			watchers[k] = v
		}
	}
	return assaults, watchers, nil
}

// Revert restores the captured settings and enabled status. Idempotent;
// an unreachable service is an error so the agent retries. When another
// fault holds the service, f never claimed it (its Apply failed on the
// claim, before writing anything), so there is nothing of f to restore and
// the other fault's settings are left alone.
func (d *Driver) Revert(ctx context.Context, f agentapi.Fault, state json.RawMessage) error {
	st, err := parseState(state)
	if err != nil {
		return err
	}
	if other, held := d.active.other(st.URL, f.ID); held {
		d.lg.Info("chaos monkey fault never applied; service held by another fault", zap.String("run", f.RunID),
			zap.String("fault", f.ID), zap.String("target", st.URL), zap.String("holder", other))
		return nil
	}
	u, err := undoOf(d.kind, f.SpringBoot, st)
	if err != nil {
		return err
	}
	if err := d.undo(ctx, u); err != nil {
		return err
	}
	d.active.release(st.URL, f.ID)
	d.lg.Info("chaos monkey fault reverted", zap.String("run", f.RunID), zap.String("fault", f.ID),
		zap.String("kind", string(d.kind)), zap.String("target", st.URL), zap.Bool("enabled", st.Enabled))
	return nil
}

// undoOf is the undo document of a fault of kind with sb, from the
// settings captured before it.
func undoOf(kind agentapi.Kind, sb *agentapi.SpringBoot, st State) (agentapi.SpringBootUndo, error) {
	assaults, watchers, err := restoreBodies(kind, sb, st)
	if err != nil {
		return agentapi.SpringBootUndo{}, err
	}
	return agentapi.SpringBootUndo{URL: st.URL, Enabled: st.Enabled, Assaults: assaults, Watchers: watchers}, nil
}

// undo writes u back through the actuator.
func (d *Driver) undo(ctx context.Context, u agentapi.SpringBootUndo) error {
	// Stop the attacks first when Chaos Monkey was off before.
	if !u.Enabled {
		if err := d.post(ctx, u.URL, "/disable", nil); err != nil {
			return err
		}
	}
	if err := d.post(ctx, u.URL, "/assaults", u.Assaults); err != nil {
		return err
	}
	if err := d.post(ctx, u.URL, "/watchers", u.Watchers); err != nil {
		return err
	}
	if u.Enabled {
		return d.post(ctx, u.URL, "/enable", nil)
	}
	return nil
}

// Undo returns the fault's undo document (agentapi.SpringBootUndo), which
// the agent hands to chaosd in the fault's status.
func (d *Driver) Undo(f agentapi.Fault, state json.RawMessage) (json.RawMessage, error) {
	st, err := parseState(state)
	if err != nil {
		return nil, err
	}
	u, err := undoOf(d.kind, f.SpringBoot, st)
	if err != nil {
		return nil, err
	}
	return json.Marshal(u)
}

// UndoWithoutAgent undoes a Chaos Monkey fault from its undo document,
// straight through the service's actuator (chaosd does this when the
// agent that applied it stopped answering), then reads the settings back:
// it returns what is still not as before ("" when everything is).
func UndoWithoutAgent(ctx context.Context, hc *http.Client, doc json.RawMessage) (string, error) {
	var u agentapi.SpringBootUndo
	if err := json.Unmarshal(doc, &u); err != nil || u.URL == "" {
		return "", fmt.Errorf("springboot undo document: %v", err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	d := &Driver{hc: hc, lg: zap.NewNop(), active: &activeSet{byURL: map[string]string{}}}
	if err := d.undo(ctx, u); err != nil {
		return "", err
	}
	now, err := d.capture(ctx, u.URL)
	if err != nil {
		return "", err
	}
	var gotA, gotW map[string]json.RawMessage
	if err := json.Unmarshal(now.Assaults, &gotA); err != nil {
		return "", fmt.Errorf("read back assaults: %w", err)
	}
	if err := json.Unmarshal(now.Watchers, &gotW); err != nil {
		return "", fmt.Errorf("read back watchers: %w", err)
	}
	var diffs []string
	diffs = appendDiffs(diffs, "", u.Assaults, gotA)
	diffs = appendDiffs(diffs, "watchers.", u.Watchers, gotW)
	if now.Enabled != u.Enabled {
		diffs = append(diffs, fmt.Sprintf("enabled=%v (was %v)", now.Enabled, u.Enabled))
	}
	if len(diffs) == 0 {
		return "", nil
	}
	return "chaos monkey at " + u.URL + ": " + strings.Join(diffs, ", "), nil
}

// appendDiffs adds "prefix+key=got (was want)" for every key of want whose
// value differs in got, in key order.
func appendDiffs(diffs []string, prefix string, want, got map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !jsonEqual(want[k], got[k]) {
			diffs = append(diffs, fmt.Sprintf("%s%s=%s (was %s)", prefix, k, got[k], want[k]))
		}
	}
	return diffs
}

// Remaining compares the service's current settings with the captured
// ones, for the fields the fault wrote; "" when they match, or when
// another fault holds the service (f never wrote to it).
func (d *Driver) Remaining(ctx context.Context, f agentapi.Fault, state json.RawMessage) (string, error) {
	st, err := parseState(state)
	if err != nil {
		return "", err
	}
	if _, held := d.active.other(st.URL, f.ID); held {
		return "", nil
	}
	now, err := d.capture(ctx, st.URL)
	if err != nil {
		return "", err
	}
	wantA, wantW, err := restoreBodies(d.kind, f.SpringBoot, st)
	if err != nil {
		return "", err
	}
	gotA, gotW, err := restoreBodies(d.kind, f.SpringBoot, now)
	if err != nil {
		return "", err
	}
	var diffs []string
	diffs = appendDiffs(diffs, "", wantA, gotA)
	diffs = appendDiffs(diffs, "watchers.", wantW, gotW)
	if now.Enabled != st.Enabled {
		diffs = append(diffs, fmt.Sprintf("enabled=%v (was %v)", now.Enabled, st.Enabled))
	}
	if len(diffs) == 0 {
		return "", nil
	}
	return "chaos monkey at " + st.URL + ": " + strings.Join(diffs, ", "), nil
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Prune has nothing to scan: an actuator holds no tag of ours. Every
// applied fault's previous settings are in the ledger, and the agent
// reverts leftover ledger entries at start, which is how a crash's
// leftovers are undone.
func (d *Driver) Prune(context.Context, []json.RawMessage) ([]string, error) { return nil, nil }
