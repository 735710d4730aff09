#!/usr/bin/env bash
# Runs every test. Privileged tests (network namespaces, the lab) need root
# and run in CI; they skip, saying why, when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOSD_BIN_DIR="${CHAOSD_BIN_DIR:-$PWD/bin}"
# -p 1: the privileged suites start Prometheus, agents and whole labs; on a
# 2-core machine running them side by side only makes them slower and flaky.
go test -count=1 -p 1 -timeout 40m "$@" ./...
