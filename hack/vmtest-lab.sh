#!/usr/bin/env bash
# Runs the e2e tests that bring the whole lab up inside the stock-kernel VM
# (TestVM* in ./e2e, e.g. latency-c1-c2, which needs netem), through
# hack/vmtest.sh. The guest gets the lab's binaries, Debian's Prometheus
# and iproute2's ip (with their shared libraries) copied in at the paths
# the lab expects, 2 GiB of memory and the bridge module.
#   hack/vmtest-lab.sh            # what make test runs
#   hack/vmtest-lab.sh -v         # extra go test flags
# Needs `make build` first (CHAOSD_BIN_DIR, default bin/), and what
# hack/deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHAOSD_BIN_DIR:-$PWD/bin}
if [[ ! -d $bin ]]; then
  echo "hack/vmtest-lab.sh: no binaries in $bin: run make build" >&2
  exit 1
fi
bin=$(cd "$bin" && pwd)
# In the guest the binaries live at one fixed place: the checkout may be
# anywhere on the host, /tmp included, which the guest mounts over.
guestbin=/opt/chaosd/bin
files=()
for b in chaosd chaosctl petclinic loadgen; do
  if [[ ! -x $bin/$b ]]; then
    echo "hack/vmtest-lab.sh: $bin/$b missing: run make build" >&2
    exit 1
  fi
  files+=("$bin/$b=$guestbin/$b")
done
# The lab runs /usr/bin/prometheus (lab.DefaultPrometheus); iproute2's ip
# replaces busybox's applet, which has no `ip netns`.
ip=$(command -v ip) || { echo "hack/vmtest-lab.sh: iproute2's ip not found" >&2; exit 1; }
files+=(/usr/bin/prometheus "$ip=/sbin/ip")
export CHAOSD_BIN_DIR=$guestbin
export CHAOSD_VM_FILES
CHAOSD_VM_FILES=$(IFS=,; echo "${files[*]}")
export CHAOSD_VM_MEM=${CHAOSD_VM_MEM:-2G}
export CHAOSD_VM_MODULES=${CHAOSD_VM_MODULES:-bridge}
# vmexec passes GOGC to the guest, where every lab process (chaosd, the
# agents, the stand-ins, the load generator, Prometheus) inherits it:
# collecting a quarter as often cuts the guest's CPU by about a third on
# its one emulated core, which has memory to spare.
export GOGC=${GOGC:-400}
exec hack/vmtest.sh ./e2e -run '^TestVM' -timeout 8m "$@"
