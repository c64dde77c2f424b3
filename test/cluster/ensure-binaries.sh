#!/usr/bin/env bash
# Makes sure the test cluster's binaries exist in a cache outside the repository and builds only
# what is missing: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet and
# kube-proxy (from k8s.io/kubernetes through the Go module proxy; the kubelet and kube-proxy run
# the real node of test/support/real-node.ts), etcd (go.etcd.io/etcd/server/v3), kwok and kwokctl.
# Prints the binary directory as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${KEELSON_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keelson-test-cluster}
bin="$cache/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

log() { echo "ensure-binaries: $*" >&2; }

# Several test processes may ask at once: one builds, the others wait for it.
exec 9>"$cache/.ensure-binaries.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi

have() { [ -x "$bin/$1" ]; }

build_kubernetes() {
  local work="$cache/build-kubernetes-$KUBE_VERSION" staging_version="v0.${KUBE_VERSION#1.}"
  mkdir -p "$work"
  # Every k8s.io staging module is required as v0.0.0 by k8s.io/kubernetes and replaced with a
  # local path upstream, so a throwaway module must pin each one to the matching v0.X.Y.
  local staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
    pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)
  {
    echo "module keelson.local/kubebuild"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package kubebuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
  # Modules that vanished from the staging list make `go mod tidy` fail; drop replaces that
  # no longer resolve rather than guessing.
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 || true)
  local major=${KUBE_VERSION%%.*} minor
  minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
    ld+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    have "$cmd" && continue
    log "building $cmd v$KUBE_VERSION (cold builds take several minutes)"
    (cd "$work" && go build -trimpath -ldflags "-s -w $ld" -o "$bin/$cmd.tmp.$$" "k8s.io/kubernetes/cmd/$cmd")
    mv "$bin/$cmd.tmp.$$" "$bin/$cmd"
  done
}

build_etcd() {
  local work="$cache/build-etcd-$ETCD_VERSION"
  mkdir -p "$work"
  printf 'module keelson.local/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$ETCD_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage etcdbuild\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/tools.go"
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 || true)
  log "building etcd v$ETCD_VERSION"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp.$$" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp.$$" "$bin/etcd"
}

build_kwok() {
  for cmd in kwok kwokctl; do
    have "$cmd" && continue
    log "building $cmd v$KWOK_VERSION"
    GOBIN="$cache/gobin-kwok-$KWOK_VERSION" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$cmd@v$KWOK_VERSION"
    cp "$cache/gobin-kwok-$KWOK_VERSION/$cmd" "$bin/$cmd"
  done
}

# The stage definitions kwokctl installs by default (plus the chaos stage that fails a pod) come from
# the same kwok module, so a cluster given its own --config behaves like a default one.
copy_stages() {
  local dir="$bin/../stages" src
  src=$(cd "$cache" && go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { log "cannot find sigs.k8s.io/kwok@v$KWOK_VERSION in the module cache"; exit 1; }
  mkdir -p "$dir.tmp"
  cp "$src"/kustomize/stage/node/fast/node-initialize.yaml \
    "$src"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$src"/kustomize/stage/pod/fast/pod-ready.yaml \
    "$src"/kustomize/stage/pod/fast/pod-complete.yaml \
    "$src"/kustomize/stage/pod/fast/pod-delete.yaml \
    "$src"/kustomize/stage/pod/chaos/pod-container-running-failed.yaml "$dir.tmp/"
  chmod u+w "$dir.tmp"/*
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

if ! have kube-apiserver || ! have kube-controller-manager || ! have kube-scheduler || ! have kubectl || ! have kubelet || ! have kube-proxy; then
  build_kubernetes
fi
have etcd || build_etcd
if ! have kwok || ! have kwokctl; then build_kwok; fi
[ -f "$bin/../stages/pod-container-running-failed.yaml" ] || copy_stages
echo "$bin"
