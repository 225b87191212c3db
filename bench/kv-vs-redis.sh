#!/usr/bin/env bash
# kv-vs-redis.sh [BUILD_DIR] — request processing of one sisyd against
# redis-server (Debian), same machine, same run, alternating:
#   GET and PUT/SET, 50 clients, pipeline 1 and 16, 16-byte keys, 100-byte
#   values: sisyd with `unsafe_no_fsync = true` (the Raft log is written but
#   not fsync'd: benchmarks only) vs redis without persistence;
#   then every write fsync'd: sisyd's default (the Raft log fsyncs every
#   batch: group commit) vs redis with appendonly yes + appendfsync always.
# Every figure is the median of REPEAT rounds; each round runs redis, then
# sisyd, back to back, so both see the same load on a shared machine.
# Prints each pair, the medians, and the ratio sisyd/redis: the median of
# the rounds' own ratios (issue 3's targets: >= 0.8 without persistence,
# >= 1.0 with fsync). Why per round: this machine's speed drifts by +-15%
# over minutes, and a round's two runs, back to back, drift together; a
# ratio of two medians can pair a fast minute of one with a slow one of
# the other. sisy-bench reports its own CPU share (one epoll thread, like
# redis-benchmark), to show it is not the bottleneck.
# Knobs: N (requests per unpipelined round, default 200000), NP (requests
# per pipelined round, default 5 x N), K (keyspace, default 100000),
# REPEAT (rounds, default 5), ONLY (a regexp over the row names
# "get-P1 set-P1 get-P16 set-P16 set-fsync", anchored as you write it,
# e.g. ONLY='^set-P1$', default all), SISYD_FLAGS (more sisyd flags for
# both servers, e.g. SISYD_FLAGS='--compaction_nice=0').
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$BUILD/bin" && pwd)
N=${N:-200000}
# A pipelined round of N requests lasts ~0.3 s: one or two of the engine's
# flush-and-compaction cycles, so a round measured wherever it fell in one.
# At 5 x N it lasts about as long as an unpipelined round (~2 s), covers
# ten or more, and measures the steady state.
NP=${NP:-$((N * 5))}
K=${K:-100000}
REPEAT=${REPEAT:-5}
ONLY=${ONLY:-.}
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
sisy_up() { # sisy_up NAME [sisyd flags...]
  local name=$1; shift
  # shellcheck disable=SC2086 # SISYD_FLAGS: words on purpose
  set -- "$@" ${SISYD_FLAGS:-}
  BUILD_BIN="$BIN" SISYD="$BIN/sisyd" "$HERE/../tests/cluster/devcluster" up 1 "$T/$name" --log-level warn ${1:+-- "$@"} >/dev/null
  set -a; . "$T/$name/env"; set +a
  export HOME="$T/home"; mkdir -p "$HOME"
}
sisy_down() { "$HERE/../tests/cluster/devcluster" down "$T/$1" >/dev/null; }
requests() { if [ "$1" -gt 1 ]; then echo "$NP"; else echo "$N"; fi; } # requests PIPELINE
redis_ops() { # redis_ops TEST PIPELINE
  redis-benchmark -p "$RPORT" -c 50 -n "$(requests "$2")" -P "$2" -d 100 -r "$K" -t "$1" -q 2>/dev/null |
    tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ {print $2}' | tail -1 | cut -d. -f1
}
sisy_ops() { # sisy_ops RATIO PIPELINE: "ops/s bench-cpu%" on stdout, the full line on stderr
  local out; out=$("$BIN/sisy-bench" kv --clients 50 --pipeline "$2" --requests "$(requests "$2")" --keyspace "$K" --value_size 100 --ratio "$1" --prefill 0)
  echo "    $out" >&2
  echo "$out" | sed -n 's/.*: \([0-9]*\) ops\/s.*bench cpu \([0-9]*\)%.*/\1 \2/p'
}
# settle PID: waits (at most 20 s) until the process used no CPU for 0.3 s,
# and prints how long that took in ms. sisyd's flushes and compactions go
# on after its clients finish; measured in the next (redis) round, they
# made redis slower and sisyd's next round cheaper than the steady state.
settle() {
  python3 - "$1" <<'PY'
import os, sys, time
pid, tick = sys.argv[1], os.sysconf("SC_CLK_TCK")
def cpu():
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError:
        return None
t0 = time.monotonic(); last = cpu(); quiet = 0.0
while last is not None and quiet < 0.3 and time.monotonic() - t0 < 20:
    time.sleep(0.05); now = cpu()
    quiet = quiet + 0.05 if now == last else 0.0
    last = now
print(int((time.monotonic() - t0 - quiet) * 1000))
PY
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

row() { # row NAME REDIS_TEST SISY_RATIO PIPELINE
  local name=$1 rs="" ss="" cs="" qs="" i r s c busy
  wanted "$name" || return 0
  for i in $(seq 1 "$REPEAT"); do
    r=$(redis_ops "$2" "$4")
    read -r s c < <(sisy_ops "$3" "$4")
    busy=$(settle "$NODE1_PID")
    echo "    round $i: redis $r, sisyd $s (sisy-bench cpu $c%; sisyd busy ${busy} ms after)" >&2
    rs="$rs $r"; ss="$ss $s"; cs="$cs $c"; qs="$qs $(ratio "$s" "$r")"
  done
  r=$(echo "$rs" | median); s=$(echo "$ss" | median); c=$(echo "$cs" | median)
  printf '%-10s sisyd %8s ops/s  redis %8s ops/s  ratio %s  (medians of %s paired rounds; sisy-bench cpu %s%%)\n' "$name" "$s" "$r" "$(echo "$qs" | median)" "$REPEAT" "$c"
}
wanted() { echo "$1" | grep -Eq "$ONLY"; }

# Both key spaces filled first, so GETs find their keys on both sides.
prefill() {
  redis-benchmark -p "$RPORT" -c 50 -n $((K * 3)) -P 16 -d 100 -r "$K" -t set -q >/dev/null 2>&1
  "$BIN/sisy-bench" kv --clients 50 --pipeline 16 --requests 1 --keyspace "$K" --value_size 100 --ratio 1:0 >/dev/null
}

if wanted get-P1 || wanted set-P1 || wanted get-P16 || wanted set-P16; then
  echo "== sisyd (unsafe_no_fsync) vs redis-server (no persistence): 50 clients, 16 B keys, 100 B values, N=$N (pipelined: $NP)"
  sisy_up s1 --unsafe_no_fsync=true
  redis_up --appendonly no
  prefill
  row get-P1 get 1:0 1
  row set-P1 set 0:1 1
  row get-P16 get 1:0 16
  row set-P16 set 0:1 16
  redis_down
  sisy_down s1
fi

if wanted set-fsync; then
  echo "== every write fsync'd: sisyd (group commit) vs redis appendfsync always"
  sisy_up s2
  redis_up --appendonly yes --appendfsync always
  row set-fsync set 0:1 1
  redis_down
  sisy_down s2
fi
