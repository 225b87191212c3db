#!/usr/bin/env bash
# cluster-vs-etcd.sh [BUILD_DIR] — a 3-node sisyd cluster against a 3-member
# etcd cluster (Debian's etcd-server, default durability: every write
# fsync'd), both on loopback, in one run, alternating (issue 5):
#   1. replicated writes (PUT / etcd put), 16-byte keys, 100-byte values,
#      1, 16, 64 and 256 clients, pipeline 1: ops/s, p50, p99;
#   2. linearizable reads (GET / etcd range, etcd's default), same clients,
#      and, for scale, GETs against a single sisyd in the same run;
#   3. failover: SIGKILL the leader while one writer writes through a
#      follower; time from the kill to the first write acknowledged of those
#      sent after it; FAILOVERS kills each (default 5), median;
#   4. stability: at least FULL_S seconds (default 60) of writes from 64 clients at
#      full load: leader changes (Raft term before/after, and the leader).
# Both sides get all their load at the leader (followers forward on both,
# which adds a hop to both); each side's leader is asked after every change.
# sisyd is driven by `sisy-bench kv` (client library: sealed protobuf
# frames), etcd by `sisy-bench etcd`, the same one-thread epoll generator
# speaking HTTP/1.1 keep-alive to etcd's JSON gateway (POST /v3/kv/put and
# /v3/kv/range, base64 keys and values). Failover writers: sisy-history (one
# client pinned to a follower, 100 ms answer timeout, 5 ms between tries)
# and `sisy-bench etcd --probe` (same timeout and pause, over the followers).
#
# Each throughput figure is the median of REPEAT (default 3) alternating
# rounds (etcd, sisyd, etcd, sisyd, ...): this 2-core machine is shared,
# and its load moves single figures by 2x within minutes.
# Knobs: SCALE (requests per measurement x SCALE, default 0.5), REPEAT, FAILOVERS,
# FULL_S, CLIENTS (default "1 16 64 256"), PARTS (default "write read
# failover stability"). docs/BENCHMARKS.md records a run.
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$BUILD/bin" && pwd)
DEVCLUSTER="$HERE/../tests/cluster/devcluster"
SCALE=${SCALE:-0.5}
REPEAT=${REPEAT:-3}
FAILOVERS=${FAILOVERS:-5}
FULL_S=${FULL_S:-60}
CLIENTS=${CLIENTS:-"1 16 64 256"}
PARTS=${PARTS:-"write read failover stability"}
KEYSPACE=100000
command -v etcd >/dev/null ||
  { echo "etcd missing (apt-get install -y etcd-server etcd-client)"; exit 1; }
T=$(mktemp -d /tmp/sisy-etcd-bench.XXXXXX)
declare -A EPID ECLIENT EPEER EMID
cleanup() {
  local j
  for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
  for i in 1 2 3; do
    [ -n "${EPID[$i]:-}" ] && kill -9 "${EPID[$i]}" 2>/dev/null || true
  done
  for d in "$T"/s*; do
    [ -f "$d/env" ] && "$DEVCLUSTER" down "$d" >/dev/null 2>&1 || true
  done
  rm -rf "$T"
}
trap cleanup EXIT
export HOME="$T/home"
mkdir -p "$HOME"
export SISYD="$BIN/sisyd" SISY_CLI="$BIN/sisy-cli" PATH="$BIN:$PATH"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
now_ns() { python3 -c 'import time;print(time.monotonic_ns())'; }
# kill_ns PID: SIGKILL and print CLOCK_MONOTONIC ns right after it landed.
kill_ns() { python3 -c 'import os,sys,time;os.kill(int(sys.argv[1]),9);print(time.monotonic_ns())' "$1"; }
requests_for() { # requests_for CLIENTS
  local n
  case $1 in 1) n=3000 ;; 16) n=20000 ;; 64) n=40000 ;; *) n=60000 ;; esac
  python3 -c "print(max(int($n * $SCALE), 10 * $1))"
}

