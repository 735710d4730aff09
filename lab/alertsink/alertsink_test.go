package alertsink

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A notification as Alertmanager 0.25's webhook_config posts it.
const firingAndResolved = `{
  "version": "4", "groupKey": "{}:{alertname=\"PetClinicVisitsCallsFailing\"}", "truncatedAlerts": 0,
  "status": "firing", "receiver": "lab-webhook",
  "groupLabels": {"alertname": "PetClinicVisitsCallsFailing"},
  "commonLabels": {"alertname": "PetClinicVisitsCallsFailing", "severity": "page"},
  "commonAnnotations": {}, "externalURL": "http://10.254.0.2:9093",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "PetClinicVisitsCallsFailing", "severity": "page", "cluster": "c1"},
     "annotations": {"summary": "visits calls failing"}, "startsAt": "2026-12-01T10:00:01.5Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://10.254.0.2:9090/graph", "fingerprint": "aa"},
    {"status": "resolved", "labels": {"alertname": "PetClinicVisitsCallsFailing", "severity": "page", "cluster": "c2"},
     "annotations": {}, "startsAt": "2026-12-01T09:59:00Z", "endsAt": "2026-12-01T10:00:00Z", "fingerprint": "bb"}
  ]
}`

func TestSinkRecordsEveryAlertOfEveryNotification(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 3, 0, time.UTC)
	s.now = func() time.Time { return now }
	srv := httptest.NewServer(s)
	defer srv.Close()
	for i := 0; i < 2; i++ {
		resp, err := http.Post(srv.URL+Path, "application/json", strings.NewReader(firingAndResolved))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: HTTP %d", resp.StatusCode)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ns, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 4 {
		t.Fatalf("%d notifications recorded, want 4 (2 alerts x 2 posts): %+v", len(ns), ns)
	}
	n := ns[0]
	if n.Seq != 1 || ns[2].Seq != 2 || !n.Received.Equal(now) || n.Alertname != "PetClinicVisitsCallsFailing" || !n.Firing() ||
		n.Labels["cluster"] != "c1" || n.Labels["severity"] != "page" || n.Annotations["summary"] != "visits calls failing" ||
		!n.StartsAt.Equal(time.Date(2026, 12, 1, 10, 0, 1, 5e8, time.UTC)) || n.Receiver != "lab-webhook" || n.Fingerprint != "aa" {
		t.Errorf("first notification %+v", n)
	}
	r := ns[1]
	if r.Firing() || r.Status != "resolved" || !r.EndsAt.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("resolved alert %+v", r)
	}
	if got := Of(ns, "PetClinicVisitsCallsFailing", "resolved"); len(got) != 2 {
		t.Errorf("Of resolved: %d, want 2", len(got))
	}

	// Reopened (the sink restarted), it numbers on.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Record(&Webhook{Alerts: []WebhookAlert{{Status: "firing"}}}); err != nil {
		t.Fatal(err)
	}
	if ns, _ = Read(path); len(ns) != 5 || ns[4].Seq != 3 {
		t.Errorf("after a restart: %d lines, last seq %d; want 5 and 3", len(ns), ns[len(ns)-1].Seq)
	}
}

func TestSinkRefuses(t *testing.T) {
	var buf bytes.Buffer
	srv := httptest.NewServer(New(&buf, nil))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"not json", "POST", Path, "{", http.StatusBadRequest},
		{"too big", "POST", Path, `{"receiver":"` + strings.Repeat("x", MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"get", "GET", Path, "", http.StatusMethodNotAllowed},
		{"elsewhere", "POST", "/other", "{}", http.StatusNotFound},
		{"health", "GET", "/healthz", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if buf.Len() != 0 {
		t.Errorf("refused requests were recorded: %s", buf.String())
	}
}

func TestDecode(t *testing.T) {
	good := `{"seq":1,"alertname":"A","status":"firing"}` + "\n"
	for _, tc := range []struct {
		name, in string
		want     int
		err      bool
	}{
		{"empty", "", 0, false},
		{"one", good, 1, false},
		{"last line cut short (being written)", good + `{"seq":2,"alertn`, 1, false},
		{"bad line in the middle", good + "nope\n" + good, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := Decode(strings.NewReader(tc.in))
			if (err != nil) != tc.err || len(ns) != tc.want {
				t.Errorf("Decode: %d notifications, err %v; want %d, error %v", len(ns), err, tc.want, tc.err)
			}
		})
	}
	if ns, err := Read(filepath.Join(t.TempDir(), "missing")); err != nil || ns != nil {
		t.Errorf("missing file: %v %v", ns, err)
	}
}
