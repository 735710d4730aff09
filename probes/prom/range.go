package prom

import (
	"github.com/chaosd/chaosd/probes"

	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/goccy/go-yaml"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// EvalRange evaluates p at start, start+step, … up to end with one range
// query and judges each instant exactly like Eval. The runner uses it to
// find when, between two probe rounds, a probe started failing or holding:
// it turns the probe interval's resolution into the scrape interval's.
func (e *Evaluator) EvalRange(ctx context.Context, p probes.Probe, start, end time.Time, step time.Duration) ([]probes.Result, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", probes.ErrInvalidProbe, err)
	}
	if step <= 0 || end.Before(start) {
		return nil, fmt.Errorf("eval range of %s: empty range %s..%s step %s", p.Name, start, end, step)
	}
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	v, warnings, _, err := e.api.QueryRange(qctx, p.Query, v1.Range{Start: start, End: end, Step: step}, v1.WithTimeout(e.timeout))
	for _, w := range warnings {
		e.lg.Debug("prometheus range query warning", zapProbe(p.Name), zapWarning(w))
	}
	if err != nil {
		return nil, classify(ctx, qctx, err, e.timeout)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: range query of %s returned %s", probes.ErrQuery, p.Name, v.Type())
	}
	// Prometheus answers at start + k·step, in milliseconds parsed from
	// float seconds: match its timestamps to steps by rounding, never by
	// exact equality.
	n := int(end.Sub(start)/step) + 1
	vecs := make([]model.Vector, n)
	for _, s := range m {
		for _, pt := range s.Values {
			k := int(math.Round(float64(pt.Timestamp.Time().Sub(start)) / float64(step)))
			if k < 0 || k >= n {
				continue
			}
			vecs[k] = append(vecs[k], &model.Sample{Metric: s.Metric, Value: pt.Value, Timestamp: pt.Timestamp})
		}
	}
	out := make([]probes.Result, n)
	for k := range vecs {
		vec := vecs[k]
		if vec == nil {
			vec = model.Vector{}
		}
		out[k] = judge(p, vec, probes.Result{Probe: p.Name, Time: start.Add(time.Duration(k) * step), Value: math.NaN()})
	}
	return out, nil
}

// ScrapeInterval returns the longest scrape interval in Prometheus'
// running configuration (the global one and every job's): no data the
// probes read is fresher than that, so it bounds how precisely a change
// can be timed.
func (e *Evaluator) ScrapeInterval(ctx context.Context) (time.Duration, error) {
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cfg, err := e.api.Config(qctx)
	if err != nil {
		return 0, classify(ctx, qctx, err, e.timeout)
	}
	return maxScrapeInterval(cfg.YAML)
}

// maxScrapeInterval reads scrape intervals out of a Prometheus
// configuration (Prometheus' default is 1m).
func maxScrapeInterval(conf string) (time.Duration, error) {
	var c struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(conf), &c); err != nil {
		return 0, fmt.Errorf("%w: parse prometheus config: %w", probes.ErrQuery, err)
	}
	parse := func(s string, def time.Duration) (time.Duration, error) {
		if s == "" {
			return def, nil
		}
		d, err := model.ParseDuration(s)
		return time.Duration(d), err
	}
	global, err := parse(c.Global.ScrapeInterval, time.Minute)
	if err != nil {
		return 0, fmt.Errorf("%w: global.scrape_interval: %w", probes.ErrQuery, err)
	}
	longest := global
	if len(c.ScrapeConfigs) > 0 {
		longest = 0
	}
	for i, sc := range c.ScrapeConfigs {
		d, err := parse(sc.ScrapeInterval, global)
		if err != nil {
			return 0, fmt.Errorf("%w: scrape_configs[%d].scrape_interval: %w", probes.ErrQuery, i, err)
		}
		longest = max(longest, d)
	}
	if longest <= 0 {
		return 0, errors.New("prometheus config has no scrape interval")
	}
	return longest, nil
}

func zapProbe(name string) zap.Field { return zap.String("probe", name) }
func zapWarning(w string) zap.Field  { return zap.String("warning", w) }
