// Package alertsink is the lab's Alertmanager webhook receiver: it
// records every alert of every notification Alertmanager sends as one
// JSON line in a file, so tests and `chaoslab alerts` can see what an
// on-call engineer would have been paged with, and when.
package alertsink

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/common/model"
)

// MaxBody bounds one webhook request (Alertmanager's default
// max_alerts is unlimited; 1 MiB holds thousands of alerts).
const MaxBody = 1 << 20

// Path is where Alertmanager posts notifications.
const Path = "/alerts"

// Webhook is the body Alertmanager's webhook_config posts (version 4).
type Webhook struct {
	Version           string         `json:"version"`
	GroupKey          string         `json:"groupKey"`
	TruncatedAlerts   int            `json:"truncatedAlerts"`
	Status            string         `json:"status"`
	Receiver          string         `json:"receiver"`
	GroupLabels       model.LabelSet `json:"groupLabels"`
	CommonLabels      model.LabelSet `json:"commonLabels"`
	CommonAnnotations model.LabelSet `json:"commonAnnotations"`
	ExternalURL       string         `json:"externalURL"`
	Alerts            []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert in a webhook notification.
type WebhookAlert struct {
	Status       string         `json:"status"` // firing or resolved
	Labels       model.LabelSet `json:"labels"`
	Annotations  model.LabelSet `json:"annotations"`
	StartsAt     time.Time      `json:"startsAt"`
	EndsAt       time.Time      `json:"endsAt"`
	GeneratorURL string         `json:"generatorURL"`
	Fingerprint  string         `json:"fingerprint"`
}

// Notification is one alert as delivered in one webhook notification:
// one line of the sink's file. Alerts delivered together share Seq.
type Notification struct {
	// Received is when the sink got the notification.
	Received time.Time `json:"received"`
	// Seq numbers the notifications the sink received (from 1).
	Seq      int    `json:"seq"`
	Receiver string `json:"receiver"`
	GroupKey string `json:"groupKey"`
	// Alertname is Labels["alertname"].
	Alertname   string            `json:"alertname"`
	Status      string            `json:"status"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	// EndsAt is when a resolved alert ended; for a firing one it is when
	// Alertmanager will consider it resolved unless it hears again.
	EndsAt      time.Time `json:"endsAt"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

// Firing reports whether the alert was firing in that notification.
func (n Notification) Firing() bool { return n.Status == string(model.AlertFiring) }

// Sink records notifications to a writer, one JSON line per alert.
type Sink struct {
	mu     sync.Mutex
	w      io.Writer
	seq    int
	now    func() time.Time
	closer io.Closer
}

// New returns a sink writing to w (an O_APPEND file: each notification
// is one write). now may be nil (time.Now).
func New(w io.Writer, now func() time.Time) *Sink {
	if now == nil {
		now = time.Now
	}
	return &Sink{w: w, now: now}
}

// Open returns a sink appending to the file at path (created 0600),
// numbering on from the notifications it already holds.
func Open(path string) (*Sink, error) {
	prev, err := Read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open alerts file: %w", err)
	}
	s := New(f, nil)
	s.closer = f
	if len(prev) > 0 {
		s.seq = prev[len(prev)-1].Seq
	}
	return s, nil
}

// Close closes the file Open opened.
func (s *Sink) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

// Record writes the alerts of one notification received at the time
// now returns.
func (s *Sink) Record(msg *Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	recv := s.now().UTC()
	var buf []byte
	for _, a := range msg.Alerts {
		n := Notification{
			Received: recv, Seq: s.seq, Receiver: msg.Receiver, GroupKey: msg.GroupKey,
			Alertname: string(a.Labels[model.AlertNameLabel]), Status: a.Status,
			Labels: labelMap(a.Labels), Annotations: labelMap(a.Annotations),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, Fingerprint: a.Fingerprint,
		}
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("encode notification: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	return nil
}

func labelMap(ls model.LabelSet) map[string]string {
	if len(ls) == 0 {
		return nil
	}
	m := make(map[string]string, len(ls))
	for k, v := range ls {
		m[string(k)] = string(v)
	}
	return m
}

// ServeHTTP accepts Alertmanager's webhook POSTs at Path and answers
// /healthz.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz" && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, "ok\n")
		return
	case r.URL.Path != Path:
		http.NotFound(w, r)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var msg Webhook
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	if err := dec.Decode(&msg); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "decode webhook: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.Record(&msg); err != nil {
		// A 5xx makes Alertmanager retry the notification.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Read returns every notification recorded in path, in the order they
// were received. A missing file is no notification yet.
func Read(path string) ([]Notification, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads notification lines. A last line cut short (the sink was
// writing it) is left out; any other bad line is an error.
func Decode(r io.Reader) ([]Notification, error) {
	var out []Notification
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxBody)
	var pendingErr error
	line := 0
	for sc.Scan() {
		line++
		if pendingErr != nil {
			return nil, pendingErr
		}
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var n Notification
		if err := json.Unmarshal(b, &n); err != nil {
			pendingErr = fmt.Errorf("line %d: %w", line, err)
			continue
		}
		out = append(out, n)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Of returns the notifications of alertname with the given status
// ("" = any).
func Of(ns []Notification, alertname, status string) []Notification {
	var out []Notification
	for _, n := range ns {
		if n.Alertname == alertname && (status == "" || n.Status == status) {
			out = append(out, n)
		}
	}
	return out
}
