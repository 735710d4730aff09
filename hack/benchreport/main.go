// Command benchreport turns `go test -bench` output into the Markdown
// tables of bench/report.md: the median of every metric over the
// repetitions (-count), the headline figures issue by issue, and ratios
// between benchmarks measured in the same run (e.g. the agent's API
// against the in-process floor).
//
//	benchreport host=raw.txt vm=vm.txt >>bench/report.md
//
// Each argument names one run of `go test -bench` output (label=file).
package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// key names one metric of one benchmark in one input.
type key struct {
	input, pkg, bench, unit string
}

// data holds every value seen per key, in input order.
type data struct {
	values map[key][]float64
	order  []key
}

func (d *data) add(k key, v float64) {
	if _, ok := d.values[k]; !ok {
		d.order = append(d.order, k)
	}
	d.values[k] = append(d.values[k], v)
}

// median of the values of k, and how many there were.
func (d *data) median(k key) (float64, int, bool) {
	vs := slices.Clone(d.values[k])
	if len(vs) == 0 {
		return 0, 0, false
	}
	sort.Float64s(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], n, true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, n, true
}

func read(d *data, label, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := benchfmt.NewReader(f, path)
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata or a syntax error: not a result
		}
		pkg := strings.TrimPrefix(res.GetConfig("pkg"), "github.com/chaosd/chaosd/")
		// benchfmt drops "Benchmark"; the report names benchmarks as go
		// test does, without the -GOMAXPROCS suffix (the machine line
		// says how many processors).
		base := "Benchmark" + trimProcs(res.Name.String())
		for _, v := range res.Values {
			d.add(key{label, pkg, base, v.Unit}, v.Value)
		}
	}
	return r.Err()
}

// trimProcs drops the -GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return name
		}
	}
	return name[:i]
}

func main() {
	d := &data{values: map[key][]float64{}}
	var labels []string
	for _, arg := range os.Args[1:] {
		label, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "benchreport: argument %q: want label=file\n", arg)
			os.Exit(2)
		}
		if err := read(d, label, path); err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", path, err)
			os.Exit(1)
		}
		labels = append(labels, label)
	}
	headlines(os.Stdout, d)
	for _, l := range labels {
		medians(os.Stdout, d, l)
	}
}

