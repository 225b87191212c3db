#!/usr/bin/env bash
# A replicated cluster of real sisyd processes (devcluster up 3), driven
# with sisy-cli: writes through every node (followers forward them),
# linearizable reads on followers (a write through one node is seen at
# once through every other), stale reads, CLUSTER INFO / NODES / FAILOVER,
# a user added through a follower that works on every node and whose
# deletion ends its sessions on another node, -h a,b,c past a dead host,
# a 4th node that joins, catches up from a snapshot (the log was
# compacted), is promoted and is removed again, SIGTERM on the leader
# handing leadership over, pipelined writes that wait for a leader applied
# in order, and a wiped data directory refused.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}
C="$BIN/sisy-cli"
T=$(mktemp -d /tmp/sisy-test-cluster.XXXXXX)
DC="$HERE/devcluster"
export SISYD="$BIN/sisyd" SISY_CLI="$C"
cleanup() {
	[ -n "${COPROC_PID:-}" ] && kill "$COPROC_PID" 2>/dev/null
	"$DC" down "$T/c" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
load() { set -a; . "$T/c/env"; set +a; }
on() { local p=NODE${1}_PORT; echo "-h 127.0.0.1 -p ${!p}"; } # on I: node I alone
# The leader's id as node $1 sees it.
leader_of() { "$C" $(on "$1") -At -c "CLUSTER NODES" 2>/dev/null | awk -F'|' '$3=="leader" {print $1}'; }
wait_for() { # wait_for SECONDS CMD...: polls CMD until it succeeds
	local end=$(( $(date +%s) + $1 )); shift
	until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.05; done
}

# Compaction after 50 entries, so a node added later needs a snapshot.
# Election timeouts as the fault tests have them (libfault.py): with the
# default 150 ms a sanitized build on a busy 2-core machine holds
# elections of its own, and the leader checks below would see them.
"$DC" up 3 "$T/c" --election-ticks 40 --heartbeat-ticks 4 -- --compact_entries=50 --compact_keep=5 --leader_wait_ms=20000 >/dev/null ||
	fail "devcluster up 3"
load
export HOME="$T/home"; mkdir -p "$HOME"

# --- roles and CLUSTER NODES -----------------------------------------
L=$(leader_of 1)
[[ "$L" =~ ^[1-3]$ ]] || fail "no leader in CLUSTER NODES (got '$L')"
for i in 1 2 3; do
	[ "$(leader_of $i)" = "$L" ] || fail "node $i sees another leader"
	rows=$("$C" $(on $i) --csv -c "CLUSTER NODES")
	[ "$(echo "$rows" | head -1)" = "id,address,role,term,commit_index,applied_index,lag" ] ||
		fail "CLUSTER NODES columns: $(echo "$rows" | head -1)"
	[ "$(echo "$rows" | tail -n +2 | wc -l)" = 3 ] || fail "CLUSTER NODES on $i: $rows"
	want=follower; [ "$i" = "$L" ] && want=leader
	who=$("$C" $(on $i) -At -c "WHOAMI")
	[ "$who" = "admin|admin|$i|$want" ] || fail "WHOAMI on node $i: '$who' (want role $want)"
done
"$C" $(on 1) -At -c "CLUSTER INFO" | grep -qx "members|3" || fail "CLUSTER INFO members"

# --- writes through every node, linearizable reads on every node ------
for i in 1 2 3; do
	"$C" $(on $i) -c "PUT w:$i v$i" >/dev/null || fail "PUT through node $i"
done
for n in $(seq 1 15); do
	w=$(( n % 3 + 1 )); r=$(( (n + 1) % 3 + 1 ))
	"$C" $(on $w) -c "PUT lin:k $n" >/dev/null || fail "PUT lin:k through node $w"
	got=$("$C" $(on $r) -At -c "GET lin:k")
	[ "$got" = "$n" ] || fail "a read on node $r right after a write on node $w saw '$got', not $n"
done
for i in 1 2 3; do
	[ "$("$C" $(on $i) -At -c "GET w:3")" = v3 ] || fail "GET w:3 on node $i"
	v=$("$C" $(on $i) --consistency=stale -At -c "GET w:1")
	[ "$v" = v1 ] || fail "stale read on node $i: '$v'"
done
# A batch through a follower is atomic and exactly once.
F=$(( L % 3 + 1 ))
printf 'BEGIN\nPUT b:1 x\nPUT b:2 y\nCOMMIT\n' | "$C" $(on $F) >/dev/null || fail "batch through a follower"
[ "$("$C" $(on $L) -At -c "MGET b:1 b:2" | tr '\n' ' ')" = "b:1|x b:2|y " ] || fail "batch not applied"

# --- users are replicated; deletion ends sessions on every node ------
"$C" $(on $F) -c "USER ADD bob ROLE readwrite PASSWORD 'bob-pw'" >/dev/null ||
	fail "USER ADD through follower $F"
for i in 1 2 3; do
	wait_for 10 sh -c "\"$C\" $(on $i) -At -c 'USER LIST' | grep -q '^bob|readwrite$'" ||
		fail "bob not on node $i"
	SISY_USER=bob SISY_PASSWORD=bob-pw "$C" $(on $i) -c "PUT bob:$i x" >/dev/null ||
		fail "bob cannot write through node $i"
done
O=$(( F % 3 + 1 )); [ "$O" = "$F" ] && O=$(( O % 3 + 1 ))
coproc SISY_USER=bob SISY_PASSWORD=bob-pw "$C" $(on $O) -At 2>&1
echo "GET w:1" >&"${COPROC[1]}"
read -r -t 10 line <&"${COPROC[0]}" || fail "bob's session on node $O did not answer"
[ "$line" = v1 ] || fail "bob's session read '$line'"
"$C" $(on $F) -c "USER DEL bob" >/dev/null || fail "USER DEL through node $F"
wait_for 10 sh -c "! \"$C\" $(on $O) -At -c 'USER LIST' | grep -q '^bob|'" || fail "bob still on node $O"
echo "GET w:1" >&"${COPROC[1]}"
read -r -t 10 line <&"${COPROC[0]}" || fail "bob's session said nothing after the deletion"
case "$line" in *session*|*authentication*|*closed*|*ended*) ;; *) fail "bob's session after deletion: '$line'" ;; esac
exec {COPROC[1]}>&-
# bash unsets COPROC_PID once the shell has exited (it may have by now)
if [ -n "${COPROC_PID:-}" ]; then wait "$COPROC_PID" 2>/dev/null || true; fi
COPROC_PID=

