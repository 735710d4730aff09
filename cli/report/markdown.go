package report

import (
	"io"
	"strings"

	"github.com/chaosd/chaosd/api"
)

// Markdown writes the report of r as Markdown (GitHub flavour): the same
// content as HTML, with tables in place of the picture: the verdict
// criteria, the measured times, each probe's range and when it was not
// healthy (from tl; nil or with its Error set says why that is missing),
// faults, alerts, silences, lost writes, probe rounds and events.
func Markdown(w io.Writer, r api.Run, tl *api.Timeline) error {
	d := newDocument(r, tl)
	p := &printer{w: w}
	p.printf("# %s: %s\n\n", md(d.Experiment), d.Verdict)
	run := "`" + d.RunID + "`"
	if d.RunNotes != "" {
		run += " (" + md(d.RunNotes) + ")"
	}
	p.printf("| | |\n|---|---|\n")
	p.printf("| Run | %s |\n", run)
	verdict := "**" + d.Verdict + "**"
	if d.Reason != "" {
		verdict += " — " + md(d.Reason)
	}
	p.printf("| Verdict | %s |\n", verdict)
	p.printf("| RTO | %s |\n", md(d.RTOLine))
	for _, f := range d.Facts[1:] { // the RTO is above
		v := f.Value
		if f.Detail != "" {
			v += " (" + f.Detail + ")"
		}
		p.printf("| %s | %s |\n", md(f.Label), md(v))
	}

	p.printf("\n## Verdict criteria\n\n")
	p.printf("| Criterion | Required | Measured | Result |\n|---|---|---|---|\n")
	for _, c := range d.Criteria {
		status := string(c.Status)
		if c.Status == StatusFail || c.Status == StatusError || c.Status == StatusAborted {
			status = "**" + status + "**"
		}
		p.printf("| %s | %s | %s | %s |\n", md(c.Name), md(c.Required), md(c.Measured), status)
	}

	p.printf("\n## Times\n\nOffsets from %s.\n\n", d.RefName)
	p.printf("| Moment | Time | Offset |\n|---|---|---:|\n")
	for _, t := range d.Times {
		p.printf("| %s | %s | %s |\n", t.Name, t.At, t.Offset)
	}

	p.printf("\n## Probes over time\n\n")
	if d.SeriesNote != "" {
		p.printf("_%s_\n\n", md(d.SeriesNote))
	}
	if len(d.Series) > 0 {
		if d.SeriesWindow != "" {
			p.printf("%s.\n\n", md(d.SeriesWindow))
		}
		p.printf("| Probe | Condition | Judged in | Min | Max | Not healthy during the run |\n|---|---|---|---:|---:|---|\n")
		for _, s := range d.Series {
			bad := s.Unhealthy
			if s.Error != "" {
				bad = "query failed: " + s.Error
			}
			p.printf("| %s | `%s` | %s | %s | %s | %s |\n", md(s.Name), code(s.Condition), md(s.Phases), s.Min, s.Max, md(bad))
		}
		p.printf("\nQueries:\n\n")
		for _, s := range d.Series {
			p.printf("- %s: `%s`\n", md(s.Name), code(s.Query))
		}
	}

	p.printf("\n## Faults\n\n")
	if len(d.Faults) == 0 {
		p.printf("None injected.\n")
	} else {
		p.printf("| Name | Kind | Node | Injected | Reverted | Verified |\n|---|---|---|---|---|---|\n")
		for _, f := range d.Faults {
			p.printf("| %s | %s | %s | %s | %s | %s |\n", md(f.Name), md(f.Kind), md(f.Node), f.Injected, md(f.Reverted), f.Verified)
		}
		if len(d.FaultNotes) > 0 {
			p.printf("\n")
			for _, n := range d.FaultNotes {
				p.printf("- %s\n", md(n))
			}
		}
	}

	if len(d.Alerts) > 0 {
		p.printf("\n## Alerts\n\n")
		p.printf("| Alert | Rule | Pending | Fired | Resolved | Time to alert | Silenced | Result |\n|---|---|---|---|---|---|---|---|\n")
		for _, a := range d.Alerts {
			res := a.Result
			if a.Reason != "" {
				res += " — " + md(a.Reason)
			}
			p.printf("| `%s` | %s | %s | %s | %s | %s | %s | %s |\n", code(a.Name), md(a.Kind), a.Pending, a.Fired, a.Resolved, a.TTA, a.Silenced, res)
		}
	}
	if len(d.Silences) > 0 {
		p.printf("\n## Alertmanager silences\n\n")
		p.printf("| Silence | Matchers | Created | Ends | Expired |\n|---|---|---|---|---|\n")
		for _, s := range d.Silences {
			exp := md(s.Expired)
			if s.Error != "" {
				exp += " — " + md(s.Error)
			}
			p.printf("| `%s` | `%s` | %s | %s | %s |\n", code(s.ID), code(s.Matchers), s.Created, s.Ends, exp)
		}
	}
	if dl := d.DataLoss; dl != nil {
		p.printf("\n## Data loss (RPO)\n\n")
		p.printf("| | |\n|---|---|\n")
		p.printf("| RPO target | %s |\n| Writes / acknowledged / lost | %s / %s / %s |\n", dl.Target, dl.Writes, dl.Acknowledged, dl.Lost)
		p.printf("| Lost writes acknowledged | %s to %s |\n| Measured RPO | %s |\n", dl.FirstLost, dl.LastLost, dl.Measured)
		if dl.Error != "" {
			p.printf("| Error | %s |\n", md(dl.Error))
		}
	}

	p.printf("\n## Probe rounds per phase\n\n")
	if len(d.Probes) == 0 {
		p.printf("None evaluated.\n")
	} else {
		p.printf("| Phase | Probe | Condition | Evaluations | Failures | Last |\n|---|---|---|---:|---:|---|\n")
		for _, pr := range d.Probes {
			p.printf("| %s | %s | `%s` | %d | %d | %s |\n", pr.Phase, md(pr.Probe), code(pr.Condition), pr.Evaluations, pr.Failures, md(pr.Last))
		}
	}

	p.printf("\n## Events\n\n")
	if len(d.Events) == 0 {
		p.printf("None.\n")
	} else {
		p.printf("| Time | Offset | Phase | Message |\n|---|---:|---|---|\n")
		for _, e := range d.Events {
			p.printf("| %s | %s | %s | %s |\n", e.At, e.Offset, e.Phase, md(e.Message))
		}
	}
	return p.err
}

// mdEscaper keeps text from turning into Markdown (or breaking a table).
// Underscores inside words are plain text in GitHub's Markdown, and
// metric names are full of them: they stay.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "*", `\*`, "`", "\\`", "<", "&lt;", "[", `\[`, "]", `\]`,
	"\r\n", " ", "\n", " ",
)

func md(s string) string { return mdEscaper.Replace(s) }

// code prepares text for a code span in a table cell: a pipe still ends
// the cell in GitHub's tables, backticks would end the span.
func code(s string) string {
	s = strings.NewReplacer("|", `\|`, "`", "'", "\r\n", " ", "\n", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}
