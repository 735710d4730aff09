package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/chaosd/chaosd/agent
BenchmarkInjectRevert/partition-2  100  2000000 ns/op  1000 inject-p50-µs  500 renew-p50-µs  600 revert-p50-µs  1600 total-p50-µs
BenchmarkInjectRevert/partition-2  100  2000000 ns/op  1200 inject-p50-µs  500 renew-p50-µs  800 revert-p50-µs  2000 total-p50-µs
BenchmarkInjectRevert/partition-2  100  2000000 ns/op  1100 inject-p50-µs  500 renew-p50-µs  700 revert-p50-µs  1800 total-p50-µs
pkg: github.com/chaosd/chaosd/agent/partition
BenchmarkPartitionFloor-2  100  900000 ns/op  400 create-p50-µs  200 delete-p50-µs  600 total-p50-µs
BenchmarkPartitionFloor-2  100  900000 ns/op  400 create-p50-µs  200 delete-p50-µs  620 total-p50-µs
`

// The report shows the median of the repetitions and the ratio of the
// API to the floor of the same run.
func TestHeadlinesMediansAndRatio(t *testing.T) {
	f := filepath.Join(t.TempDir(), "host.txt")
	if err := os.WriteFile(f, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &data{values: map[key][]float64{}}
	if err := read(d, "host", f); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	headlines(&out, d)
	medians(&out, d, "host")
	for _, want := range []string{
		"| partition | 1.10 ms | 0.50 ms | 0.70 ms | **1.80 ms** |", // medians of three
		"| in-process floor | 0.61 ms | 1× |",                       // median of two
		"**1.80 ms** | **3.0×** |",
		"| agent | BenchmarkInjectRevert/partition | 3 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
