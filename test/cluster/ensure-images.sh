#!/usr/bin/env bash
# Makes sure the images that real pods of the test cluster run exist, built on this machine (no
# image is ever pulled from the internet), and prints the directory of a registry storage
# (docker-registry's filesystem driver) that holds them. test/support/real-node.ts copies that
# directory into each cluster's registry, so the images are built once and cached like the binaries.
#
#   pause:3.10.2           registry.k8s.io/pause (the sandbox image), from the kubelet module's pause.c
#   library/busybox:1.36   docker.io/library/busybox (keelson's copy pod), from Debian busybox-static
#   buildah/stable:v1.38   quay.io/buildah/stable (the stock buildah builder Job), a Debian root
#                          filesystem made by mmdebstrap with buildah, ca-certificates and runc
#
# containerd in the test cluster mirrors docker.io, quay.io, gcr.io and registry.k8s.io to the
# test registry, so these names resolve unchanged; the buildah image mirrors docker.io the same
# way for `FROM` lines built inside the cluster.
#
# Needs: buildah, busybox-static, mmdebstrap, gcc, docker-registry, curl, apt sources that answer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

log() { echo "ensure-images: $*" >&2; }

# The test registry's address inside the cluster's network namespace (test/support/real-node.ts).
REGISTRY_IN_NETNS=10.99.0.2:5000

cache=${KEELSON_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keelson-test-cluster}
# A change to this script or to the node binary builds the images again.
key=$( (cat "$0"; echo "$KUBE_VERSION"; node --version) | sha256sum | cut -c1-12)
out="$cache/images-$key"
mkdir -p "$cache"

exec 9>"$cache/.ensure-images.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
if [ -f "$out/complete" ]; then
  echo "$out/registry"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/keelson-images-XXXXXX")
registry_pid=""
cleanup() {
  [ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null || true
  [ -z "$registry_pid" ] || wait "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)
rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp/registry"

# buildah with a private vfs store in the work dir: no daemon, no overlay, any host.
mkdir -p "$work/tmp"
printf '[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n' "$work/runroot" "$work/root" >"$work/storage.conf"
export CONTAINERS_STORAGE_CONF="$work/storage.conf" TMPDIR="$work/tmp" BUILDAH_ISOLATION=chroot
bh() { buildah --storage-driver vfs --root "$work/root" --runroot "$work/runroot" "$@"; }

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $out.tmp/registry
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

# image NAME TAR [buildah config args...]: a one-layer image from a root filesystem tar.
image() {
  local name=$1 tar=$2; shift 2
  local c
  c=$(bh from scratch)
  bh add "$c" "$tar" / >/dev/null
  bh config "$@" "$c"
  bh commit --quiet --rm "$c" "localhost/$name" >/dev/null
  bh push --quiet --tls-verify=false "localhost/$name" "docker://127.0.0.1:$port/$name"
  log "built $name"
}

# pause, as upstream builds it (build/pause/Makefile), static.
pause_src="$(go env GOMODCACHE)/k8s.io/kubernetes@v$KUBE_VERSION/build/pause/linux/pause.c"
[ -f "$pause_src" ] || (cd "$cache/build-kubernetes-$KUBE_VERSION" && go mod download "k8s.io/kubernetes@v$KUBE_VERSION")
mkdir -p "$work/pause"
gcc -Os -Wall -static -DVERSION=v3.10.2-keelson -o "$work/pause/pause" "$pause_src"
tar -C "$work/pause" -cf "$work/pause.tar" pause
image pause:3.10.2 "$work/pause.tar" --entrypoint '["/pause"]'

# busybox: the static binary and one symlink per applet, like the upstream image.
mkdir -p "$work/busybox/bin" "$work/busybox/tmp"
cp /bin/busybox "$work/busybox/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/busybox/bin/$applet"
done
chmod 1777 "$work/busybox/tmp"
tar -C "$work/busybox" -cf "$work/busybox.tar" .
image library/busybox:1.36 "$work/busybox.tar" --env PATH=/bin --cmd '["sh"]'

debian_rootfs() {
  local tar=$1 packages=$2
  mmdebstrap --quiet --variant=essential --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$tar" >&2
}

# buildah: Debian's buildah with runc (its default isolation) and a registries.conf that sends
# docker.io to the test registry, as containerd does for the cluster's own pulls.
debian_rootfs "$work/buildah.tar" buildah,ca-certificates,runc
mkdir -p "$work/buildah-etc/etc/containers"
cat >"$work/buildah-etc/etc/containers/registries.conf" <<TOML
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$REGISTRY_IN_NETNS"
insecure = true

[[registry]]
location = "$REGISTRY_IN_NETNS"
insecure = true
TOML
tar -C "$work/buildah-etc" -rf "$work/buildah.tar" ./etc/containers/registries.conf
image buildah/stable:v1.38 "$work/buildah.tar" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env BUILDAH_ISOLATION=chroot \
  --cmd '["buildah", "--help"]'

kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; registry_pid=""
touch "$out.tmp/complete"
mv "$out.tmp" "$out"
# Older image sets (another version of this script) are not used any more.
for old in "$cache"/images-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
log "images built in $(( $(date +%s) - started )) s"
echo "$out/registry"
