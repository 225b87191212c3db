#!/usr/bin/env bash
# A real sisyd on loopback through devcluster, driven by sisy-probe (the
# client library without the shell): round trips, pipelining order, exit
# codes, wrong password, unknown and changed server keys, a readonly user,
# deleting a user, SIGTERM shutdown and a restart that keeps the data.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}
P="$BIN/sisy-probe"
T=$(mktemp -d /tmp/sisy-test-protocol.XXXXXX)
export SISYD="$BIN/sisyd"
cleanup() { "$HERE/devcluster" down "$T/c" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
# running PID: the process exists and is no zombie (kill -0 would not
# tell: a node devcluster started has no parent left to reap it).
running() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

"$HERE/devcluster" up 1 "$T/c" >/dev/null || fail "devcluster up"
set -a; . "$T/c/env"; set +a
export HOME="$T/home"; mkdir -p "$HOME"

"$P" ping put p:k hello >/dev/null || fail "ping/put"
[ "$("$P" get p:k)" = hello ] || fail "get after put"
[ -z "$("$P" get p:missing)" ] || fail "a missing key printed something"
"$P" pipeline 500 || fail "pipelined PUT/GET pairs out of order"
[ "$("$P" whoami)" = "admin admin" ] || fail "whoami"
# The login left a cached key: the next one-shot skips Argon2id.
grep -q '^#sisy-key v1 ' "$HOME/.sisy/passfile" || fail "no cached key"
[ "$(stat -c %a "$HOME/.sisy/passfile")" = 600 ] || fail "passfile not 0600"

SISY_PASSWORD=wrong "$P" ping 2>"$T/err"; rc=$?
[ $rc = 2 ] || fail "wrong password exited $rc"
grep -q "authentication failed" "$T/err" || fail "wrong password message: $(cat "$T/err")"
SISY_USER=nosuchuser "$P" ping 2>"$T/err2"; rc=$?
[ $rc = 2 ] || fail "unknown user exited $rc"
# Unknown user and wrong password read the same, but for the name.
[ "$(sed 's/nosuchuser/admin/' "$T/err2")" = "$(cat "$T/err")" ] || fail "unknown user is distinguishable"

# Trust: no key given and nothing pinned -> untrusted; another key -> changed.
env -u SISY_SERVER_KEY "$P" ping 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "not trusted" "$T/err" || fail "unknown server key: rc $rc, $(cat "$T/err")"
SISY_SERVER_KEY=$(head -c 32 /dev/urandom | base64) "$P" ping 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "KEYCHANGED\|changed" "$T/err" || fail "other server key: rc $rc, $(cat "$T/err")"
mkdir -p "$HOME/.sisy"
echo "$NODE1_HOST:$NODE1_PORT sisy-ed25519 $(head -c 32 /dev/urandom | base64)" >"$HOME/.sisy/known_servers"
env -u SISY_SERVER_KEY "$P" ping 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "has changed" "$T/err" || fail "pinned other key: rc $rc, $(cat "$T/err")"
echo "$NODE1_HOST:$NODE1_PORT sisy-ed25519 $SISY_SERVER_KEY" >"$HOME/.sisy/known_servers"
env -u SISY_SERVER_KEY "$P" ping || fail "pinned key not trusted"

# Roles.
"$P" useradd reader readonly r-pass || fail "useradd"
SISY_USER=reader SISY_PASSWORD=r-pass "$P" get p:k >/dev/null || fail "reader cannot read"
SISY_USER=reader SISY_PASSWORD=r-pass "$P" put p:k x 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "permission denied" "$T/err" || fail "reader wrote: rc $rc $(cat "$T/err")"
"$P" userdel reader || fail "userdel"
SISY_USER=reader SISY_PASSWORD=r-pass "$P" ping 2>/dev/null; rc=$?
[ $rc = 2 ] || fail "a deleted user logged in (rc $rc)"

# SIGTERM: clean exit; a restart keeps data and versions.
kill -TERM "$NODE1_PID"
for i in $(seq 1 400); do running "$NODE1_PID" || break; sleep 0.05; done
running "$NODE1_PID" && fail "sisyd ignored SIGTERM"
grep -q "stopped cleanly" "$NODE1_DIR/sisyd.log" || fail "no clean stop in the log"
"$SISYD" -D "$NODE1_DIR" --listen="127.0.0.1:$NODE1_PORT" </dev/null >>"$NODE1_DIR/sisyd.log" 2>&1 &
NEWPID=$!
sed -i "s/^NODE1_PID=.*/NODE1_PID=$NEWPID/" "$T/c/env"
for i in $(seq 1 100); do "$P" ping 2>/dev/null && break; sleep 0.05; done
[ "$("$P" get p:k)" = hello ] || fail "data lost across a restart"
echo "ok: round trips, pipelining, exit codes, trust, roles, shutdown, restart"
