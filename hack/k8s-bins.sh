#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd (hack/k8s-bins/go.mod pins the
# versions) into a cache keyed by version, so only the first run pays
# (~10 min and ~3 GB of RAM on 2 cores). Prints the directory holding
# both binaries. Tests and the lab's Kubernetes mode find it through
# CHAOSD_K8S_BIN_DIR (hack/test.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/k8s-bins"
k8s=$(awk '$1 == "k8s.io/kubernetes" {print $2}' go.mod)
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' go.mod)
dir=${CHAOSD_K8S_CACHE:-/var/cache/chaosd-k8s}/kube-${k8s}-etcd-${etcd}
if [[ -x $dir/kube-apiserver && -x $dir/etcd ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building kube-apiserver $k8s and etcd $etcd into $dir (first run only)" >&2
# -p 1 keeps peak memory down on small machines.
GOFLAGS=-mod=mod go build -p "${K8S_BUILD_P:-2}" -trimpath -ldflags '-s -w' -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
GOFLAGS=-mod=mod go build -p "${K8S_BUILD_P:-2}" -trimpath -ldflags '-s -w' -o "$tmp/etcd" go.etcd.io/etcd/server/v3
mv "$tmp/kube-apiserver" "$tmp/etcd" "$dir/"
echo "$dir"
