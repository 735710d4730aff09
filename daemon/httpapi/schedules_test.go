package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
)

func (s *svc) Schedules(context.Context) ([]api.ScheduleInfo, error) {
	return []api.ScheduleInfo{{Experiment: "e", Cron: "30 2 * * *", TimeZone: "Europe/Berlin", MissedRuns: "skip",
		Next: []api.FireTime{{Time: time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), Frozen: "easter"}}}}, nil
}

func (s *svc) PauseSchedule(_ context.Context, name string, paused bool) (api.ScheduleInfo, error) {
	if name != "e" {
		return api.ScheduleInfo{}, Errorf(http.StatusNotFound, "unknown experiment %q", name)
	}
	return api.ScheduleInfo{Experiment: name, Paused: paused}, nil
}

// TestScheduleRoutes: GET /v1/schedules needs read, pause and resume need
// run; unknown names are 404; the answers are ScheduleInfo.
func TestScheduleRoutes(t *testing.T) {
	var st StaticTokens
	st.Add("r", ScopeRead, "token file read")
	st.Add("x", ScopeRun, "token file run")
	srv := httptest.NewServer(Handler(&svc{runs: map[string]api.Run{}}, Options{Auth: &st}))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		want                      string
	}{
		{"read: list", "GET", "/v1/schedules", "r", 200, `"frozen": "easter"`},
		{"read: pause refused", "POST", "/v1/schedules/e/pause", "r", 403, `needs scope \"run\"`},
		{"read: resume refused", "POST", "/v1/schedules/e/resume", "r", 403, `needs scope \"run\"`},
		{"run: pause", "POST", "/v1/schedules/e/pause", "x", 200, `"paused": true`},
		{"run: resume", "POST", "/v1/schedules/e/resume", "x", 200, `"paused": false`},
		{"unknown", "POST", "/v1/schedules/nope/pause", "x", 404, `unknown experiment \"nope\"`},
		{"name too long", "POST", "/v1/schedules/" + strings.Repeat("n", 300) + "/pause", "x", 404, "not found"},
		{"GET pause", "GET", "/v1/schedules/e/pause", "x", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s; want %d containing %q", resp.StatusCode, b, tc.status, tc.want)
			}
			if tc.status == 200 && tc.method == "POST" {
				var info api.ScheduleInfo
				if err := json.Unmarshal(b, &info); err != nil || info.Experiment != "e" {
					t.Fatalf("answer %s is not a ScheduleInfo: %v", b, err)
				}
			}
		})
	}
}
