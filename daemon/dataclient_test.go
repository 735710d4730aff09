package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/experiments"
)

func TestDataClient(t *testing.T) {
	var got struct{ method, path, ctype, idem, body string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/visits", http.StatusFound)
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		default:
			got.method, got.path, got.ctype, got.idem, got.body = r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), string(b)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":42}`)
		}
	}))
	defer srv.Close()
	c := newDataClient()
	ctx := context.Background()

	status, body, err := c.Do(ctx, experiments.DataRequest{Method: "POST", URL: srv.URL + "/api/visit/owners/1/pets/1/visits",
		Headers: map[string]string{"Idempotency-Key": "chaosd-r-1-w1"}, Body: `{"description":"chaosd-r-1-w1"}`})
	if err != nil || status != http.StatusCreated || string(body) != `{"id":42}` {
		t.Fatalf("write: %d %q %v", status, body, err)
	}
	if got.method != "POST" || got.path != "/api/visit/owners/1/pets/1/visits" || got.ctype != "application/json" ||
		got.idem != "chaosd-r-1-w1" || got.body != `{"description":"chaosd-r-1-w1"}` {
		t.Errorf("server saw %+v", got)
	}

	// A redirect is no acknowledgement: it is not followed.
	if status, _, err := c.Do(ctx, experiments.DataRequest{Method: "POST", URL: srv.URL + "/moved", Body: "{}"}); err != nil || status != http.StatusFound {
		t.Errorf("redirect: %d %v, want 302 answered as is", status, err)
	}

	// The caller's context bounds a request.
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Do(tctx, experiments.DataRequest{Method: "GET", URL: srv.URL + "/slow"}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("slow answer: %v, want a deadline error", err)
	}
}
