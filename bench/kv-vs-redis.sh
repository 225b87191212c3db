#!/usr/bin/env bash
# kv-vs-redis.sh [BUILD_DIR] — request processing of one sisyd against
# redis-server (Debian), same machine, same run, alternating:
#   GET and PUT/SET, 50 clients, pipeline 1 and 16, 16-byte keys, 100-byte
#   values, sisyd with engine sync off vs redis without persistence;
#   then every write fsync'd: sisyd --sync (group commit) vs redis with
#   appendonly yes + appendfsync always.
# Prints each figure and the ratio sisyd/redis (issue 3's targets: >= 0.8
# without persistence, >= 1.0 with fsync). sisy-bench reports its own CPU
# share, to show it is not the bottleneck. Knobs: N (requests, default
# 200000), K (keyspace, default 100000).
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$BUILD/bin" && pwd)
N=${N:-200000}
K=${K:-100000}
command -v redis-server >/dev/null || { echo "redis-server missing (apt-get install redis-server redis-tools)"; exit 1; }
T=$(mktemp -d /tmp/sisy-kv-bench.XXXXXX)
RPID=
cleanup() {
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
  for d in "$T"/s*; do [ -f "$d/env" ] && "$HERE/../tests/cluster/devcluster" down "$d" >/dev/null 2>&1 || true; done
  rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

redis_up() { # redis_up EXTRA_ARGS...
  local port; port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$T" "$@" >"$T/redis.log" 2>&1 &
  RPID=$!
  for i in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  RPORT=$port
}
redis_down() { kill "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=; }
sisy_up() { # sisy_up NAME [--sync]
  SISYD="$BIN/sisyd" "$HERE/../tests/cluster/devcluster" up 1 "$T/$1" --log-level warn ${2:+-- --sync} >/dev/null
  set -a; . "$T/$1/env"; set +a
  export HOME="$T/home"; mkdir -p "$HOME"
}
redis_ops() { # redis_ops TEST PIPELINE
  redis-benchmark -p "$RPORT" -c 50 -n "$N" -P "$2" -d 100 -r "$K" -t "$1" -q 2>/dev/null |
    tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ {print $2}' | tail -1
}
sisy_ops() { # sisy_ops RATIO PIPELINE
  local out; out=$("$BIN/sisy-bench" kv --clients 50 --pipeline "$2" --requests "$N" --keyspace "$K" --value_size 100 --ratio "$1")
  echo "  $out" >&2
  echo "$out" | sed -n 's/.*: \([0-9]*\) ops\/s.*/\1/p'
}
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

echo "== sisyd (sync off) vs redis-server (no persistence): 50 clients, 16 B keys, 100 B values, N=$N"
sisy_up s1
redis_up --appendonly no
for P in 1 16; do
  for t in get set; do
    r=$(redis_ops "$t" "$P")
    if [ $t = get ]; then s=$(sisy_ops 1:0 "$P"); else s=$(sisy_ops 0:1 "$P"); fi
    printf '%-4s pipeline %-2s  sisyd %8s ops/s  redis %10s ops/s  ratio %s\n' "$t" "$P" "$s" "$r" "$(ratio "$s" "$r")"
  done
done
redis_down
"$HERE/../tests/cluster/devcluster" down "$T/s1" >/dev/null

echo "== every write fsync'd: sisyd --sync (group commit) vs redis appendfsync always"
sisy_up s2 --sync
redis_up --appendonly yes --appendfsync always
r=$(redis_ops set 1)
s=$(sisy_ops 0:1 1)
printf 'set  pipeline 1   sisyd %8s ops/s  redis %10s ops/s  ratio %s\n' "$s" "$r" "$(ratio "$s" "$r")"
redis_down
