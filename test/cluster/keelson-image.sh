#!/usr/bin/env bash
# Builds keelson's own image from the project's Dockerfile (unchanged: `buildah bud` of the
# checkout) for a real-node test cluster, pushes it to the cluster's registry and prints its digest.
#
#   keelson-image.sh REGISTRY_HOST [REPOSITORY:TAG]     (default keelson/keelson:test)
#
# REGISTRY_HOST is a plain-HTTP registry (the cluster's, forwarded to 127.0.0.1) that already holds
# keelson-test/node:20 from `ensure-images.sh node`: the Dockerfile's BASE, plus this machine's CA
# bundle so `npm ci` in the build reaches the npm registry.
#
# The build keeps its layers between runs (`--layers`, a buildah store in the cache dir next to the
# cached images): buildah reuses a step when its parent and what it copies are unchanged, so with
# the same package.json and package-lock.json the `npm ci` layer is taken from the cache and only
# the steps after `COPY src` run again. The store starts over when buildah or its storage driver
# change, or when it outgrows KEELSON_IMAGE_CACHE_MB (default 6000).
#
# buildah runs with the overlay driver (vfs where the kernel has no overlayfs: slower, a full copy
# per layer) inside a mount namespace of its own (`unshare --mount`): every mount it makes goes
# when it exits, even after a kill -9.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
registry=${1:?usage: keelson-image.sh REGISTRY_HOST [REPOSITORY:TAG]}
target=${2:-keelson/keelson:test}

log() { echo "keelson-image: $*" >&2; }

cache=${KEELSON_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keelson-test-cluster}
store=$cache/keelson-image-layers
mkdir -p "$cache"
exec 9>"$cache/.keelson-image.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi

driver=overlay
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || driver=vfs
# What makes a store unreadable; the layers themselves are checked by buildah against their inputs.
key=$( (echo layers-1; buildah --version; echo "$driver") | sha256sum | cut -c1-12)
limit=${KEELSON_IMAGE_CACHE_MB:-6000}
if [ "$(cat "$store/key" 2>/dev/null)" != "$key" ] || [ "$(du -sm "$store" 2>/dev/null | cut -f1)" -gt "$limit" ]; then
  log "layer cache empty, outdated or over ${limit} MB: starting over"
  rm -rf "$store"
fi
mkdir -p "$store"
echo "$key" >"$store/key"
# runroot (which layers are mounted, locks) is per run: a killed run leaves no stale mount counts.
work=$(mktemp -d "${TMPDIR:-/tmp}/keelson-image-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tmp"
printf '[storage]\ndriver = "%s"\nrunroot = "%s"\ngraphroot = "%s"\n' "$driver" "$work/runroot" "$store/root" >"$store/storage.conf"
echo 'unqualified-search-registries = []' >"$store/registries.conf"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$store/policy.json"
export CONTAINERS_STORAGE_CONF="$store/storage.conf" CONTAINERS_REGISTRIES_CONF="$store/registries.conf" \
  TMPDIR="$work/tmp" BUILDAH_ISOLATION=chroot
bh() {
  unshare --mount --propagation private -- \
    buildah --storage-driver "$driver" --root "$store/root" --runroot "$work/runroot" "$@"
}

# The base, named by what it is made of (the node image's digest and the CA bundle): the same
# name and image ID on every run, so the cached layers on top of it stay valid.
started=$(date +%s)
accept='application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
node_digest=$(curl -fsSI -H "Accept: $accept" "http://$registry/v2/keelson-test/node/manifests/20" \
  | tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }')
[ -n "$node_digest" ] || { echo "keelson-image: $registry serves no keelson-test/node:20" >&2; exit 1; }
base=localhost/keelson-test/node-base:$( (echo "$node_digest"; cat /etc/ssl/certs/ca-certificates.crt) | sha256sum | cut -c1-12)
if ! bh inspect --type image "$base" >/dev/null 2>&1; then
  c=$(bh from --quiet --tls-verify=false --signature-policy "$store/policy.json" "$registry/keelson-test/node:20")
  bh copy "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
  bh config --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$c"
  bh commit --quiet --rm "$c" "$base" >/dev/null
  bh rmi "$registry/keelson-test/node:20" >/dev/null 2>&1 || true
  log "made the base $base"
fi

bh bud --quiet --layers --isolation chroot --signature-policy "$store/policy.json" \
  --build-arg "BASE=$base" -t "localhost/$target" -f "$root/Dockerfile" "$root" >&2
bh push --quiet --tls-verify=false --signature-policy "$store/policy.json" --digestfile "$work/digest" \
  "localhost/$target" "docker://$registry/$target"
log "built and pushed $target in $(( $(date +%s) - started )) s (store $(du -sm "$store" | cut -f1) MB)"
cat "$work/digest"
echo
