#!/usr/bin/env bash
# Makes sure the images that real pods of the test cluster run exist, built on this machine (no
# image is ever pulled from the internet), and prints the directory of a registry storage
# (docker-registry's filesystem driver) that holds them. test/support/real-node.ts copies that
# directory into each cluster's registry, so the images are built once and cached like the binaries.
#
#   ensure-images.sh [node|deps|ci]    one image set, cached on its own (default: node)
#
# Set `node`, what every real-node cluster needs:
#   pause:3.10.2           registry.k8s.io/pause (the sandbox image), from the kubelet module's pause.c
#   library/busybox:1.36   docker.io/library/busybox (keelson's copy pod), from Debian busybox-static
#   buildah/stable:v1.38   quay.io/buildah/stable (the stock buildah builder Job), a Debian root
#                          filesystem made by mmdebstrap with buildah, ca-certificates and runc
#   keelson-test/node:20   the BASE of keelson's own Dockerfile: a Debian root filesystem with git,
#                          ca-certificates, openssh-client, and this machine's node and npm
#
# Sets `deps` and `ci`, for tests whose pods use real dependencies
# (test/integration/deps/real-node-ci.test.ts):
#   keelson-test/rabbitmq:3.10   (deps) Debian's rabbitmq-server (mmdebstrap), AMQP on 5672, guest
#                                may log in from other pods
#   keelson-test/s3rver:3.7.1    (deps) npm s3rver (an S3 API: buckets, PutObject, GetObject) on
#                                node, :9000
#   keelson-test/ci-node:20      (ci) node + keelson's production dependencies (package-lock.json)
#                                in /app + amqplib and @aws-sdk/client-s3 in /ci/node_modules; a
#                                test adds keelson itself as one more layer. A set of its own: a
#                                change of package-lock.json rebuilds only this image.
# s3rver and ci-node start from a Debian root filesystem with this machine's node.
#
# containerd in the test cluster mirrors docker.io, quay.io, gcr.io and registry.k8s.io to the
# test registry, so these names resolve unchanged; the buildah image mirrors docker.io the same
# way for `FROM` lines built inside the cluster.
#
# Needs: buildah, busybox-static, mmdebstrap, gcc, docker-registry, curl, apt sources that answer,
# and for `deps` and `ci` an npm registry that answers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

log() { echo "ensure-images: $*" >&2; }

# The test registry's address inside the cluster's network namespace (test/support/real-node.ts).
REGISTRY_IN_NETNS=10.99.0.2:5000

set=${1:-node}
case $set in
  node|deps|ci) ;;
  *) echo "usage: ensure-images.sh [node|deps|ci]" >&2; exit 2 ;;
esac

cache=${KEELSON_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keelson-test-cluster}
# A change to this script or to the node binary builds the images again; for `ci` also a change
# of keelson's locked dependencies (ci-node holds them).
key=$( (cat "$0"; echo "$KUBE_VERSION"; node --version; [ "$set" != ci ] || cat "$here/../../package-lock.json") | sha256sum | cut -c1-12)
out="$cache/images-$set-$key"
mkdir -p "$cache"

exec 9>"$cache/.ensure-images-$set.lock"
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

debian_rootfs() {
  local tar=$1 packages=$2
  mmdebstrap --quiet --variant=essential --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$tar" >&2
}

node_images() {
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

# node: the machine's Node runtime (glibc; runs on Debian 12) and its npm, in a Debian root fs.
debian_rootfs "$work/node-git.tar" ca-certificates,git,openssh-client,libstdc++6
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
mkdir -p "$work/node-git/usr/local/bin" "$work/node-git/usr/local/lib/node_modules"
cp "$node_bin" "$work/node-git/usr/local/bin/node"
cp -a "$npm_dir" "$work/node-git/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node-git/usr/local/bin/npm"
tar -C "$work/node-git" -rf "$work/node-git.tar" ./usr/local
image keelson-test/node:20 "$work/node-git.tar" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["node"]'
}

DEPS_S3RVER=3.7.1
DEPS_AMQPLIB=2.3.1
DEPS_CLIENT_S3=3.1175.0

NPM_FLAGS=(--no-audit --no-fund --loglevel=error --ignore-scripts)

