#!/usr/bin/env bash
# Runs Go test packages inside a stock Debian cloud kernel under QEMU (see
# hack/vmexec/README.md). Usage: hack/vmtest.sh PKG... [go test flags]
#   hack/vmtest.sh ./agent/... -run TestNetem -v
# Needs qemu-system-x86 and busybox-static (hack/deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  echo "usage: hack/vmtest.sh PKG... [go test flags]" >&2
  exit 2
fi
mkdir -p bin
go build -o bin/ ./hack/vmexec
# -p 1: one VM at a time, each with one core. CGO_ENABLED=0: the guest has
# no libc, so test binaries must be static (this also rules out -race).
CGO_ENABLED=0 exec go test -count=1 -p 1 -exec "$PWD/bin/vmexec" "$@"
