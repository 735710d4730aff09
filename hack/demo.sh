#!/usr/bin/env bash
# make demo: bring the local two-cluster lab up, run partition-c1-c2 end to
# end, print the report, and tear everything down again (also on failure or
# Ctrl-C). Exit code is chaosctl's.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
start=$(date +%s.%N)
if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root (it creates network namespaces)" >&2
  exit 3
fi
cleanup() { "$BIN/chaoslab" down --name demo >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/chaoslab" down --name demo >/dev/null 2>&1 || true
echo "==> bringing the lab up"
"$BIN/chaoslab" up --name demo --bin-dir "$BIN" --experiments-dir experiments/library || exit 3
export CHAOSCTL_SOCKET=/run/chaosd-lab/demo/chaosd.sock
export CHAOSCTL_TOKEN_FILE=/run/chaosd-lab/demo/token
echo "==> chaosctl run partition-c1-c2 --wait"
"$BIN/chaosctl" run partition-c1-c2 --wait
rc=$?
id=$("$BIN/chaosctl" get runs 2>/dev/null | awk 'NR==2 {print $1}')
if [ -n "$id" ]; then
  echo "==> measured vs ground truth"
  "$BIN/chaoslab" truth --name demo "$id" || true
fi
echo "==> tearing the lab down"
cleanup
trap - EXIT
left=$(ip netns list 2>/dev/null | grep -c '^cl-' || true)
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v rc="$rc" -v left="$left" 'BEGIN{printf "==> demo finished in %.1fs (chaosctl exit code %d, lab namespaces left: %s)\n", e-s, rc, left}'
exit $rc
