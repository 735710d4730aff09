#!/usr/bin/env bash
# make bench: Go benchmarks for the numbers users care about, written to a
# report (bench/report.md) and printed.
#   - agent: API call → fault in place, and → reverted + verified, per fault
#     kind, on one node (namespaces and cgroups the benchmark creates; needs
#     root); kinds this kernel lacks (latency: netem) are measured again on
#     the stock kernel under QEMU (TCG, so slower than real hardware)
#   - store: one durable run-record write (chaosd does one per probe round)
#   - experiments: loading and validating the built-in library
#   - tlsconf: one chaosd→agent call over mutual TLS, reused connection vs a
#     new connection (handshake) per call, against plain HTTP
#   - flood: peak RSS of a real agent process holding a partition while
#     unauthenticated clients flood its TCP (loopback) and unix listeners
#     with headers that never end (agent TestIntegrationFloodKeepsAgentBounded),
#     and chaosd's heap under the same flood (daemon TestFloodKeepsChaosdBounded)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/report.md}
mkdir -p "$(dirname "$out")"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-3}" -benchtime "${BENCH_TIME:-100x}" \
  ./agent/ ./agent/memory/ ./agent/partition/ ./agent/ledger/ ./daemon/ ./daemon/store/ ./experiments/ ./experiments/runner/ ./targets/kube/ ./internal/tlsconf/ 2>&1 | grep -v 'logger.go' | tee "$raw"
vmraw=$(mktemp)
trap 'rm -f "$raw" "$vmraw"' EXIT
hack/vmtest.sh ./agent/ ./agent/latency/ -run '^$' -bench 'BenchmarkInjectRevert$|BenchmarkApplyRevert' \
  -count "${BENCH_COUNT:-3}" -benchtime "${BENCH_VM_TIME:-20x}" 2>&1 | grep -v 'logger.go' | tee "$vmraw"
floodraw=$(mktemp)
trap 'rm -f "$raw" "$vmraw" "$floodraw"' EXIT
go test -count=1 -run '^TestIntegrationFloodKeepsAgentBounded$' -v ./agent/ 2>&1 | grep -v 'logger.go' | tee "$floodraw"
go test -count=1 -run '^TestFloodKeepsChaosdBounded$' -v ./daemon/ 2>&1 | grep -v 'logger.go' | tee -a "$floodraw"
# table prints go test -bench output as a Markdown table.
table() {
  echo "| package | benchmark | ns/op | extra metrics |"
  echo "|---|---|---|---|"
  awk '/^pkg:/ { pkg=$2; sub(/^github.com\/chaosd\/chaosd\//, "", pkg) }
       /^Benchmark/ {
         name=$1; ns=$3; extra="";
         for (i=5; i<=NF; i+=2) extra=extra $i " " $(i+1) "; ";
         printf "| %s | %s | %s | %s |\n", pkg, name, ns, extra }' "$1"
}

{
  echo "# Benchmark report"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc) cores, $(uname -r), $(go version | awk '{print $3}')"
  echo
  table "$raw"
  echo
  echo "On the stock kernel under QEMU (TCG):"
  echo
  table "$vmraw"
  echo
  echo "Memory under a flood of unauthenticated clients sending headers that never end (agent: DaemonSet limit 128 MiB; chaosd: its Deployment's limit):"
  echo
  grep -o 'FLOOD .*' "$floodraw" | sed 's/^FLOOD /- /' || echo "- flood test did not run (needs root)"
  echo
  echo "Raw output:"
  echo
  echo '```'
  grep -E '^(goos|goarch|pkg|cpu|Benchmark|ok)' "$raw"
  echo '--- VM ---'
  grep -E '^(goos|goarch|pkg|cpu|Benchmark|ok)' "$vmraw"
  echo '```'
} >"$out"
echo "report written to $out"
