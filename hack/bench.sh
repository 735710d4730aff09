#!/usr/bin/env bash
# make bench: Go benchmarks for the numbers users care about, written to a
# report (bench/report.md) and printed.
#   - agent: API call → partition fault in place, and → reverted + verified,
#     on one node (a network namespace the benchmark creates; needs root)
#   - store: one durable run-record write (chaosd does one per probe round)
#   - experiments: loading and validating the built-in library
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/report.md}
mkdir -p "$(dirname "$out")"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-3}" -benchtime "${BENCH_TIME:-100x}" \
  ./agent/ ./daemon/store/ ./experiments/ | tee "$raw"
{
  echo "# Benchmark report"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc) cores, $(uname -r), $(go version | awk '{print $3}')"
  echo
  echo "| benchmark | ns/op | extra metrics |"
  echo "|---|---|---|"
  awk '/^Benchmark/ {
         name=$1; ns=$3; extra="";
         for (i=5; i<=NF; i+=2) extra=extra $i " " $(i+1) "; ";
         printf "| %s | %s | %s |\n", name, ns, extra }' "$raw"
  echo
  echo "Raw output:"
  echo
  echo '```'
  grep -E '^(goos|goarch|pkg|cpu|Benchmark|ok)' "$raw"
  echo '```'
} >"$out"
echo "report written to $out"