# ---------------------------------------------------------------- etcd ---
etcd_start() { # etcd_start I (data dir kept across restarts)
  local i=$1 ic="" j
  for j in 1 2 3; do ic+="${ic:+,}e$j=http://127.0.0.1:${EPEER[$j]}"; done
  local state=new
  [ -d "$T/etcd$i/member" ] && state=existing
  etcd --name "e$i" --data-dir "$T/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${ECLIENT[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ECLIENT[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${EPEER[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${EPEER[$i]}" \
    --initial-cluster "$ic" --initial-cluster-state "$state" \
    --initial-cluster-token sisy-bench --logger zap --log-level error \
    >>"$T/etcd$i.log" 2>&1 &
  EPID[$i]=$!
  disown "${EPID[$i]}" # no "Killed" job reports when a failover kills it
}
etcd_endpoints() { echo "127.0.0.1:${ECLIENT[1]},127.0.0.1:${ECLIENT[2]},127.0.0.1:${ECLIENT[3]}"; }
# etcd_status: "LEADER_INDEX TERM" (1..3) from the member that leads, by its
# own status (asked one by one: etcdctl prints nothing when one endpoint of
# several is down).
etcd_status() {
  local i
  for i in 1 2 3; do
    kill -0 "${EPID[$i]}" 2>/dev/null || continue
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${ECLIENT[$i]}" --command-timeout=2s \
      endpoint status -w json 2>/dev/null | python3 -c '
import json,sys
try: st=json.load(sys.stdin)[0]["Status"]
except Exception: sys.exit(1)
ids=[int(x) for x in sys.argv[1:]]
# Only the leader itself is believed (a follower may name a dead one).
if st.get("leader", 0) not in ids or st["leader"] != st["header"]["member_id"]:
    sys.exit(1)
print(ids.index(st["leader"]) + 1, st["header"]["raft_term"])' \
      "${EMID[1]}" "${EMID[2]}" "${EMID[3]}" && return 0
  done
  return 1
}
# etcd_ids: EMID[i] = member id of e<i>.
etcd_ids() {
  local out i
  out=$(ETCDCTL_API=3 etcdctl --endpoints "$(etcd_endpoints)" member list -w json)
  for i in 1 2 3; do
    EMID[$i]=$(echo "$out" | python3 -c '
import json,sys
for m in json.load(sys.stdin)["members"]:
    if m["name"]==sys.argv[1]: print(m["ID"])' "e$i")
  done
}
etcd_wait_leader() { # etcd_wait_leader [NOT_I]: prints "I TERM"
  local s t
  for t in $(seq 1 300); do
    if s=$(etcd_status) && [ "${s%% *}" != "${1:-0}" ]; then echo "$s"; return; fi
    sleep 0.1
  done
  echo "etcd: no leader within 30 s" >&2; exit 1
}
etcd_up() {
  local i
  for i in 1 2 3; do ECLIENT[$i]=$(free_port); EPEER[$i]=$(free_port); done
  for i in 1 2 3; do etcd_start "$i"; done
  local t
  for t in $(seq 1 300); do
    etcd_ids 2>/dev/null && [ -n "${EMID[3]}" ] && break
    sleep 0.1
  done
  etcd_wait_leader >/dev/null
}

# --------------------------------------------------------------- sisyd ---
sisy_up() { # sisy_up NAME N
  "$DEVCLUSTER" up "$2" "$T/$1" --log-level warn >/dev/null
}
sisy_env() { # sisy_env NAME: export its env (SISY_*, NODEi_*)
  set -a; . "$T/$1/env"; set +a
}
# sisy_status NAME: "LEADER_ID TERM" when a live node names a leader and
# that leader, asked itself, says it leads (CLUSTER INFO: a node's own Raft
# view; another node's may be stale for a moment).
sisy_info() { # sisy_info I: "ROLE LEADER_ID TERM" of node I
  local h=NODE${1}_HOST p=NODE${1}_PORT
  "$BIN/sisy-cli" -h "${!h}" -p "${!p}" --csv -c "CLUSTER INFO" 2>/dev/null |
    python3 -c '
import csv,sys
kv={r[0]:r[1] for r in csv.reader(sys.stdin) if len(r)==2}
print(kv["role"], kv["leader_id"] or 0, kv["term"])' 2>/dev/null
}
sisy_status() {
  local i r l t
  for i in $NODE_IDS; do
    [ -n "$(eval echo \$NODE${i}_PID)" ] || continue
    read -r r l t < <(sisy_info "$i") || continue
    [ "${l:-0}" != 0 ] || continue
    read -r r _ t < <(sisy_info "$l") || continue
    [ "$r" = leader ] && { echo "$l $t"; return 0; }
  done
  return 1
}
sisy_wait_leader() { # sisy_wait_leader NAME [NOT_ID]: prints "ID TERM"
  local s t
  for t in $(seq 1 300); do
    if s=$(sisy_status "$1") && [ "${s%% *}" != "${2:-0}" ]; then echo "$s"; return; fi
    sleep 0.1
  done
  echo "sisyd: no leader within 30 s" >&2; exit 1
}
sisy_addr() { local h=NODE${1}_HOST p=NODE${1}_PORT; echo "${!h}:${!p}"; }

# ---------------------------------------------------------- measuring ---
ops_of() { sed -n 's/.*: \([0-9]*\) ops\/s.*/\1/p'; }
pct_of() { sed -n "s/.*$1 \([0-9.]*\) ms.*/\1/p"; }
report() { # report LABEL LINE
  printf '  %-34s %8s ops/s  p50 %7s ms  p99 %7s ms\n' "$1" \
    "$(echo "$2" | ops_of)" "$(echo "$2" | pct_of p50)" "$(echo "$2" | pct_of p99)"
}
ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 else 'n/a')"; }

