#!/bin/bash
# loop-instructions.sh BIN_DIR OUT_DIR [N] [P]: one sisyd (unsafe_no_fsync) under callgrind
# (--separate-threads), N PUTs (default 100000) at pipeline P (default 16)
# from 50 clients, then prints the event loop thread's instructions per PUT
# and its top functions (self and inclusive). Instruction counts do not
# depend on the machine's load.
# Needs valgrind. Used for the instruction counts in docs/BENCHMARKS.md
# (issue 3's write path); e.g. bench/loop-instructions.sh build/bin /tmp/cg.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$1" && pwd); OUT=$2; N=${3:-100000}; P=${4:-16}
mkdir -p "$OUT"; rm -f "$OUT"/sisyd.*
W=$(mktemp /tmp/cgw.XXXXXX); cat > $W <<EOS
#!/bin/bash
case "\$1" in init|--help|--version) exec $BIN/sisyd "\$@";; esac
exec valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=$OUT/sisyd.%p $BIN/sisyd "\$@"
EOS
chmod +x $W
T=$(mktemp -d /tmp/cgl.XXXX)
BUILD_BIN="$BIN" SISYD=$W "$HERE/../tests/cluster/devcluster" up 1 "$T/c" --log-level warn -- --unsafe_no_fsync=true >/dev/null || { echo "devcluster up failed"; cat $T/c/*.log; exit 1; }
( set -a; . "$T/c/env"; set +a; export HOME="$T/home"; mkdir -p "$HOME"
  "$BIN/sisy-bench" kv --clients 50 --pipeline $P --requests 1000 --keyspace 100000 --value_size 100 --ratio 0:1 --prefill 0 >/dev/null
  "$BIN/sisy-bench" kv --clients 50 --pipeline $P --requests $N --keyspace 100000 --value_size 100 --ratio 0:1 --prefill 0 )
"$HERE/../tests/cluster/devcluster" down "$T/c" >/dev/null
for i in $(seq 1 50); do ls $OUT/sisyd.*-01 >/dev/null 2>&1 && ! pgrep -f "callgrind-out-file=$OUT" >/dev/null && break; sleep 0.2; done
F=$(ls $OUT/sisyd.*-01 | head -1)
TOT=$(grep -m1 "^summary:" $F | awk '{print $2}')
echo "loop thread: $TOT instructions total, $((TOT / (N + 1000))) per PUT (includes start-up and 100 logins: compare runs of the same N)"
callgrind_annotate $F 2>/dev/null | sed -n 25,50p
echo "--- inclusive"
callgrind_annotate --inclusive=yes $F 2>/dev/null | sed -n 25,70p
rm -rf "$T" $W