# --- -h a,b,c: a dead first host is skipped --------------------------
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
[ "$("$C" -h "127.0.0.1:$dead,$SISY_HOST" -At -c "GET w:2")" = v2 ] || fail "-h with a dead first host"

# --- failover on request ----------------------------------------------
# The answer comes once the target leads (or says another node was
# elected instead: on a loaded machine an election can beat a transfer;
# then ask again).
moved=false
for try in 1 2 3; do
	L=$(leader_of 1); T2=$(( L % 3 + 1 )); F=$(( T2 % 3 + 1 ))
	if "$C" $(on $F) -c "CLUSTER FAILOVER TO $T2" >/dev/null 2>"$T/err"; then
		moved=true; break
	fi
	grep -q "was elected instead" "$T/err" || fail "CLUSTER FAILOVER TO $T2: $(cat "$T/err")"
done
$moved || fail "CLUSTER FAILOVER never moved the leadership where asked"
[ "$(leader_of $T2)" = "$T2" ] || fail "node $T2 does not lead after CLUSTER FAILOVER TO $T2"
L=$T2

# --- a 4th node: join, snapshot, promotion, removal --------------------
for n in $(seq 1 120); do echo "PUT snap:$n v$n"; done | "$C" $(on $L) >/dev/null || fail "filling the log"
# Wait until the leader compacted its log past what a new node needs.
compacted() {
	local si
	si=$("$C" $(on $L) -At -c "CLUSTER INFO" | sed -n 's/^snapshot_index|//p')
	[ "${si:-0}" -gt 60 ]
}
wait_for 30 compacted || fail "the leader did not compact its log"
id=$("$DC" add "$T/c") || fail "devcluster add"
[ "$id" = 4 ] || fail "the 4th node got id $id"
load
"$DC" wait "$T/c" 60 || fail "the cluster with node 4 is not healthy"
[ "$("$C" $(on 4) -At -c "GET snap:120")" = v120 ] || fail "node 4 did not catch up"
inst=$("$C" $(on 4) -At -c "INFO" | sed -n 's/^raft\.snapshots_installed|//p')
[ "${inst:-0}" -ge 1 ] || fail "node 4 caught up without a snapshot (installed: '$inst')"
"$C" $(on 1) -At -c "CLUSTER NODES" | grep -q '^4|.*|follower|' || fail "node 4 was not promoted"
"$C" $(on 4) -c "PUT from4 yes" >/dev/null || fail "a write through node 4"
"$C" $(on 1) -c "CLUSTER REMOVE NODE 4" >/dev/null || fail "CLUSTER REMOVE NODE 4"
wait_for 10 sh -c "[ \"\$(\"$C\" $(on 1) -At -c 'CLUSTER NODES' | wc -l)\" = 3 ]" || fail "node 4 still listed"
"$DC" stop "$T/c" 4
[ "$("$C" $(on 1) -At -c "GET from4")" = yes ] || fail "data written through node 4"

