#!/bin/bash
# thread-cpu.sh BIN_DIR [N] [P] [-- sisyd flags...]: one sisyd
# (unsafe_no_fsync), N PUTs (default 2000000) at pipeline P (default 16)
# from 50 clients over 100,000 keys with 100-byte values, then prints each
# sisyd thread's CPU per PUT (user and system, from /proc/PID/task/*/stat
# before and after), the flushes and compaction bytes of the run, and
# sisyd's peak RSS. Less noisy than ops/s on a shared machine, and it shows
# which thread a change moved work to. Used for the thread figures in
# docs/BENCHMARKS.md; e.g.
#   bench/thread-cpu.sh build/bin 2000000 16 -- --memtable_bytes=4194304
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$1" && pwd); shift
N=2000000; P=16
if [ $# -gt 0 ] && [ "$1" != -- ]; then N=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" != -- ]; then P=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = -- ] && shift
T=$(mktemp -d /tmp/thread-cpu.XXXXXX)
trap '"$HERE/../tests/cluster/devcluster" down "$T/c" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
BUILD_BIN="$BIN" SISYD="$BIN/sisyd" "$HERE/../tests/cluster/devcluster" up 1 "$T/c" --log-level warn -- --unsafe_no_fsync=true "$@" >/dev/null
set -a; . "$T/c/env"; set +a
export HOME="$T/home"; mkdir -p "$HOME"
"$BIN/sisy-bench" kv --clients 50 --pipeline 16 --requests 1 --keyspace 100000 --value_size 100 --ratio 1:0 >/dev/null
snap() { for t in /proc/$NODE1_PID/task/*; do echo "$(cat "$t/comm" | tr ' ' _):$(basename "$t") $(awk '{print $14, $15}' "$t/stat")"; done | sort; }
snap >"$T/before"
"$BIN/sisy-bench" kv --clients 50 --pipeline "$P" --requests "$N" --keyspace 100000 --value_size 100 --ratio 0:1 --prefill 0
snap >"$T/after"
tick=$(getconf CLK_TCK)
join "$T/before" "$T/after" | awk -v n="$N" -v tick="$tick" '
  { u = ($4 - $2) * 1e6 / tick / n; s = ($5 - $3) * 1e6 / tick / n; tu += u; ts += s
    if (u + s >= 0.005) printf "  %-24s user %.2f  sys %.2f  = %.2f us/PUT\n", $1, u, s, u + s }
  END { printf "  %-24s user %.2f  sys %.2f  = %.2f us/PUT\n", "sisyd (all threads)", tu, ts, tu + ts }'
"$BIN/sisy-cli" -At -c 'INFO' 2>/dev/null | grep -E '^engine\.(flushes|compaction_bytes_written)' | sed 's/^/  /'
grep -E 'VmHWM' "/proc/$NODE1_PID/status" | sed 's/^/  sisyd peak RSS /; s/VmHWM:[[:space:]]*//'