# A Debian root filesystem with this machine's node (Debian 12's own nodejs is 18, too old for
# keelson), committed as localhost/keelson-test/node-base: the first layer of s3rver and ci-node.
node_base() {
  debian_rootfs "$work/node.tar" libstdc++6,ca-certificates
  mkdir -p "$work/node-bin/usr/bin"
  cp "$(command -v node)" "$work/node-bin/usr/bin/node"
  tar -C "$work/node-bin" -rf "$work/node.tar" ./usr/bin/node
  local c
  c=$(bh from scratch)
  bh add "$c" "$work/node.tar" / >/dev/null
  bh config --env PATH=/usr/local/bin:/usr/bin:/bin --cmd '["node"]' "$c"
  bh commit --quiet --rm "$c" localhost/keelson-test/node-base >/dev/null
}

# on_node NAME DIR [buildah config args...]: node-base plus DIR's tree as a second layer.
on_node() {
  local name=$1 dir=$2; shift 2
  local c
  c=$(bh from localhost/keelson-test/node-base)
  bh add "$c" "$dir" / >/dev/null
  bh config "$@" "$c"
  bh commit --quiet --rm "$c" "localhost/$name" >/dev/null
  bh push --quiet --tls-verify=false "localhost/$name" "docker://127.0.0.1:$port/$name"
  log "built $name"
}

deps_images() {
  # RabbitMQ: the broker as its own user, logging to stdout; guest may log in from other pods
  # (by default only over loopback), which is all a test dependency needs.
  debian_rootfs "$work/rabbitmq.tar" rabbitmq-server
  mkdir -p "$work/rabbitmq-etc/etc/rabbitmq"
  printf 'loopback_users = none\nlisteners.tcp.default = 5672\n' >"$work/rabbitmq-etc/etc/rabbitmq/rabbitmq.conf"
  tar -C "$work/rabbitmq-etc" -rf "$work/rabbitmq.tar" ./etc/rabbitmq/rabbitmq.conf
  image keelson-test/rabbitmq:3.10 "$work/rabbitmq.tar" --user rabbitmq \
    --env PATH=/usr/sbin:/usr/bin:/sbin:/bin --env HOME=/var/lib/rabbitmq --env RABBITMQ_LOGS=- \
    --port 5672 --cmd '["/usr/lib/rabbitmq/bin/rabbitmq-server"]'

  node_base
  mkdir -p "$work/s3rver/opt/s3rver" "$work/s3rver/data"
  (cd "$work/s3rver/opt/s3rver" && echo '{"private":true}' >package.json \
    && npm install "${NPM_FLAGS[@]}" --omit=dev "s3rver@$DEPS_S3RVER" >&2)
  chmod 1777 "$work/s3rver/data"
  on_node "keelson-test/s3rver:$DEPS_S3RVER" "$work/s3rver" --port 9000 \
    --cmd '["node", "/opt/s3rver/node_modules/s3rver/bin/s3rver.js", "--directory", "/data", "--address", "0.0.0.0", "--port", "9000"]'
}

ci_images() {
  # keelson's production dependencies in /app (a test adds package.json, bin, dist... from `npm
  # pack` on top), the test step's client libraries in /ci.
  node_base
  mkdir -p "$work/ci-node/app" "$work/ci-node/ci" "$work/ci-node/tmp"
  cp "$here/../../package.json" "$here/../../package-lock.json" "$work/ci-node/app/"
  (cd "$work/ci-node/app" && npm ci "${NPM_FLAGS[@]}" --omit=dev >&2 && rm package.json package-lock.json)
  (cd "$work/ci-node/ci" && echo '{"private":true,"type":"module"}' >package.json \
    && npm install "${NPM_FLAGS[@]}" "amqplib@$DEPS_AMQPLIB" "@aws-sdk/client-s3@$DEPS_CLIENT_S3" >&2)
  chmod 1777 "$work/ci-node/tmp"
  on_node keelson-test/ci-node:20 "$work/ci-node" --workingdir /ci --cmd '["node"]' \
    --env NODE_ENV=production --env AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING=1
}

"${set}_images"

kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; registry_pid=""
touch "$out.tmp/complete"
mv "$out.tmp" "$out"
# Older builds of this set (another version of this script) are not used any more.
for old in "$cache/images-$set"-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
log "$set images built in $(( $(date +%s) - started )) s"
echo "$out/registry"
