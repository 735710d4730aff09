package prom

import (
	"github.com/chaosd/chaosd/probes"

	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func vec(vals map[string]float64) model.Vector {
	var v model.Vector
	for shard, x := range vals {
		v = append(v, &model.Sample{
			Metric: model.Metric{"__name__": "m", "shard": model.LabelValue(shard)},
			Value:  model.SampleValue(x),
		})
	}
	return v
}

func TestJudge(t *testing.T) {
	nan := math.NaN()
	ge1 := probes.Probe{Name: "p", Query: "m", Op: probes.OpGE, Threshold: f(1)}
	with := func(p probes.Probe, m probes.Match, e probes.OnEmpty) probes.Probe {
		p.Match, p.OnEmpty = m, e
		return p
	}
	tests := []struct {
		name      string
		p         probes.Probe
		v         model.Value
		wantOK    bool
		wantValue float64 // NaN = NaN
		wantErr   string
		wantN     int // series
	}{
		{"single holds", ge1, vec(map[string]float64{"a": 2}), true, 2, "", 1},
		{"single fails", ge1, vec(map[string]float64{"a": 0.5}), false, 0.5, "", 1},
		{"single nan", ge1, vec(map[string]float64{"a": nan}), false, nan, "NaN", 1},
		{"single inf", ge1, vec(map[string]float64{"a": math.Inf(1)}), true, math.Inf(1), "", 1},
		{"scalar", ge1, &model.Scalar{Value: 3}, true, 3, "", 1},
		{"scalar nan", ge1, &model.Scalar{Value: model.SampleValue(nan)}, false, nan, "NaN", 1},
		{"empty fails", ge1, model.Vector{}, false, nan, "empty result", 0},
		{"empty onEmpty fail", with(ge1, "", probes.OnEmptyFail), model.Vector{}, false, nan, "empty result", 0},
		{"empty onEmpty pass", with(ge1, "", probes.OnEmptyPass), model.Vector{}, true, nan, "", 0},
		{"empty all pass", with(ge1, probes.MatchAll, probes.OnEmptyPass), model.Vector{}, true, nan, "", 0},
		{"matrix", ge1, model.Matrix{}, false, nan, "range vector result: use an instant query", 0},
		{"string", ge1, &model.String{Value: "x"}, false, nan, "string result: the query must return a number", 0},
		{"nil", ge1, nil, false, nan, "no result", 0},
		{"multi without match", ge1, vec(map[string]float64{"a": 1, "b": 2, "c": 3}), false, nan, "3 series: set match: all or any", 3},
		{"all hold, value worst", with(ge1, probes.MatchAll, ""), vec(map[string]float64{"a": 3, "b": 1, "c": 2}), true, 1, "", 3},
		{"all one fails", with(ge1, probes.MatchAll, ""), vec(map[string]float64{"a": 3, "b": 0, "c": 2}), false, 0, "", 3},
		{"all one nan", with(ge1, probes.MatchAll, ""), vec(map[string]float64{"a": 3, "b": nan}), false, nan, `NaN in series m{shard="b"}`, 2},
		{"any one holds, value best", with(ge1, probes.MatchAny, ""), vec(map[string]float64{"a": 0, "b": 5, "c": 0.5}), true, 5, "", 3},
		{"any none holds, value best", with(ge1, probes.MatchAny, ""), vec(map[string]float64{"a": 0, "b": 0.9}), false, 0.9, "", 2},
		{"any nan ignored", with(ge1, probes.MatchAny, ""), vec(map[string]float64{"a": nan, "b": 2}), true, 2, "", 2},
		{"any all nan", with(ge1, probes.MatchAny, ""), vec(map[string]float64{"a": nan, "b": nan}), false, nan, "NaN", 2},
		{"all lt worst is max", probes.Probe{Op: probes.OpLT, Threshold: f(10), Match: probes.MatchAll}, vec(map[string]float64{"a": 1, "b": 9}), true, 9, "", 2},
		{"any lt best is min", probes.Probe{Op: probes.OpLT, Threshold: f(10), Match: probes.MatchAny}, vec(map[string]float64{"a": 11, "b": 12}), false, 11, "", 2},
		{"all between worst nearest edge", probes.Probe{Op: probes.OpBetween, Min: f(0), Max: f(10), Match: probes.MatchAll}, vec(map[string]float64{"a": 5, "b": 9.5, "c": 1}), true, 9.5, "", 3},
		{"all between outside", probes.Probe{Op: probes.OpBetween, Min: f(0), Max: f(10), Match: probes.MatchAll}, vec(map[string]float64{"a": 5, "b": 12}), false, 12, "", 2},
		{"all eq worst furthest", probes.Probe{Op: probes.OpEQ, Threshold: f(1), Match: probes.MatchAll}, vec(map[string]float64{"a": 1, "b": 4, "c": 0}), false, 4, "", 3},
		{"all ne worst equal", probes.Probe{Op: probes.OpNE, Threshold: f(0), Match: probes.MatchAll}, vec(map[string]float64{"a": 1, "b": 0}), false, 0, "", 2},
	}
	at := time.Unix(1000, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judge(tt.p, tt.v, probes.Result{Probe: "p", Time: at})
			if got.OK != tt.wantOK {
				t.Errorf("OK = %v, want %v (result %+v)", got.OK, tt.wantOK, got)
			}
			if !(got.Value == tt.wantValue || math.IsNaN(got.Value) && math.IsNaN(tt.wantValue)) {
				t.Errorf("Value = %v, want %v", got.Value, tt.wantValue)
			}
			if got.Error != tt.wantErr {
				t.Errorf("Error = %q, want %q", got.Error, tt.wantErr)
			}
			if len(got.Series) != tt.wantN {
				t.Errorf("%d series, want %d", len(got.Series), tt.wantN)
			}
			if got.Probe != "p" || !got.Time.Equal(at) || got.Err != nil {
				t.Errorf("probe/time/err not kept: %+v", got)
			}
			for i, s := range got.Series {
				if i > 0 && got.Series[i-1].Labels >= s.Labels {
					t.Errorf("series not sorted by labels: %q before %q", got.Series[i-1].Labels, s.Labels)
				}
				if s.OK != tt.p.Holds(s.Value) {
					t.Errorf("series %s OK = %v, want %v", s.Labels, s.OK, !s.OK)
				}
			}
		})
	}
}

func TestJudgeLabelsTextForm(t *testing.T) {
	v := model.Vector{{Metric: model.Metric{"__name__": "up", "job": "x", "instance": "a:1"}, Value: 1}}
	got := judge(probes.Probe{Op: probes.OpEQ, Threshold: f(1)}, v, probes.Result{})
	if want := `up{instance="a:1", job="x"}`; len(got.Series) != 1 || got.Series[0].Labels != want {
		t.Fatalf("Series = %+v, want labels %s", got.Series, want)
	}
}
