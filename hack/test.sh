#!/usr/bin/env bash
# Runs every test. Privileged tests (network namespaces, cgroups, the lab)
# need root and run in CI; they skip, saying why, when not root. Tests that
# need what the host kernel lacks (netem, cgroup v2 memory) run a second
# time inside a stock Debian kernel under QEMU (hack/vmtest.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOSD_BIN_DIR="${CHAOSD_BIN_DIR:-$PWD/bin}"
# The real kube-apiserver and etcd for the Kubernetes tests
# (internal/kubeapi, internal/kubetest): built once per version into a cache (the first
# build takes ~7-10 min on 2 cores; later runs only check the cache).
# CHAOSD_K8S_REQUIRED turns a missing binary into a failure, not a skip.
if [[ -z ${CHAOSD_K8S_BIN_DIR:-} ]]; then
  k8s_start=$SECONDS
  CHAOSD_K8S_BIN_DIR=$(hack/k8s-bins.sh)
  echo "kube-apiserver and etcd: $CHAOSD_K8S_BIN_DIR ($((SECONDS - k8s_start))s)"
fi
export CHAOSD_K8S_BIN_DIR CHAOSD_K8S_REQUIRED=1
# -p 1: the privileged suites start Prometheus, agents and whole labs; on a
# 2-core machine running them side by side only makes them slower and flaky.
go test -count=1 -p 1 -timeout 40m "$@" ./...
# Kernel tests on the stock kernel (TestVM* in these packages).
hack/vmtest.sh -run '^TestVM' -timeout 15m ./agent ./agent/latency ./agent/memory
# The lab end to end on the stock kernel (TestVM* in ./e2e: latency-c1-c2,
# which needs netem), with the lab's binaries copied into the VM.
hack/vmtest-lab.sh
