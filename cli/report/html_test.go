package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/internal/chromiumtest"
)

// pageCases are the runs the HTML and Markdown goldens show.
func pageCases() []struct {
	name string
	run  api.Run
	tl   *api.Timeline
} {
	return []struct {
		name string
		run  api.Run
		tl   *api.Timeline
	}{
		{"pass", passRun(), passTimeline()},
		{"checks", checksRun(), passTimeline()},
		{"fail-prometheus-down", failRun(), unavailable()},
		{"running-record-only", runningRun(), nil},
		{"preflight-error", api.Run{
			ID: "r-2", Experiment: "partition-c1-c2", Trigger: api.TriggerSchedule, Phase: api.PhaseDone,
			Verdict: api.VerdictError, Reason: "preflight: Prometheus unreachable", CreatedAt: t0, FinishedAt: at(1),
			Times:  api.Times{Started: at(0.2)},
			RTO:    api.RTO{TargetSeconds: 900, ResolutionSeconds: 1},
			Events: []api.Event{{Time: *at(0.2), Phase: api.PhasePreflight, Message: "checking Prometheus, targets and agents"}},
		}, &api.Timeline{RunID: "r-2", Start: *at(-29.8), End: *at(6), StepSeconds: 1, Series: []api.ProbeSeries{}}},
	}
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./cli/report -update if intended)\ngot:\n%s", path, got)
	}
}

func TestHTMLGolden(t *testing.T) {
	for _, tt := range pageCases() {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := HTML(&buf, tt.run, tt.tl); err != nil {
				t.Fatal(err)
			}
			selfContained(t, buf.String())
			golden(t, tt.name+".html.golden", buf.Bytes())
		})
	}
}

// selfContained fails when the page would fetch anything or run script.
func selfContained(t *testing.T, page string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script`), regexp.MustCompile(`(?i)<link`), regexp.MustCompile(`(?i)<img`),
		regexp.MustCompile(`(?i)<iframe`), regexp.MustCompile(`(?i)\s(src|href|xlink:href)=`),
		regexp.MustCompile(`(?i)@import`), regexp.MustCompile(`url\((?:[^#)]|$)`),
	} {
		if loc := re.FindStringIndex(page); loc != nil {
			t.Errorf("page is not self-contained: %q at %d", page[loc[0]:min(loc[1]+40, len(page))], loc[0])
		}
	}
}

func TestMarkdownGolden(t *testing.T) {
	for _, tt := range pageCases() {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Markdown(&buf, tt.run, tt.tl); err != nil {
				t.Fatal(err)
			}
			tablesWellFormed(t, buf.String())
			golden(t, tt.name+".md.golden", buf.Bytes())
		})
	}
}

// tablesWellFormed checks that every row of every Markdown table has as
// many cells as its header (an unescaped pipe in a value would add one).
func tablesWellFormed(t *testing.T, doc string) {
	t.Helper()
	cells := func(line string) int {
		n := 0
		for i := 0; i < len(line); i++ {
			if line[i] == '\\' {
				i++
				continue
			}
			if line[i] == '|' {
				n++
			}
		}
		return n - 1
	}
	want := 0
	for i, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = 0
			continue
		}
		if want == 0 {
			want = cells(line)
			continue
		}
		if got := cells(line); got != want {
			t.Errorf("line %d has %d cells, its table %d: %s", i+1, got, want, line)
		}
	}
}

func TestMarkdownEscapes(t *testing.T) {
	r := passRun()
	r.Reason = "a | b *c* `d` <e> [f](g)"
	var buf bytes.Buffer
	if err := Markdown(&buf, r, nil); err != nil {
		t.Fatal(err)
	}
	if want := "a \\| b \\*c\\* \\`d\\` &lt;e> \\[f\\](g)"; !strings.Contains(buf.String(), want) {
		t.Errorf("reason not escaped as %q:\n%s", want, buf.String())
	}
	tablesWellFormed(t, buf.String())
}

// TestIntegrationHTMLInChromium loads the report in a real headless
// Chromium: the page parses, lays out and shows the verdict, the RTO, the
// probes and the timeline with its fault window; and it renders (a
// screenshot, kept in $CHAOSD_REPORT_SCREENSHOTS when set, for a human to
// look at).
func TestIntegrationHTMLInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromiumtest.Binary(t)
	shots := os.Getenv("CHAOSD_REPORT_SCREENSHOTS")
	for _, tt := range []struct {
		name string
		run  api.Run
		tl   *api.Timeline
		want []string
	}{
		{"pass", passRun(), passTimeline(), []string{
			`id="verdict">PASS<`, "42.0s", "target 15m0s", "4.7% of the target",
			"owner-details-breaker-closed", "gateway-to-visits-success", "gateway-success", "gateway-mostly-failing",
			`<svg class="timeline"`, `<rect class="window"`, `<path class="curve ok"`, `<path class="curve fail"`,
			`class="threshold"`, "first impact +2.0s", "recovered +44.0s", "Verdict criteria", "RTO within target",
		}},
		{"checks", checksRun(), passTimeline(), []string{
			`id="verdict">FAIL<`, "VisitsUnreachable", "GatewayDown (forbidden): fired at +25.0s", "silence alertname=",
			"2 acknowledged writes lost", "RPO within target", `<rect class="firing silenced"`,
		}},
		{"prometheus-down", failRun(), unavailable(), []string{
			`id="verdict">FAIL<`, "not recovered", "probe curves unavailable: prometheus unreachable",
			`<svg class="timeline"`, `<rect class="window"`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			page := filepath.Join(dir, "report.html")
			f, err := os.Create(page)
			if err != nil {
				t.Fatal(err)
			}
			if err := HTML(f, tt.run, tt.tl); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			dom := chromiumtest.DumpDOM(t, page)
			for _, want := range tt.want {
				if !strings.Contains(dom, want) {
					t.Errorf("rendered DOM lacks %q", want)
				}
			}
			if t.Failed() {
				t.Logf("DOM:\n%s", dom)
			}
			png := filepath.Join(dir, "report.png")
			if shots != "" {
				png = filepath.Join(shots, "report-"+tt.name+".png")
			}
			chromiumtest.Screenshot(t, page, png, 1200, 2400)
		})
	}
}
