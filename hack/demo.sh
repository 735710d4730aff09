#!/usr/bin/env bash
# make demo: bring the local two-cluster lab up, run partition-c1-c2 end to
# end, print the report and the ground truth, and tear everything down
# again (also on failure or Ctrl-C). Exit code is chaosctl's.
#
# make demo-kube (hack/demo.sh --kube): the same in the lab's Kubernetes
# mode: etcd and kube-apiserver run in the lab's mgmt namespace, C1's
# nodes, agents and services are Node and Pod objects, the library
# Experiment objects, chaosd discovers them and the run's record is an
# ExperimentRun object. The API server's binaries come from
# CHAOSD_K8S_BIN_DIR, else from hack/k8s-bins.sh (built the first time:
# ~8-10 min on 2 cores).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
KUBE=false
NAME=demo
PREFIX=cl
if [ "${1:-}" = --kube ]; then
  KUBE=true NAME=demo-kube PREFIX=clk
fi
start=$(date +%s.%N)
if [ "$(id -u)" != 0 ]; then
  echo "make $NAME needs root (it creates network namespaces)" >&2
  exit 3
fi
up_flags=()
if $KUBE; then
  if [ -z "${CHAOSD_K8S_BIN_DIR:-}" ]; then
    CHAOSD_K8S_BIN_DIR=$(hack/k8s-bins.sh) || { echo "building kube-apiserver and etcd failed" >&2; exit 3; }
  fi
  export CHAOSD_K8S_BIN_DIR
  up_flags=(--kube)
fi
lab() { "$BIN/chaoslab" --name "$NAME" --prefix "$PREFIX" "$@"; }
cleanup() { lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cleanup
if $KUBE; then
  echo "==> bringing the lab up in Kubernetes mode (API server binaries: $CHAOSD_K8S_BIN_DIR)"
else
  echo "==> bringing the lab up"
fi
lab up "${up_flags[@]}" --bin-dir "$BIN" --experiments-dir experiments/library || exit 3
export CHAOSCTL_SOCKET=/run/chaosd-lab/$NAME/chaosd.sock
export CHAOSCTL_TOKEN_FILE=/run/chaosd-lab/$NAME/token
if $KUBE; then
  echo "==> agents chaosd discovered from pods"
  "$BIN/chaosctl" get agents || true
fi
# The steady state is judged at every scrape of the 30s before the inject
# (spec.steadyState.baseline): a fresh lab needs that much traffic first.
echo "==> letting 30s of user traffic fill the steady-state baseline"
sleep 31
echo "==> chaosctl run partition-c1-c2 --wait"
"$BIN/chaosctl" run partition-c1-c2 --wait
rc=$?
id=$("$BIN/chaosctl" get runs 2>/dev/null | awk 'NR==2 {print $1}')
if [ -n "$id" ]; then
  echo "==> measured vs ground truth"
  lab truth "$id" || true
  if $KUBE && command -v kubectl >/dev/null; then
    echo "==> the run's ExperimentRun object"
    ip netns exec "$PREFIX-mgmt" kubectl --kubeconfig "/run/chaosd-lab/$NAME/kubeconfig" -n chaosd get experimentruns || true
  fi
fi
echo "==> tearing the lab down"
cleanup
trap - EXIT
left=$(ip netns list 2>/dev/null | grep -c "^$PREFIX-" || true)
end=$(date +%s.%N)
awk -v n="$NAME" -v s="$start" -v e="$end" -v rc="$rc" -v left="$left" 'BEGIN{printf "==> %s finished in %.1fs (chaosctl exit code %d, lab namespaces left: %s)\n", n, e-s, rc, left}'
exit $rc
