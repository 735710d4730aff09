package daemon

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/chaosd/chaosd/internal/serve/floodtest"
)

// TestFloodKeepsChaosdBounded: 400 unauthenticated clients send chaosd
// headers that never end for 4s. Its memory (heap and goroutine stacks,
// measured in this process, the flooding clients included) grows by at
// most 64 MiB — unbounded listeners grew chaosd to ~500 MiB — and the API
// still answers afterwards.
func TestFloodKeepsChaosdBounded(t *testing.T) {
	h := newHarness(t, "", nil, map[string]string{"cut": fmt.Sprintf(testExperiment, "cut", "4s", "")})
	h.start()
	inUse := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	runtime.GC()
	before := inUse()
	stop := time.Now().Add(4 * time.Second)
	done := make(chan [2]int64, 1)
	go func() {
		d, s := floodtest.Flood("unix", h.cfg.Listen.Socket, "/v1/runs", 400, stop)
		done <- [2]int64{d, s}
	}()
	var peak uint64
	for time.Now().Before(stop) {
		peak = max(peak, inUse())
		time.Sleep(100 * time.Millisecond)
	}
	res := <-done
	growth := float64(peak-min(peak, before)) / (1 << 20)
	t.Logf("FLOOD chaosd heap+stacks before %.1f MiB, peak %.1f MiB (+%.1f MiB); %d connections, %.0f MiB of header sent",
		float64(before)/(1<<20), float64(peak)/(1<<20), growth, res[0], float64(res[1])/(1<<20))
	if growth > 64 {
		t.Errorf("chaosd grew by %.1f MiB under the flood, want at most 64 MiB", growth)
	}
	if _, err := h.client.Runs(context.Background()); err != nil {
		t.Errorf("chaosd does not answer after the flood: %v", err)
	}
}
