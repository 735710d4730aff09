package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/chaosd/chaosd/lab/alertsink"
)

func TestAlertsCommand(t *testing.T) {
	dir := t.TempDir()
	s, err := alertsink.Open(filepath.Join(dir, "alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	for _, a := range []alertsink.WebhookAlert{
		{Status: "firing", Labels: model.LabelSet{"alertname": "PetClinicVisitsCallsFailing", "severity": "page", "cluster": "c1"}, StartsAt: start},
		{Status: "resolved", Labels: model.LabelSet{"alertname": "PetClinicVisitsCallsFailing", "severity": "page", "cluster": "c1"},
			StartsAt: start, EndsAt: start.Add(20 * time.Second)},
	} {
		if err := s.Record(&alertsink.Webhook{Receiver: "lab-webhook", Alerts: []alertsink.WebhookAlert{a}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"table", nil, []string{"STATUS", "#1  ", "firing", "resolved", "PetClinicVisitsCallsFailing", "2026-12-01T10:00:01.000Z",
			"2026-12-01T10:00:21.000Z", "cluster=c1,severity=page"}},
		{"json", []string{"--json"}, []string{`"seq":2`, `"status":"resolved"`, `"alertname":"PetClinicVisitsCallsFailing"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			root := newRootCommand(&out, &errb)
			root.SetArgs(append([]string{"alerts", "--state-dir", dir}, tc.args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	root := newRootCommand(&out, &out)
	empty := t.TempDir()
	root.SetArgs([]string{"alerts", "--state-dir", empty})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "no notifications yet") {
		t.Errorf("empty lab: %v %q", err, out.String())
	}
}