// medians prints every benchmark of one input: one row per benchmark, the
// median of each metric and the number of repetitions.
func medians(w io.Writer, d *data, input string) {
	type row struct{ pkg, bench string }
	var rows []row
	units := map[row][]string{}
	for _, k := range d.order {
		if k.input != input {
			continue
		}
		r := row{k.pkg, k.bench}
		if _, ok := units[r]; !ok {
			rows = append(rows, r)
		}
		units[r] = append(units[r], k.unit)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### All benchmarks (%s), medians\n\n", input)
	fmt.Fprintln(w, "| package | benchmark | n | metrics (median) |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		var parts []string
		n := 0
		for _, u := range units[r] {
			m, c, _ := d.median(key{input, r.pkg, r.bench, u})
			n = max(n, c)
			if u == "sec/op" {
				m, u = m*1e3, "ms/op"
			}
			parts = append(parts, fmt.Sprintf("%s %s", num(m), u))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s |\n", r.pkg, r.bench, n, strings.Join(parts, "; "))
	}
}

// num prints a figure with a precision that suits its size.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// get is the median of one metric, or NaN when the run lacks it.
func (d *data) get(input, pkg, bench, unit string) float64 {
	m, _, ok := d.median(key{input, pkg, bench, unit})
	if !ok {
		return math.NaN()
	}
	return m
}

// ms prints microseconds as milliseconds, "–" when missing.
func ms(us float64) string {
	if math.IsNaN(us) {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

func show(v float64, format string) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf(format, v)
}

// Reference figures, measured before this work on this project's 2-core
// machines and quoted in issue 10 (filed 2026-11-29): chaos-mesh/chaosd at
// commit bc039aa, and this project at the commit before issue 10.
const (
	refChaosMeshServerMs = 136.6
	refChaosMeshCLIMs    = 295.2
	refBeforeAPIMs       = 29.0
)

// beforeFanOut is chaosd's fan-out before issue 10 (one inject at a time)
// with agents as slow as they were then: 10 and 100 agents quoted in
// issue 10, 1,000 measured with BenchmarkFanOut at bc33830.
var beforeFanOut = map[int]string{10: "0.23 s / 0.18 s", 100: "2.11 s / 1.81 s", 1000: "18.6 s / 2.40 s (every run with the default 5 s lease ended in error from ~160 agents on)"}

// beforeRecord is the run record's cost before issue 10 (three whole
// rewrites per fault), measured with the same benchmark at bc33830.
var beforeRecord = map[int]string{10: "146 fsyncs, 276 KiB", 100: "685 fsyncs, 6.0 MiB", 1000: "6,077 fsyncs, 476 MiB"}

var kinds = []string{"partition", "latency", "memory", "exception", "app-latency"}

// headlines prints the figures issue 10 asks for, from the host run and
// the stock-kernel run.
func headlines(w io.Writer, d *data) {
	api := func(input, kind, what string) float64 {
		return d.get(input, "agent", "BenchmarkInjectRevert/"+kind, what+"-p50-µs")
	}
	fmt.Fprintln(w, "## One fault through the agent's API (unix socket, real HTTP, ledger on disk)")
	fmt.Fprintln(w)
	for _, input := range []string{"host", "vm"} {
		title := map[string]string{"host": "Host kernel", "vm": "Debian's stock kernel under QEMU (TCG emulation: slower than hardware)"}[input]
		fmt.Fprintf(w, "%s, medians:\n\n", title)
		fmt.Fprintln(w, "| kind | inject | renew | revert + verify | inject + revert |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
		for _, k := range kinds {
			total := api(input, k, "total")
			if math.IsNaN(total) {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | **%s** |\n", k, ms(api(input, k, "inject")), ms(api(input, k, "renew")),
				ms(api(input, k, "revert")), ms(total))
		}
		fmt.Fprintln(w)
	}
	part := api("host", "partition", "total")
	floor := d.get("host", "agent/partition", "BenchmarkPartitionFloor", "total-p50-µs")
	nft := d.get("host", "agent/partition", "BenchmarkPartitionNftCLI", "total-p50-µs")
	fmt.Fprintln(w, "Partition, inject + revert, against the physical floor measured in the same run (the driver's own nftables batch committed in-process over one open netlink socket, then the table deleted) and the everyday alternative (`nft -f` of the same ruleset):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| path | inject + revert | vs the floor |")
	fmt.Fprintln(w, "|---|---|---|")
	fmt.Fprintf(w, "| in-process floor | %s | 1× |\n", ms(floor))
	fmt.Fprintf(w, "| **chaosd agent API** (target ≤ 3 ms, ≤ 3× the floor) | **%s** | **%s** |\n", ms(part), show(part/floor, "%.1f×"))
	fmt.Fprintf(w, "| `nft -f` | %s | %s |\n", ms(nft), show(nft/floor, "%.1f×"))
	fmt.Fprintf(w, "| this agent before issue 10 (reference) | %.1f ms | |\n", refBeforeAPIMs)
	fmt.Fprintf(w, "| chaos-mesh/chaosd server API (reference) | %.1f ms | %s faster here |\n", refChaosMeshServerMs, show(refChaosMeshServerMs*1000/part, "%.0f×"))
	fmt.Fprintf(w, "| chaos-mesh/chaosd CLI (reference) | %.1f ms | |\n", refChaosMeshCLIMs)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "References: medians measured on this project's 2-core machines and quoted in issue 10 (filed 2026-11-29; chaos-mesh/chaosd at commit bc039aa, traffic cut verified in every repetition); chaos-mesh/chaosd is not served by the module registry here, so it is not re-measured.")
	fmt.Fprintf(w, "One ledger record: write %s, write + fsync %s (`agent/README.md` says which records are synced and why).\n\n",
		show(d.get("host", "agent/ledger", "BenchmarkRecord/write", "sec/op")*1e6, "%.1f µs"),
		show(d.get("host", "agent/ledger", "BenchmarkRecord/write+fsync", "sec/op")*1e6, "%.0f µs"))

	fmt.Fprintln(w, "## chaosd's fan-out")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A partition on N simulated agents (`internal/agentsim`: the real agent core and API on unix sockets, in a child process, a partition driver that takes the measured latency), through chaosd's runner and its real agent client; default lease 5 s, fan-out 64. Agents as fast as the agent measures now (`now`: inject 1.2 ms median) and as slow as before issue 10 (`before`: 15 ms):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| agents | agent | all faults in place | all reverted | halt (abort at half in place → all reverted) | chaosd before issue 10, same agents: in place / reverted |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, n := range []int{10, 100, 1000} {
		for _, prof := range []string{"now", "before"} {
			sub := fmt.Sprintf("agent=%s/agents=%d", prof, n)
			ref := ""
			if prof == "before" {
				ref = beforeFanOut[n]
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", n, prof,
				show(d.get("host", "experiments/runner", "BenchmarkFanOut/"+sub, "inplace-ms"), "%.0f ms"),
				show(d.get("host", "experiments/runner", "BenchmarkFanOut/"+sub, "revert-ms"), "%.0f ms"),
				show(d.get("host", "experiments/runner", "BenchmarkHalt/"+sub, "halt-ms"), "%.0f ms"), ref)
		}
	}
	fmt.Fprintln(w)
	sub := "BenchmarkFanOut/agent=now/agents=1000"
	fmt.Fprintf(w, "chaosd's cost per agent at 1,000 agents (inject + revert): CPU %s, live heap while the faults are in place %s, allocated %s.\n\n",
		show(d.get("host", "experiments/runner", sub, "cpu-µs/agent"), "%.0f µs"),
		show(d.get("host", "experiments/runner", sub, "heap-KiB/agent"), "%.2f KiB"),
		show(d.get("host", "experiments/runner", sub, "alloc-KiB/agent"), "%.1f KiB"))

	fmt.Fprintln(w, "## The run record")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "What one run writes to chaosd's data directory (a whole run: plan, inject, watch, revert, verdict; `daemon` BenchmarkRunRecordWrites):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| faults | durable writes | fsyncs | written | per fault | before issue 10 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, n := range []int{10, 100, 1000} {
		b := fmt.Sprintf("BenchmarkRunRecordWrites/faults=%d", n)
		kib := d.get("host", "daemon", b, "KiB-written/run")
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", n,
			show(d.get("host", "daemon", b, "writes/run"), "%.0f"), show(d.get("host", "daemon", b, "fsyncs/run"), "%.0f"),
			show(kib, "%.0f KiB"), show(kib/float64(n), "%.2f KiB"), beforeRecord[n])
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "## TLS, per chaosd → agent call (loopback)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| connection | plain HTTP | mutual TLS |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, c := range []string{"reused", "new-connection"} {
		fmt.Fprintf(w, "| %s | %s | %s |\n", c,
			show(d.get("host", "internal/tlsconf", "BenchmarkAgentCall/plain-"+c, "sec/op")*1e3, "%.3f ms"),
			show(d.get("host", "internal/tlsconf", "BenchmarkAgentCall/mtls-"+c, "sec/op")*1e3, "%.3f ms"))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "chaosd keeps connections to agents alive, so the handshake is paid once per agent, not per call.")
}