# --- SIGTERM on the leader hands leadership over ----------------------
L=$(leader_of 1)
LP=NODE${L}_PID
"$DC" stop "$T/c" "$L" || fail "devcluster stop $L"
grep -q "leadership handed over" "$T/c/node$L/sisyd.log" || fail "the leader stopped without handing over"
O=$(( L % 3 + 1 ))
# Until the stopped leader's last report ages out, node O may list it as
# leader next to the new one: wait for one leader that is not L.
new_leader() {
	NL=$(leader_of $O)
	[[ "$NL" =~ ^[1-3]$ ]] && [ "$NL" != "$L" ]
}
wait_for 20 new_leader || fail "no new leader after SIGTERM (got '$NL')"
"$C" $(on $O) -c "PUT after:term yes" >/dev/null || fail "a write after the handover"
"$DC" start "$T/c" "$L" || fail "restart node $L"
load
"$DC" wait "$T/c" 60 || fail "not healthy after the restart"
[ "$("$C" $(on $L) -At -c "GET after:term")" = yes ] || fail "the restarted node missed a write"

# --- pipelined writes that wait for a leader keep their order ----------
# Two nodes down: the third has no leader; 50 pipelined PUTs of one key
# wait (parked) and go through, in order, once a majority is back.
A=1; B=2; R=3
"$DC" stop "$T/c" $A; "$DC" stop "$T/c" $B
load
wait_for 20 sh -c "\"$C\" $(on $R) -At -c 'CLUSTER INFO' | grep -qx 'leader_id|0'" ||
	fail "node $R still sees a leader with two nodes down"
seq 1 50 | awk '{print "PUT ord:k " $1}' | "$C" $(on $R) --pipe >"$T/pipe.out" 2>&1 &
PIPE=$!
wait_for 20 sh -c "\"$C\" $(on $R) -At -c 'INFO' | grep -q '^store.waiting_for_leader|[1-9]'" ||
	fail "the pipelined writes did not wait for a leader"
"$DC" start "$T/c" $A; "$DC" start "$T/c" $B
wait "$PIPE" || fail "the pipelined writes failed: $(cat "$T/pipe.out")"
load
[ "$("$C" $(on $A) -At -c "GET ord:k")" = 50 ] || fail "pipelined writes applied out of order: $(cat "$T/pipe.out")"
"$DC" wait "$T/c" 60 || fail "not healthy after the restarts"

# --- a wiped data directory is refused ---------------------------------
mkdir -p "$T/empty"
"$SISYD" -D "$T/empty" --listen=127.0.0.1:0 >"$T/out" 2>&1 && fail "sisyd started on an empty directory"
grep -q "cannot come back as its old member" "$T/out" || fail "unclear message for an empty directory: $(cat "$T/out")"
echo "ok: 3 nodes, forwarding, linearizable reads on followers, replicated users, failover, join + snapshot + removal, SIGTERM handover"
