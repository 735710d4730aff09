#!/usr/bin/env bash
# Installs what the build, the lab and the tests need on a Debian machine
# (run as root). Idempotent and quiet when everything is there.
set -euo pipefail

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)   # the lab's Alertmanager, amtool; tests
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)       # the nft -f benchmark (make bench); the agent speaks netlink itself
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)                  # the CI snippets in examples/ci (tested in ./cli)
command -v zsh >/dev/null || need+=(zsh)                # chaosctl completion zsh is parsed by zsh (./cli)
command -v fish >/dev/null || need+=(fish)              # chaosctl completion fish completes from a fake chaosd (./cli)
# Kernel tests that need what the host kernel lacks (netem, cgroup v2
# memory) run under QEMU with Debian's stock cloud kernel (hack/vmexec).
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
{ [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; } || need+=(busybox-static file)
command -v file >/dev/null || need+=(file)
# The HTML report is checked in a real headless browser (internal/chromiumtest),
# with a font so screenshots show text.
command -v chromium >/dev/null || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "hack/deps.sh: missing ${need[*]}; run as root (or apt-get install them)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's packages may start a system Prometheus on :9090 and a system
# Alertmanager on :9093; the project never uses them (the lab and the
# tests run their own, inside the lab's namespaces), so leave them alone.
command -v go >/dev/null || { echo "hack/deps.sh: Go 1.26 is required (https://go.dev/dl)" >&2; exit 1; }
