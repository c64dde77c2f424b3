#!/usr/bin/env bash
# Installs what keelson needs on a fresh Debian machine and builds it.
#   scripts/install-deps.sh          git and buildah with runc (its default isolation: without it every
#                                    Dockerfile RUN fails with "exec: no command"), npm packages, dist/,
#                                    and the `keelson` command on PATH (npm install -g of this checkout)
#   scripts/install-deps.sh --test   also what the test suite runs for real: a registry, Redis,
#                                    RabbitMQ, Chromium, busybox for scratch images, the Go-built
#                                    test cluster (kube-apiserver, controller-manager, scheduler,
#                                    kubectl, kubelet, kube-proxy, etcd, kwok, kwokctl), the real
#                                    node's runtime (containerd, runc, CNI plugins, socat, iptables)
#                                    and its images (pause, busybox, buildah; RabbitMQ, s3rver and a
#                                    node base for CI pods; mmdebstrap, gcc and npm make them), cached
#                                    under ~/.cache/keelson-test-cluster and built only when missing.
# Safe to run again: every step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(git ca-certificates buildah runc uidmap)
if [ "${1:-}" = "--test" ]; then
  packages+=(openssl docker-registry redis-server rabbitmq-server busybox-static apache2-utils chromium)
  packages+=(containerd containernetworking-plugins socat iproute2 iptables util-linux mmdebstrap gcc libc6-dev curl)
fi
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
# The Debian packages start system services on their default ports; the tests start their own
# instances on free ports, so the system ones are stopped to keep the machine quiet.
for svc in docker-registry redis-server rabbitmq-server containerd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
# The `keelson` command, from any directory: npm links this checkout into its global prefix
# (`npm prefix -g`, e.g. /usr/bin/keelson; NPM_CONFIG_PREFIX chooses another). Keep the checkout.
npm_sudo=""; [ -w "$(npm prefix -g)" ] || [ "$(id -u)" -eq 0 ] || npm_sudo="sudo"
$npm_sudo npm install -g --no-audit --no-fund --loglevel=error . >/dev/null

if [ "${1:-}" = "--test" ]; then
  # Go >= 1.26 builds the test cluster (machines of this kind ship it; Debian's golang-go is too old).
  command -v go >/dev/null 2>&1 || { echo "install-deps: the test cluster needs Go >= 1.26 on PATH" >&2; exit 1; }
  bash test/cluster/ensure-binaries.sh >/dev/null
  bash test/cluster/ensure-images.sh >/dev/null
  bash test/cluster/ensure-images.sh deps >/dev/null
  bash test/cluster/ensure-images.sh ci >/dev/null
fi
