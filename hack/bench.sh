#!/usr/bin/env bash
# make bench: Go benchmarks for the numbers users care about, written to a
# report (bench/report.md: medians over the repetitions, built by
# hack/benchreport) and printed.
#   - agent: API call → fault in place, renewed, reverted + verified, per
#     fault kind, on one node (namespaces and cgroups the benchmark
#     creates; needs root); the partition against the physical floor (the
#     driver's nftables batch in-process over one open netlink socket) and
#     `nft -f` of the same ruleset, in the same run; kinds this kernel
#     lacks (latency: netem) again on the stock kernel under QEMU (TCG, so
#     slower than real hardware)
#   - ledger: one record written, and written + fsynced
#   - fan-out: chaosd's runner putting a partition on 10/100/1,000
#     simulated agents and reverting it; halt; chaosd's CPU and memory per
#     agent
#   - run record: durable writes, fsyncs and bytes per run for 10/100/1,000 faults
#   - store, experiments, inventory: a durable record write, loading the
#     library, resolving targets
#   - tlsconf: one chaosd→agent call over mutual TLS, reused connection vs a
#     new connection (handshake) per call, against plain HTTP
#   - flood: peak RSS of a real agent process holding a partition while
#     unauthenticated clients flood its TCP (loopback) and unix listeners
#     with headers that never end (agent TestIntegrationFloodKeepsAgentBounded),
#     and chaosd's heap under the same flood (daemon TestFloodKeepsChaosdBounded)
# BENCH_COUNT (default 5) repetitions of each; the report shows medians.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/report.md}
count=${BENCH_COUNT:-5}
mkdir -p "$(dirname "$out")"
commit=$(git describe --always --dirty 2>/dev/null || echo unknown) # before the report changes the tree
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quiet() { grep -v 'logger.go' || true; }

go build -o "$work/benchreport" ./hack/benchreport
go test -run '^$' -bench . -benchmem -count "$count" -benchtime "${BENCH_TIME:-100x}" \
  ./agent/ ./agent/memory/ ./agent/partition/ ./agent/ledger/ ./daemon/store/ ./experiments/ ./targets/kube/ ./internal/tlsconf/ 2>&1 | quiet | tee "$work/host.txt"
# Whole runs: fewer iterations each.
go test -run '^$' -bench 'BenchmarkFanOut|BenchmarkHalt' -benchmem -count "$count" -benchtime "${BENCH_RUN_TIME:-5x}" \
  ./experiments/runner/ 2>&1 | quiet | tee -a "$work/host.txt"
go test -run '^$' -bench 'BenchmarkRunRecordWrites' -benchmem -count 1 -benchtime "${BENCH_RUN_TIME:-5x}" \
  ./daemon/ 2>&1 | quiet | tee -a "$work/host.txt"
hack/vmtest.sh ./agent/ ./agent/latency/ -run '^$' -bench 'BenchmarkInjectRevert$|BenchmarkApplyRevert' \
  -count "$count" -benchtime "${BENCH_VM_TIME:-20x}" 2>&1 | quiet | tee "$work/vm.txt"
go test -count=1 -run '^TestIntegrationFloodKeepsAgentBounded$' -v ./agent/ 2>&1 | quiet | tee "$work/flood.txt"
go test -count=1 -run '^TestFloodKeepsChaosdBounded$' -v ./daemon/ 2>&1 | quiet | tee -a "$work/flood.txt"

{
  echo "# Benchmark report"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $commit"
  echo "- machine: $(nproc) cores, $(uname -r), $(go version | awk '{print $3}')"
  echo "- every figure is the median of $count repetitions, all from this one run of \`make bench\`"
  echo
  "$work/benchreport" host="$work/host.txt" vm="$work/vm.txt"
  echo
  echo "## Memory under a flood"
  echo
  echo "Unauthenticated clients sending headers that never end (agent: DaemonSet limit 128 MiB; chaosd: its Deployment's limit):"
  echo
  grep -o 'FLOOD .*' "$work/flood.txt" | sed 's/^FLOOD /- /' || echo "- flood test did not run (needs root)"
  echo
  echo "## Raw output"
  echo
  echo '```'
  grep -E '^(goos|goarch|pkg|cpu|Benchmark|ok)' "$work/host.txt" || true
  echo '--- VM ---'
  grep -E '^(goos|goarch|pkg|cpu|Benchmark|ok)' "$work/vm.txt" || true
  echo '```'
} >"$out"
echo "report written to $out"