bench_sisy() { # bench_sisy HOSTS CLIENTS RATIO
  "$BIN/sisy-bench" kv --hosts "$1" --clients "$2" --requests "$(requests_for "$2")" \
    --keyspace "$KEYSPACE" --key_size 16 --value_size 100 --ratio "$3" --prefill 0
}
bench_etcd() { # bench_etcd ENDPOINT CLIENTS RATIO
  "$BIN/sisy-bench" etcd --endpoints "$1" --clients "$2" --requests "$(requests_for "$2")" \
    --keyspace "$KEYSPACE" --key_size 16 --value_size 100 --ratio "$3" --prefill 0
}
prefill() { # both sides hold every key once, so reads find values
  "$BIN/sisy-bench" kv --hosts "$(sisy_addr "$SL")" --clients 16 --requests 1 \
    --keyspace "$KEYSPACE" --ratio 1:0 --prefill 1 >/dev/null
  "$BIN/sisy-bench" etcd --endpoints "127.0.0.1:${ECLIENT[$EL]}" --clients 16 \
    --requests 1 --keyspace "$KEYSPACE" --ratio 1:0 --prefill 1 >/dev/null
}

# first_ok_after T_KILL FILE: ms from the kill to the first ok write among
# those sent after it.
first_ok_after() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
t0 = int(sys.argv[1])
best = None
for line in open(sys.argv[2]):
    o = json.loads(line)
    if o.get("op") != "get" and o["outcome"] == "ok" and o["sent"] >= t0:
        best = o["return"] if best is None else min(best, o["return"])
print("%.0f" % ((best - t0) / 1e6) if best else "none")
EOF
}
median() { python3 -c 'import statistics,sys;v=[float(x) for x in sys.argv[1:] if x!="none"];print("%.0f"%statistics.median(v) if v else "none")' "$@"; }

