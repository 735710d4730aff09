package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"

	"github.com/chaosd/chaosd/api"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":   num,
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
}).Parse(htmlSource))

// HTML writes the report of r as one self-contained HTML page (inline CSS
// and SVG; no script, font or image is fetched): the verdict, the RTO
// against its target, a timeline of the faults, the probes' values (from
// tl), the RTO, alerts, silences and lost writes with the fault window and
// the measured moments marked, the verdict criteria, and the tables of the
// text report. tl nil, or with its Error set, draws the timeline from the
// record alone and says why the curves are missing.
func HTML(w io.Writer, r api.Run, tl *api.Timeline) error {
	if err := htmlTemplate.Execute(w, newDocument(r, tl)); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
