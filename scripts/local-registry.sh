#!/usr/bin/env bash
# Starts a plain registry (Debian's docker-registry) on a loopback address, for local builds:
#   bash scripts/local-registry.sh [ADDR] [DIR]     ADDR default 127.0.0.1:5000,
#                                                   DIR default ~/.local/share/keelson/registry
# Debian's package ships a config that needs htpasswd auth and is started only by systemd; this
# writes a config of its own (no auth, loopback only, storage under DIR), starts
# `docker-registry serve DIR/config.yml` in the background, waits until it answers, and prints
# how to stop it. Safe to run again: a registry already answering on ADDR is left as it is.
set -euo pipefail

addr="${1:-127.0.0.1:5000}"
dir="${2:-$HOME/.local/share/keelson/registry}"
case "$addr" in
  127.*:*|localhost:*|\[::1\]:*) ;;
  *) echo "local-registry: $addr is not a loopback address (it has no auth; keep it on 127.0.0.1)" >&2; exit 2 ;;
esac
command -v docker-registry >/dev/null 2>&1 || { echo "local-registry: docker-registry is not installed (apt-get install docker-registry)" >&2; exit 1; }
# GET /v2/ answers 200 on a registry without auth (Node is there: keelson needs it)
answers() { node -e 'fetch(`http://${process.argv[1]}/v2/`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$addr"; }
if answers; then
  echo "local-registry: a registry already answers on $addr"
  exit 0
fi

mkdir -p "$dir/data"
cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
EOF
nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
echo $! >"$dir/registry.pid"
for _ in $(seq 1 100); do
  if answers; then
    echo "local-registry: listening on $addr (log: $dir/registry.log; stop: kill \$(cat $dir/registry.pid))"
    exit 0
  fi
  kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || break
  sleep 0.1
done
echo "local-registry: docker-registry did not start; its log:" >&2
tail -5 "$dir/registry.log" >&2
kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
exit 1