# failover_sisy / failover_etcd: one kill each; FO_MS gets the time (run
# them in this shell, not in $(...): they restart what they killed).
failover_sisy() {
  local st l f
  st=$(sisy_wait_leader s3); l=${st%% *}
  f=$(( l % 3 + 1 ))
  rm -f "$T/stop"
  "$BIN/sisy-history" --hosts "$(sisy_addr "$f")" --clients 1 --pinned --put 100 \
    --cas 0 --unique 100 --timeout-ms 100 --retry-ms 100 --backoff-ms 5 --final 0 \
    --duration-ms 60000 --stop-file "$T/stop" --out "$T/fo.jsonl" >/dev/null &
  local hp=$!
  sleep 1
  local pid=NODE${l}_PID
  local t0; t0=$(kill_ns "${!pid}")
  "$DEVCLUSTER" kill "$T/s3" "$l" >/dev/null # its bookkeeping
  sisy_wait_leader s3 "$l" >/dev/null
  sleep 1
  touch "$T/stop"; wait "$hp" || true
  FO_MS=$(first_ok_after "$t0" "$T/fo.jsonl")
  "$DEVCLUSTER" start "$T/s3" "$l" >/dev/null
  sisy_env s3
}
failover_etcd() {
  local st l eps="" j
  st=$(etcd_wait_leader); l=${st%% *}
  for j in 1 2 3; do [ "$j" = "$l" ] || eps+="${eps:+,}127.0.0.1:${ECLIENT[$j]}"; done
  rm -f "$T/stop"
  "$BIN/sisy-bench" etcd --endpoints "$eps" --probe "$T/efo.jsonl" --stop-file "$T/stop" \
    --timeout_ms 100 >/dev/null &
  local pp=$!
  sleep 1
  local t0; t0=$(kill_ns "${EPID[$l]}")
  while kill -0 "${EPID[$l]}" 2>/dev/null; do sleep 0.01; done
  etcd_wait_leader "$l" >/dev/null
  sleep 1
  touch "$T/stop"; wait "$pp" || true
  FO_MS=$(first_ok_after "$t0" "$T/efo.jsonl")
  etcd_start "$l"
}

echo "== sisyd (3 nodes) vs etcd $(etcd --version | sed -n 's/etcd Version: //p') (3 members), loopback, 16 B keys, 100 B values"
echo "   load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
sisy_up s3 3
sisy_env s3
etcd_up
SL=$(sisy_wait_leader s3); SL=${SL%% *}
EL=$(etcd_wait_leader); EL=${EL%% *}
prefill

# med_line LINE...: a report line whose ops/s, p50 and p99 are the medians
# of the given lines' (each median taken on its own).
med_line() {
  python3 - "$@" <<'EOF'
import re, statistics, sys
vals = {"ops": [], "p50": [], "p99": []}
for line in sys.argv[1:]:
    vals["ops"].append(float(re.search(r": ([0-9.]+) ops/s", line).group(1)))
    vals["p50"].append(float(re.search(r"p50 ([0-9.]+) ms", line).group(1)))
    vals["p99"].append(float(re.search(r"p99 ([0-9.]+) ms", line).group(1)))
m = {k: statistics.median(v) for k, v in vals.items()}
print("median of %d: %.0f ops/s, p50 %.3f ms, p99 %.3f ms" %
      (len(sys.argv) - 1, m["ops"], m["p50"], m["p99"]))
EOF
}

# One client count: REPEAT rounds, each etcd then sisyd (then the single
# node for reads), so both sides see the same machine; medians compared.
declare -A W_S W_E
if [[ " $PARTS " == *" read "* ]]; then
  sisy_up s1 1
  ( sisy_env s1
    "$BIN/sisy-bench" kv --hosts "$(sisy_addr 1)" --clients 16 --requests 1 \
      --keyspace "$KEYSPACE" --ratio 1:0 --prefill 1 >/dev/null )
fi
for c in $CLIENTS; do
  SL=$(sisy_wait_leader s3); SL=${SL%% *}
  EL=$(etcd_wait_leader); EL=${EL%% *}
  if [[ " $PARTS " == *" write "* ]]; then
    echo "-- writes, $c client(s), $REPEAT rounds"
    es=(); ss=()
    for r in $(seq 1 "$REPEAT"); do
      e=$(bench_etcd "127.0.0.1:${ECLIENT[$EL]}" "$c" 0:1); report "etcd put" "$e"; es+=("$e")
      s=$(bench_sisy "$(sisy_addr "$SL")" "$c" 0:1); report "sisyd PUT" "$s"; ss+=("$s")
    done
    e=$(med_line "${es[@]}"); s=$(med_line "${ss[@]}")
    report "etcd put (median)" "$e"; report "sisyd PUT (median)" "$s"
    W_S[$c]=$s; W_E[$c]=$e
    echo "   throughput ratio sisyd/etcd: $(ratio "$(echo "$s" | ops_of)" "$(echo "$e" | ops_of)")"
  fi
  if [[ " $PARTS " == *" read "* ]]; then
    echo "-- linearizable reads, $c client(s), $REPEAT rounds"
    es=(); ss=(); os=()
    for r in $(seq 1 "$REPEAT"); do
      e=$(bench_etcd "127.0.0.1:${ECLIENT[$EL]}" "$c" 1:0); report "etcd range" "$e"; es+=("$e")
      s=$(bench_sisy "$(sisy_addr "$SL")" "$c" 1:0); report "sisyd GET (3 nodes)" "$s"; ss+=("$s")
      o=$( sisy_env s1; bench_sisy "$(sisy_addr 1)" "$c" 1:0 ); report "sisyd GET (1 node)" "$o"; os+=("$o")
    done
    e=$(med_line "${es[@]}"); s=$(med_line "${ss[@]}"); o=$(med_line "${os[@]}")
    report "etcd range (median)" "$e"; report "sisyd GET 3 nodes (median)" "$s"
    report "sisyd GET 1 node (median)" "$o"
    echo "   reads: 3 nodes / 1 node $(ratio "$(echo "$s" | ops_of)" "$(echo "$o" | ops_of)"), sisyd/etcd $(ratio "$(echo "$s" | ops_of)" "$(echo "$e" | ops_of)")"
  fi
