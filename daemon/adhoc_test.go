package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/daemon/runquery"
	"github.com/chaosd/chaosd/daemon/store"
)

// TestDaemonAdHocRun: chaosd runs an experiment that came with the
// request through the runner like a library one (here it stops at
// preflight: no Prometheus), its record on disk keeps the spec byte for
// byte and says it was ad hoc, a name of the library is refused, and
// lists filter on it.
func TestDaemonAdHocRun(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	ctx := context.Background()
	spec := "# sent by chaosctl run -f\n" + fmt.Sprintf(testExperiment, "my-cut", "2s", "")

	run, err := h.startRun(api.StartRequest{Spec: spec, File: "my-cut.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if run.AdHoc == nil || run.Experiment != "my-cut" || run.Trigger != api.TriggerManual {
		t.Fatalf("first record %+v: want an ad hoc run of my-cut", run)
	}
	final := h.wait(run.ID, 60*time.Second)
	if final.Verdict != api.VerdictError || !strings.Contains(final.Reason, "Prometheus") {
		t.Errorf("verdict %s (%s); want the runner's preflight error about Prometheus", final.Verdict, final.Reason)
	}
	st, err := store.Open(h.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Get(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.AdHoc == nil || rec.AdHoc.Spec != spec || rec.AdHoc.File != "my-cut.yaml" || len(rec.AdHoc.SHA256) != 64 {
		t.Errorf("stored record's ad hoc part %+v: want the spec as sent, its file and SHA-256", rec.AdHoc)
	}

	_, err = h.client.StartRun(ctx, api.StartRequest{Spec: fmt.Sprintf(testExperiment, "cut", "2s", "")})
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != 422 || !strings.Contains(ae.Message, `"cut" is an experiment of chaosd's library`) {
		t.Errorf("library name: %v; want 422", err)
	}
	if _, err := h.client.StartRun(ctx, api.StartRequest{Experiment: "cut"}); err != nil {
		t.Fatal(err)
	}
	q := runquery.Query{}
	q.Selector, _ = runquery.ParseSelector("adhoc=true")
	runs, err := h.client.ListRuns(ctx, q.Values())
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID || runs[0].AdHoc == nil || runs[0].AdHoc.Spec != "" {
		t.Errorf("adhoc=true lists %+v (%v); want the ad hoc run, without its spec", runs, err)
	}
	q.Selector, _ = runquery.ParseSelector("experiment=cut")
	if runs, err := h.client.ListRuns(ctx, q.Values()); err != nil || len(runs) != 1 || runs[0].Experiment != "cut" {
		t.Errorf("experiment=cut lists %+v (%v)", runs, err)
	}
}

// TestDaemonPreviewAndVersion: the preview resolves targets with the
// inventory runs use and asks each node's agent; the version says the mode.
func TestDaemonPreviewAndVersion(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	// A third node whose agent does not answer.
	h.cfg.Clusters[0].Agents = append(h.cfg.Clusters[0].Agents, AgentNode{Node: "c1-n3", Endpoint: "unix://" + filepath.Join(h.dir, "nobody.sock")})
	h.start()
	ctx := context.Background()
	p, err := h.client.Preview(ctx, "cut")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != 1 || strings.Join(p.Targets[0].Eligible, ",") != "c1-n1,c1-n2,c1-n3" || p.Targets[0].Picked != 3 {
		t.Errorf("targets %+v: want c1-n1 to c1-n3, all hit", p.Targets)
	}
	if len(p.Faults) != 1 || len(p.Faults[0].On) != 3 || !p.Faults[0].On[0].Ready || !p.Faults[0].On[1].Ready || p.Faults[0].On[2].Ready ||
		!strings.Contains(string(p.Faults[0].Params), "10.1.0.0/16") {
		t.Errorf("faults %+v: want the partition ready on c1-n1 and c1-n2, not on c1-n3", p.Faults)
	}
	// An agent that does not answer is a problem of the preview, not an error.
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "c1-n3: agent:") || p.DurationSeconds != 4 || len(p.Probes) != 2 {
		t.Errorf("preview %+v", p)
	}
	if _, err := h.client.Preview(ctx, "nope"); err == nil {
		t.Error("preview of an unknown experiment worked")
	}
	v, err := h.client.Version(ctx)
	if err != nil || v.Version != Version || v.Mode != "standalone" || v.GoVersion == "" {
		t.Errorf("version %+v %v", v, err)
	}
}

// startRun starts a run. A standalone chaosd accepts runs as soon as its
// API answers: no 503 to wait out.
func (h *harness) startRun(req api.StartRequest) (api.Run, error) {
	return h.client.StartRun(context.Background(), req)
}
