package experiments

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"
)

// Defaults and limits of spec.dataLoss.
const (
	// DefaultDataLossInterval is spec.dataLoss.interval when left out.
	DefaultDataLossInterval = time.Second
	// DefaultDataLossLeadIn is spec.dataLoss.leadIn when left out.
	DefaultDataLossLeadIn = 10 * time.Second
	// DefaultDataLossTimeout is spec.dataLoss.timeout when left out.
	DefaultDataLossTimeout = 2 * time.Second
	// MinDataLossInterval is the shortest write interval accepted.
	MinDataLossInterval = 100 * time.Millisecond
	// MaxDataLossTimeout is the longest request timeout accepted.
	MaxDataLossTimeout = 30 * time.Second
)

// DataLoss is the data-loss (RPO) check. From the steady-state phase (LeadIn
// before the inject) until the revert, chaosd itself makes one write every
// Interval, each carrying a unique marker, and remembers when the system
// acknowledged it (a 2xx answer). After recovery it reads the records back
// once: an acknowledged write whose marker the read does not return is
// lost. The measured RPO is the span from the earliest to the latest lost
// write's acknowledgement (0 when none was lost), judged against
// spec.recovery.rpo. A write that was not acknowledged (timeout, 5xx,
// refused) is no loss: the client was told it failed.
//
// The requests are templates (Go text/template) over [DataLossVars]:
// Write must use {{.Marker}} in its url or body; Read must not (it reads
// every write at once). For Spring PetClinic through the api-gateway:
//
//	write:
//	  url: http://api-gateway:8080/api/visit/owners/1/pets/1/visits
//	  body: '{"date":"{{.Date}}","description":"RPO check {{.Marker}}"}'
//	read:
//	  url: http://api-gateway:8080/api/visit/pets/visits?petId=1
type DataLoss struct {
	// Write is the request that makes one write.
	Write DataRequest `yaml:"write" json:"write"`
	// Read is the request that reads the writes back; its answer (2xx)
	// must contain the marker of every write the system kept, verbatim.
	Read DataRequest `yaml:"read" json:"read"`
	// Interval between writes (default 1s, at least 100ms). It is the
	// resolution of the measured RPO.
	Interval Duration `yaml:"interval,omitempty" json:"interval"`
	// LeadIn is how long before the inject writing starts (default 10s, at
	// least one interval): the writes at risk when the fault starts.
	LeadIn Duration `yaml:"leadIn,omitempty" json:"leadIn"`
	// Timeout bounds each request (default 2s, at most 30s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout"`
}

// DataRequest is one HTTP request of the data-loss check. URL, Body and
// header values are templates over [DataLossVars].
type DataRequest struct {
	// Method defaults to POST for write and GET for read.
	Method string `yaml:"method,omitempty" json:"method"`
	URL    string `yaml:"url" json:"url"`
	// Headers to send; with a body and no Content-Type header, chaosd
	// sends Content-Type: application/json.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
}

// DataLossVars are what the templates of spec.dataLoss see.
type DataLossVars struct {
	// Marker is unique to one write of one run ("chaosd-RUNID-wSEQ"):
	// the read-back looks for it. Empty when the read is rendered.
	Marker string
	// Seq numbers the writes of a run from 1 (0 for the read).
	Seq int
	// RunID is the run's ID.
	RunID string
	// Date (yyyy-MM-dd) and Time (RFC 3339) are when the request is made, in UTC.
	Date string
	Time string
}

// NewDataLossVars returns the variables of the write seq of run runID at
// t; seq 0 is the read (no marker).
func NewDataLossVars(runID string, seq int, t time.Time) DataLossVars {
	v := DataLossVars{Seq: seq, RunID: runID, Date: t.UTC().Format(time.DateOnly), Time: t.UTC().Format(time.RFC3339)}
	if seq > 0 {
		v.Marker = DataLossMarker(runID, seq)
	}
	return v
}

// DataLossMarker is the marker of write seq of run runID. A marker is
// only letters, digits and '-', so it survives JSON, HTML and URL
// encoding unchanged.
func DataLossMarker(runID string, seq int) string {
	return fmt.Sprintf("%s%d", dataLossMarkerPrefix(runID), seq)
}

func dataLossMarkerPrefix(runID string) string { return "chaosd-" + runID + "-w" }

// FindDataLossMarkers returns the sequence numbers of run runID's markers
// found in body (a marker's digits end at the first non-digit, so w1 is
// not found inside w12).
func FindDataLossMarkers(body []byte, runID string) map[int]bool {
	prefix := []byte(dataLossMarkerPrefix(runID))
	found := map[int]bool{}
	for {
		i := bytes.Index(body, prefix)
		if i < 0 {
			return found
		}
		body = body[i+len(prefix):]
		n, digits := 0, 0
		for digits < len(body) && digits < 9 && body[digits] >= '0' && body[digits] <= '9' {
			n = n*10 + int(body[digits]-'0')
			digits++
		}
		if digits > 0 && (digits == len(body) || body[digits] < '0' || body[digits] > '9') {
			found[n] = true
		}
	}
}

