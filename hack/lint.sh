#!/usr/bin/env bash
# gofmt + go vet over the whole tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then
  echo "gofmt needed:" >&2; echo "$bad" >&2; exit 1
fi
go vet ./...