done
[ -f "$T/s1/env" ] && "$DEVCLUSTER" down "$T/s1" >/dev/null
sisy_env s3

if [[ " $PARTS " == *" failover "* ]]; then
  echo "-- failover: SIGKILL the leader, first write acknowledged after it ($FAILOVERS kills each)"
  fs=(); fe=()
  for k in $(seq 1 "$FAILOVERS"); do
    failover_etcd; fe+=("$FO_MS")
    failover_sisy; fs+=("$FO_MS")
    echo "   kill $k: etcd ${fe[-1]} ms, sisyd ${fs[-1]} ms"
  done
  echo "   median: etcd $(median "${fe[@]}") ms, sisyd $(median "${fs[@]}") ms (target < 300 ms)"
fi

if [[ " $PARTS " == *" stability "* ]]; then
  echo "-- stability: at least ${FULL_S} s of writes, 64 clients, full load"
  for side in etcd sisyd; do
    if [ $side = etcd ]; then
      before=$(etcd_wait_leader); l=${before%% *}
      rate=$(echo "${W_E[64]:-: 3000 ops/s}" | ops_of)
    else
      before=$(sisy_wait_leader s3); l=${before%% *}
      rate=$(echo "${W_S[64]:-: 10000 ops/s}" | ops_of)
    fi
    # Back-to-back runs of about 15 s each (the generators count
    # requests, not seconds) until FULL_S seconds have passed.
    n=$(( rate * 15 )); total=0; lines=()
    t0=$(date +%s%N)
    while [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$FULL_S" ]; do
      if [ $side = etcd ]; then
        out=$("$BIN/sisy-bench" etcd --endpoints "127.0.0.1:${ECLIENT[$l]}" --clients 64 \
          --requests "$n" --keyspace "$KEYSPACE" --ratio 0:1 --prefill 0)
      else
        out=$("$BIN/sisy-bench" kv --hosts "$(sisy_addr "$l")" --clients 64 \
          --requests "$n" --keyspace "$KEYSPACE" --ratio 0:1 --prefill 0)
      fi
      lines+=("$out"); total=$(( total + n ))
    done
    secs=$(python3 -c "print('%.1f' % (($(date +%s%N) - $t0) / 1e9))")
    if [ $side = etcd ]; then after=$(etcd_wait_leader); else after=$(sisy_wait_leader s3); fi
    report "$side (${#lines[@]} runs, median)" "$(med_line "${lines[@]}")"
    echo "   $side: $total writes in $secs s"
    echo "   $side leader/term before: $before, after: $after ($( [ "$before" = "$after" ] && echo "no leader change" || echo "LEADER CHANGED"))"
  done
fi

if [[ " $PARTS " == *" write "* && -n "${W_S[64]:-}" ]]; then
  s=${W_S[64]} e=${W_E[64]}
  echo "== at 64 clients: write throughput sisyd/etcd $(ratio "$(echo "$s" | ops_of)" "$(echo "$e" | ops_of)") (target >= 3), p99 sisyd $(echo "$s" | pct_of p99) ms vs etcd $(echo "$e" | pct_of p99) ms (target: no worse)"
fi