// Render fills the request's templates with vars.
func (r DataRequest) Render(vars DataLossVars) (DataRequest, error) {
	out := DataRequest{Method: r.Method}
	var err error
	if out.URL, err = renderTemplate("url", r.URL, vars); err != nil {
		return out, err
	}
	if out.Body, err = renderTemplate("body", r.Body, vars); err != nil {
		return out, err
	}
	if len(r.Headers) > 0 {
		out.Headers = make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			if out.Headers[k], err = renderTemplate("headers."+k, v, vars); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func renderTemplate(name, text string, vars DataLossVars) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

// dataLossDefaults fills spec.dataLoss's fields left out.
func dataLossDefaults(d *DataLoss, written func(field string) bool) {
	if d.Interval == 0 && !written("interval") {
		d.Interval = Duration(DefaultDataLossInterval)
	}
	if d.LeadIn == 0 && !written("leadIn") {
		d.LeadIn = Duration(DefaultDataLossLeadIn)
	}
	if d.Timeout == 0 && !written("timeout") {
		d.Timeout = Duration(DefaultDataLossTimeout)
	}
	if d.Write.Method == "" && !written("write.method") {
		d.Write.Method = http.MethodPost
	}
	if d.Read.Method == "" && !written("read.method") {
		d.Read.Method = http.MethodGet
	}
}

// sampleVars stand for a real write when templates are checked.
var sampleVars = NewDataLossVars("r-20060102-150405-abcdef", 1, time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC))

func (v *validator) dataLoss(d *DataLoss) {
	const path = "spec.dataLoss"
	switch {
	case d.Interval.D() < MinDataLossInterval:
		v.addf(path+".interval", "must be at least %s, not %s", Duration(MinDataLossInterval), d.Interval)
	case d.LeadIn < d.Interval:
		v.addf(path+".leadIn", "must be at least one write interval (%s), not %s: the check needs writes acknowledged before the fault", d.Interval, d.LeadIn)
	}
	switch {
	case d.Timeout <= 0:
		v.addf(path+".timeout", "must be > 0, not %s", d.Timeout)
	case d.Timeout.D() > MaxDataLossTimeout:
		v.addf(path+".timeout", "must be at most %s, not %s", Duration(MaxDataLossTimeout), d.Timeout)
	}
	if out, ok := v.dataRequest(path+".write", d.Write, []string{http.MethodPost, http.MethodPut, http.MethodPatch}); ok &&
		!strings.Contains(out.URL, sampleVars.Marker) && !strings.Contains(out.Body, sampleVars.Marker) {
		v.addf(path+".write", "the url or the body must carry {{.Marker}}: it is how a write is found again when read back")
	}
	read := sampleVars
	read.Marker, read.Seq = "", 0
	// A read that used the marker would render it empty: catch that by
	// rendering with a marker that must not show.
	probe := read
	probe.Marker = sampleVars.Marker
	if _, ok := v.dataRequest(path+".read", d.Read, []string{http.MethodGet, http.MethodPost}); ok {
		if out, err := d.Read.Render(probe); err == nil &&
			(strings.Contains(out.URL, probe.Marker) || strings.Contains(out.Body, probe.Marker) || headersContain(out.Headers, probe.Marker)) {
			v.addf(path+".read", "must not use {{.Marker}}: one read returns every write")
		}
	}
}

func headersContain(h map[string]string, s string) bool {
	for _, v := range h {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// dataRequest checks one request: method, templates that render, a URL
// that is absolute http(s). It returns the request rendered with sample
// values when all of it renders.
func (v *validator) dataRequest(path string, r DataRequest, methods []string) (DataRequest, bool) {
	if !slices.Contains(methods, r.Method) {
		v.addf(path+".method", "must be one of %s, not %q", strings.Join(methods, ", "), r.Method)
	}
	ok := true
	render := func(field, text string) string {
		out, err := renderTemplate(field, text, sampleVars)
		if err != nil {
			v.addf(path+"."+field, "template: %s", templateErr(err))
			ok = false
		}
		return out
	}
	if strings.TrimSpace(r.URL) == "" {
		v.addf(path+".url", "required: an absolute http or https URL")
		ok = false
	} else if u := render("url", r.URL); ok {
		switch pu, err := url.Parse(u); {
		case err != nil:
			v.addf(path+".url", "%q is not a URL: %v", u, err)
			ok = false
		case (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
			v.addf(path+".url", "%q: want an absolute http or https URL", u)
			ok = false
		}
	}
	render("body", r.Body)
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case strings.TrimSpace(k) == "" || strings.ContainsAny(k, " :\t\r\n"):
			v.addf(path+".headers", "%q is not a header name", k)
			ok = false
		case strings.ContainsAny(r.Headers[k], "\r\n"):
			v.addf(joinPath(path+".headers", k), "must be one line")
			ok = false
		default:
			render(joinPath("headers", k), r.Headers[k])
		}
	}
	if !ok {
		return DataRequest{}, false
	}
	out, err := r.Render(sampleVars)
	return out, err == nil
}

// templateErr drops text/template's "template: NAME:" prefix; the field
// path already names the place.
func templateErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "can't evaluate field "); i >= 0 {
		f, _, _ := strings.Cut(s[i+len("can't evaluate field "):], " ")
		return fmt.Sprintf("unknown field .%s (want .Marker, .Seq, .RunID, .Date or .Time)", f)
	}
	s = strings.TrimPrefix(s, "template: ")
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
