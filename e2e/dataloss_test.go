package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chaosd/chaosd/api"
	"github.com/chaosd/chaosd/lab"
	"github.com/chaosd/chaosd/lab/petclinic"
)

// TestIntegrationDataLossRPOMatchesLabTruth runs the data-loss (RPO) check
// in one lab whose visits-service has a 5s write-behind buffer that a TGW
// cut makes it discard:
//
//   - a cut of the TGW path loses the visits acknowledged in the 5s before
//     it: chaosd measures the span of the lost writes and fails the run
//     (RPO 1s); the span matches what visits-service says it discarded to
//     within one write interval;
//   - a cut of gateway → visits-service only (visits-service still reaches
//     customers-service, so its buffer flushes) loses nothing: writes fail
//     during the cut, which is no loss, and the measured RPO is 0.
func TestIntegrationDataLossRPOMatchesLabTruth(t *testing.T) {
	requireRoot(t)
	const interval = 0.5 // the experiments' dataLoss.interval, in seconds
	l := startLab(t, "e2e-rpo", "cer", repoPath(t, "e2e/testdata/dataloss"),
		map[string][]string{"visits-service": {"--write-behind=5s"}})
	// The experiment files name the gateway by the lab's fixed address.
	if l.GatewayURL != "http://10.254.0.11:8080" {
		t.Fatalf("the lab's gateway moved to %s: update e2e/testdata/dataloss/*.yaml", l.GatewayURL)
	}
	visits, _ := lab.NodeByName("c2-n1")
	truthURL := fmt.Sprintf("http://%s:%d/actuator/writebehind", visits.MgmtIP, lab.VisitsPort)

	// dropped returns what visits-service discarded of run's writes.
	dropped := func(t *testing.T, run api.Run) []petclinic.DroppedVisit {
		t.Helper()
		resp, err := l.HTTPClient(5 * time.Second).Get(truthURL)
		if err != nil {
			t.Fatalf("ground truth: %v", err)
		}
		defer resp.Body.Close()
		var st petclinic.WriteBehindStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatalf("ground truth: HTTP %d: %v", resp.StatusCode, err)
		}
		var out []petclinic.DroppedVisit
		for _, d := range st.Dropped {
			if strings.Contains(d.Description, "chaosd-"+run.ID+"-w") {
				out = append(out, d)
			}
		}
		t.Logf("visits-service write-behind: %d pending, %d flushed, %d dropped (%d of run %s)", st.Pending, st.Flushed, len(st.Dropped), len(out), run.ID)
		return out
	}

	t.Run("loss over the RPO fails", func(t *testing.T) {
		code, run, stderr := runJSON(t, l, "rpo-partition-c1-c2")
		dl := run.DataLoss
		if code != 1 || run.Verdict != api.VerdictFail || !strings.Contains(run.Reason, "data lost") || dl == nil || dl.MeasuredSeconds == nil {
			t.Fatalf("exit %d verdict %s (%s), data loss %+v\n%s", code, run.Verdict, run.Reason, dl, stderr)
		}
		if run.Times.Recovered == nil {
			t.Errorf("the system recovered; only the data loss fails the run: %+v", run.Times)
		}
		truth := dropped(t, run)
		if len(truth) == 0 {
			t.Fatal("visits-service discarded none of the run's writes")
		}
		first, last := truth[0].AcknowledgedAt, truth[0].AcknowledgedAt
		for _, d := range truth {
			if d.AcknowledgedAt.Before(first) {
				first = d.AcknowledgedAt
			}
			if d.AcknowledgedAt.After(last) {
				last = d.AcknowledgedAt
			}
		}
		truthSpan := last.Sub(first).Seconds()
		measured := *dl.MeasuredSeconds
		t.Logf("measured RPO %.3fs (%d of %d acknowledged writes lost, %d writes; first %s, last %s); lab truth %.3fs (%d discarded; first %s, last %s)",
			measured, dl.Lost, dl.Acknowledged, dl.Writes, dl.FirstLost.Format(time.RFC3339Nano), dl.LastLost.Format(time.RFC3339Nano),
			truthSpan, len(truth), first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
		if diff := math.Abs(measured - truthSpan); diff > interval {
			t.Errorf("measured RPO %.3fs differs from the lab's truth %.3fs by %.3fs (> one write interval, %.1fs)", measured, truthSpan, diff, interval)
		}
		// The buffer holds 5s of writes: the loss is real, not an edge effect.
		if truthSpan < 3.5 {
			t.Errorf("the lab discarded only %.3fs of writes; the 5s write-behind buffer should have held about 4.5s", truthSpan)
		}
		// A write visits-service acknowledged whose answer the cut then
		// lost is in the truth but was never acknowledged to chaosd.
		if dl.Lost < len(truth)-1 || dl.Lost > len(truth) {
			t.Errorf("chaosd counts %d lost writes, visits-service discarded %d", dl.Lost, len(truth))
		}
		if dl.Acknowledged >= dl.Writes {
			t.Errorf("writes during the cut must fail: %d of %d acknowledged", dl.Acknowledged, dl.Writes)
		}
		if !hasEvent(run, fmt.Sprintf("data-loss check: %d writes, %d acknowledged, %d lost, RPO", dl.Writes, dl.Acknowledged, dl.Lost)) {
			t.Errorf("no data-loss event in %+v", run.Events)
		}
	})

	t.Run("clean run measures 0", func(t *testing.T) {
		code, run, stderr := runJSON(t, l, "rpo-cut-gateway-to-visits")
		dl := run.DataLoss
		if code != 0 || run.Verdict != api.VerdictPass || dl == nil || dl.MeasuredSeconds == nil {
			t.Fatalf("exit %d verdict %s (%s), data loss %+v\n%s", code, run.Verdict, run.Reason, dl, stderr)
		}
		t.Logf("measured RPO %.3fs: %d of %d acknowledged writes lost, %d writes", *dl.MeasuredSeconds, dl.Lost, dl.Acknowledged, dl.Writes)
		if *dl.MeasuredSeconds != 0 || dl.Lost != 0 || dl.FirstLost != nil {
			t.Errorf("nothing was lost, measured %+v", dl)
		}
		if dl.Acknowledged == 0 || dl.Acknowledged >= dl.Writes {
			t.Errorf("writes before the cut succeed and writes during it fail: %d of %d acknowledged", dl.Acknowledged, dl.Writes)
		}
		if truth := dropped(t, run); len(truth) != 0 {
			t.Errorf("visits-service discarded %d of the run's writes: %+v", len(truth), truth)
		}
	})
	assertNoFaultLeft(t, l)
}

func hasEvent(run api.Run, sub string) bool {
	for _, ev := range run.Events {
		if strings.Contains(ev.Message, sub) {
			return true
		}
	}
	return false
}
