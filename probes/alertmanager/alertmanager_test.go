package alertmanager

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/internal/amtest"
)

func TestSilenceLifecycleOnARealAlertmanager(t *testing.T) {
	base := amtest.Start(t)
	c, err := New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.CreateSilence(ctx, map[string]string{"alertname": "PetClinicVisitsCallsFailing", "team": "petclinic"}, time.Now().Add(time.Hour), "chaosd run r-1: planned")
	if err != nil {
		t.Fatal(err)
	}
	s := amtest.Get(t, base, id)
	if s.Status.State != "active" || len(s.Matchers) != 2 || s.Comment != "chaosd run r-1: planned" {
		t.Fatalf("silence %+v, want active with 2 matchers", s)
	}
	if err := c.ExpireSilence(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s := amtest.Get(t, base, id); s.Status.State != "expired" {
		t.Fatalf("after expire: state %s", s.Status.State)
	}
	// Twice, or an unknown ID: already done, not an error.
	if err := c.ExpireSilence(ctx, id); err != nil {
		t.Errorf("expiring twice: %v", err)
	}
	if err := c.ExpireSilence(ctx, "00000000-0000-0000-0000-000000000000"); err != nil {
		t.Errorf("expiring an unknown silence: %v", err)
	}
}

func TestErrorsNameAlertmanager(t *testing.T) {
	if _, err := New("alertmanager:9093", nil); err == nil {
		t.Error("a URL without scheme was accepted")
	}
	c, _ := New("http://127.0.0.1:1", &http.Client{Timeout: time.Second})
	_, err := c.CreateSilence(context.Background(), map[string]string{"alertname": "A"}, time.Now().Add(time.Minute), "")
	if err == nil || !strings.Contains(err.Error(), "alertmanager at http://127.0.0.1:1") {
		t.Errorf("error %v does not name the Alertmanager", err)
	}
}
