#!/usr/bin/env bash
# Installs what keelson's tests and local builds need: Debian packages (git, buildah, a real OCI
# registry, redis, busybox for scratch test images), npm packages, and the Go-built test cluster
# binaries (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok,
# kwokctl), which are cached under ~/.cache/keelson-test-cluster and built only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(git ca-certificates openssl buildah docker-registry redis-server busybox-static apache2-utils uidmap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start system services we do not use; the tests start their own on free ports.
for svc in docker-registry redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

bash test/cluster/ensure-binaries.sh >/dev/null
