package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chaosd/chaosd/lab/petclinic"
	"github.com/chaosd/chaosd/lab/truth"
)

func TestSucceeded(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"visits", 200, `{"id":1,"pets":[{"id":1,"visits":[{"id":1}]}]}`, true},
		{"fallback hides failure", 200, `{"id":1,"pets":[{"id":1,"visits":[]}]}`, false},
		{"one pet without visits", 200, `{"id":3,"pets":[{"id":3,"visits":[{"id":5}]},{"id":4,"visits":[]}]}`, false},
		{"no pets", 200, `{"id":1,"pets":[]}`, false},
		{"server error", 500, `{}`, false},
		{"garbage", 200, `<html>`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Succeeded(tt.status, strings.NewReader(tt.body)); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestRunWritesGroundTruth(t *testing.T) {
	// A real stack: customers, visits, gateway; visits goes away half-way.
	newSrv := func(cfg petclinic.Config) *httptest.Server {
		s, err := petclinic.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		return ts
	}
	cs := newSrv(petclinic.DefaultConfig(petclinic.CustomersService))
	vc := petclinic.DefaultConfig(petclinic.VisitsService)
	vc.CustomersURL = cs.URL
	vs := newSrv(vc)
	var broken atomic.Bool
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "down", 500)
			return
		}
		resp, err := http.Get(vs.URL + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 64<<10)
		n, _ := resp.Body.Read(buf)
		w.Write(buf[:n])
	}))
	defer flaky.Close()
	gc := petclinic.DefaultConfig(petclinic.APIGateway)
	gc.CustomersURL, gc.VisitsURL = cs.URL, flaky.URL
	gw := newSrv(gc)

	o := DefaultOptions()
	o.Target, o.Truth, o.Duration = gw.URL, filepath.Join(t.TempDir(), "truth.csv"), 2500*time.Millisecond
	time.AfterFunc(1500*time.Millisecond, func() { broken.Store(true) })
	if err := Run(context.Background(), o, nil); err != nil {
		t.Fatal(err)
	}
	secs, err := truth.Read(o.Truth)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) < 2 || len(secs) > 4 {
		t.Fatalf("%d seconds written, want 2..4: %+v", len(secs), secs)
	}
	var ok, failed int
	for _, s := range secs {
		ok += s.OK
		failed += s.Failed
	}
	if ok < 15 || failed < 5 || ok+failed < 40 || ok+failed > 55 {
		t.Fatalf("ok=%d failed=%d, want ~30 ok then ~20 failed at 20 rps", ok, failed)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	o := DefaultOptions()
	o.Target, o.Truth = "http://127.0.0.1:1", filepath.Join(t.TempDir(), "truth.csv")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Run(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	secs, err := truth.Read(o.Truth)
	if err != nil || len(secs) == 0 || secs[len(secs)-1].OK != 0 {
		t.Fatalf("secs %+v err %v", secs, err)
	}
}
