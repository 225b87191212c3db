#!/usr/bin/env bash
# sisy-cli as scripts use it, against a real sisyd (devcluster): -c and -At,
# a missing key vs an empty value, a 10,000-line stdin script, SCAN paging
# with LIMIT, exit statuses 0-3 with their messages, ON_ERROR_STOP, -f with
# FILE:LINE errors, \i, ~/.sisyrc and -X, flags beating the environment,
# the password file and its mode check, trust of the server key, several
# hosts tried in turn, --pipe, @FILE values, roles, and a server restart in
# the middle of a session (lost connection reported, writes retried).
# Model: /work/shared/acceptance/shell; this goes further.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}
C="$BIN/sisy-cli"
T=$(mktemp -d /tmp/sisy-test-shell.XXXXXX)
export SISYD="$BIN/sisyd"
cleanup() {
	[ -n "${CLI_PID:-}" ] && kill "$CLI_PID" 2>/dev/null
	"$HERE/devcluster" down "$T/c" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
# running PID: the process exists and is no zombie (kill -0 would not
# tell: a node devcluster started has no parent left to reap it).
running() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}
# expect_rc WANT CMD...: runs CMD (stdout to $T/out, stderr to $T/err).
expect_rc() {
	local want=$1; shift
	"$@" >"$T/out" 2>"$T/err"; local rc=$?
	[ "$rc" = "$want" ] || fail "$* exited $rc, not $want; stderr: $(head -c 400 "$T/err")"
}
err_has() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1': $(head -c 400 "$T/err")"; }
out_is() { [ "$(cat "$T/out")" = "$1" ] || fail "stdout '$(head -c 400 "$T/out")', want '$1'"; }

"$HERE/devcluster" up 1 "$T/c" >/dev/null || fail "devcluster up"
set -a; . "$T/c/env"; set +a
export HOME="$T/home"; mkdir -p "$HOME"

# --- the acceptance contract ---------------------------------------------
expect_rc 0 "$C" -c "PUT bar:k1 'hello world'"
v=$("$C" -At -c "GET bar:k1") || fail "GET via -c failed"
[ "$v" = "hello world" ] || fail "GET -At printed '$v'"
expect_rc 0 "$C" -c "PUT bar:empty ''"
e=$("$C" -At -c "GET bar:empty"; echo "rc=$?")
m=$("$C" -At -c "GET bar:missing"; echo "rc=$?")
[ "$m" = "rc=0" ] || fail "missing key with -At: '$m'"
[ "$e" = $'\nrc=0' ] || fail "empty value with -At: '$e'"
# A missing key does not stop a script, even with ON_ERROR_STOP.
expect_rc 0 "$C" -v ON_ERROR_STOP=1 -At -c "GET bar:missing" -c "PUT bar:after-missing 1"
[ "$("$C" -At -c "GET bar:after-missing")" = 1 ] || fail "ON_ERROR_STOP stopped on a missing key"

seq 1 10000 | awk '{printf "PUT bar:s:%06d v%d\n", $1, $1}' | "$C" >/dev/null || fail "10,000-line stdin script"
n=$("$C" -At -c "SCAN PREFIX bar:s: LIMIT 20000" | grep -c '^bar:s:')
[ "$n" = 10000 ] || fail "SCAN after the 10,000-line script found $n keys"
# LIMIT bounds the total across the server's pages (1000 rows each).
n=$("$C" -At -c "SCAN PREFIX bar:s: LIMIT 2500" | wc -l)
[ "$n" = 2500 ] || fail "SCAN LIMIT 2500 printed $n lines"
expect_rc 0 "$C" -At -c "SCAN FROM bar:s:000998 TO bar:s:001001"
out_is $'bar:s:000998|v998\nbar:s:000999|v999\nbar:s:001000|v1000'

# --- exit statuses and messages ------------------------------------------
SISY_PASSWORD=wrong-password expect_rc 2 "$C" -c "PING"
err_has "authentication failed"
expect_rc 1 "$C" -c "GET"
err_has "sisy-cli: error: GET: expected a key"
expect_rc 1 "$C" -c "NOSUCHCOMMAND"
printf 'PUT bar:a 1\nNOSUCHCOMMAND x\nPUT bar:b 2\n' >"$T/stop.sisy"
expect_rc 3 "$C" -v ON_ERROR_STOP=1 <"$T/stop.sisy"
err_has '<stdin>:2: error: unknown command "NOSUCHCOMMAND"'
[ "$("$C" -At -c "GET bar:a")" = 1 ] || fail "the line before the error was not applied"
[ -z "$("$C" -At -c "GET bar:b")" ] || fail "the script went on after ON_ERROR_STOP"
# Without ON_ERROR_STOP the script goes on and exits 1.
expect_rc 1 "$C" -f "$T/stop.sisy"
err_has "$T/stop.sisy:2: error: unknown command"
[ "$("$C" -At -c "GET bar:b")" = 2 ] || fail "a script without ON_ERROR_STOP stopped"

# -f with an error inside an \i'd file: that file's name and line.
printf 'PUT inc:1 a\n\n-- a comment\nPUT inc:2\nPUT inc:3 c\n' >"$T/inner.sisy"
printf 'PUT outer:1 x\n\\i %s\nPUT outer:2 y\n' "$T/inner.sisy" >"$T/outer.sisy"
expect_rc 1 "$C" -f "$T/outer.sisy"
err_has "$T/inner.sisy:4: error: PUT: expected a value"
[ "$("$C" -At -c "MGET outer:1 inc:1 inc:3 outer:2")" = $'outer:1|x\ninc:1|a\ninc:3|c\nouter:2|y' ] ||
	fail "\\i did not run both files"
expect_rc 3 "$C" -v ON_ERROR_STOP=on -f "$T/outer.sisy" -c "PUT never:1 z"
[ -z "$("$C" -At -c "GET never:1")" ] || fail "-c after a stopped -f ran"

# -c and -f run in the order given; a batch spans them; one left open fails.
printf 'PUT ord:2 b\n' >"$T/ord.sisy"
expect_rc 0 "$C" -q -c "BEGIN" -c "PUT ord:1 a" -f "$T/ord.sisy" -c "COMMIT"
[ "$("$C" -At -c "MGET ord:1 ord:2")" = $'ord:1|a\nord:2|b' ] || fail "batch across -c/-f"
expect_rc 1 "$C" -c "BEGIN" -c "PUT ord:3 c"
err_has "the input ended inside a batch: 1 queued write discarded"
[ -z "$("$C" -At -c "GET ord:3")" ] || fail "an uncommitted batch was written"

# --- flags, environment, ~/.sisyrc ---------------------------------------
SISY_USER=nosuchuser expect_rc 0 "$C" -U admin -c "PING"
SISY_HOST=127.0.0.1:1 expect_rc 0 "$C" -h "$NODE1_HOST" -p "$NODE1_PORT" -c "PING"
# Hosts are tried in turn: a dead one first, then the node.
expect_rc 0 "$C" -h "127.0.0.1:1,$NODE1_HOST:$NODE1_PORT" -At -c "WHOAMI"
out_is "admin|admin|1|leader"
expect_rc 2 "$C" -h 127.0.0.1:1 -c "PING"
err_has "sisy-cli: error:"
printf '\\set ON_ERROR_STOP 1\n\\set greet rc-was-read\n' >"$HOME/.sisyrc"
expect_rc 0 "$C" -At -c "\\echo :greet"
out_is "rc-was-read"
expect_rc 1 "$C" -X -c "\\echo :greet"
err_has "variable :greet is not set"
printf 'GET :greet\nBAD\nPUT rc:after 1\n' >"$T/rc.sisy"
expect_rc 3 "$C" -f "$T/rc.sisy"
rm "$HOME/.sisyrc"

# --- trust ------------------------------------------------------------------
(
	unset SISY_SERVER_KEY; export HOME="$T/home2"
	expect_rc 2 "$C" -c "PING"
	err_has "not trusted"
	expect_rc 0 "$C" --server-key "$(awk '{print $2}' "$NODE1_DIR/cluster.pub")" -c "PING"
	# ... or the name of a file holding it.
	expect_rc 0 "$C" --server-key "$NODE1_DIR/cluster.pub" -c "PING"
) || exit 1
SISY_SERVER_KEY=$(head -c 32 /dev/urandom | base64) expect_rc 0 "$C" --server-key "$SISY_SERVER_KEY" -c "PING"
SISY_SERVER_KEY=$(head -c 32 /dev/urandom | base64) expect_rc 2 "$C" -c "PING"

# --- the password file ----------------------------------------------------
H3="$T/home3"; mkdir -p "$H3/.sisy"
printf '# comment\n*:*:admin:%s\n' "$SISY_PASSWORD" >"$H3/.sisy/passfile"
chmod 600 "$H3/.sisy/passfile"
(
	unset SISY_PASSWORD; export HOME="$H3"
	expect_rc 0 "$C" -w -c "PING"
	chmod 644 "$H3/.sisy/passfile"
	expect_rc 2 "$C" -w -c "PING"
	err_has "has group or world access"
	err_has "chmod 0600"
	# SISY_PASSWORD beats the password file.
	chmod 600 "$H3/.sisy/passfile"
	SISY_PASSWORD=wrong expect_rc 2 "$C" -w -c "PING"
	expect_rc 0 "$C" -w -c "PING"
) || exit 1

# --- values from files, binary keys and values ----------------------------
head -c 3000 /dev/urandom >"$T/blob"
expect_rc 0 "$C" -c "PUT x'00ff01' @$T/blob"
"$C" -At -c "GET x'00ff01'" >"$T/blob.out" || fail "GET of a binary key"
head -c 3000 "$T/blob.out" | cmp -s - "$T/blob" || fail "binary value changed in a round trip"
[ "$(stat -c %s "$T/blob.out")" = 3001 ] || fail "-At added more than one newline"
printf 'from stdin\0with nul' | "$C" -c "PUT stdin:k @-" >/dev/null || fail "PUT @-"
"$C" -At -c "GET stdin:k" | head -c 19 | cmp -s - <(printf 'from stdin\0with nul') || fail "@- value"
printf 'PUT k @-\n' | "$C" >/dev/null 2>"$T/err"; [ $? = 1 ] || fail "@- in a stdin script"
err_has "<stdin>:1: error: @- cannot read standard input"

# --- --pipe ---------------------------------------------------------------
{ seq 1 1000 | awk '{printf "PUT pipe:%04d %d\n", $1, $1}'; echo "GET pipe:0001"; echo "PUT 'bad"; echo "DEL pipe:0002"; } >"$T/pipe.in"
"$C" --pipe <"$T/pipe.in" >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "--pipe with bad lines exited $rc"
out_is "sent 1001, succeeded 1001, failed 2, unknown 0"
err_has "<stdin>:1001: error: --pipe takes PUT and DEL only, not GET"
err_has "<stdin>:1002: error: unterminated"
[ "$("$C" -At -c "SCAN PREFIX pipe: LIMIT 5000" | wc -l)" = 999 ] || fail "--pipe did not write 999 keys"
seq 1 300 | awk '{printf "PUT pipe2:%d v\n", $1}' | expect_rc 0 "$C" --pipe

# --- roles ----------------------------------------------------------------
expect_rc 0 "$C" -c "USER ADD reader ROLE readonly PASSWORD 'r pw'"
SISY_USER=reader SISY_PASSWORD='r pw' expect_rc 0 "$C" -At -c "GET bar:a"
out_is 1
SISY_USER=reader SISY_PASSWORD='r pw' expect_rc 1 "$C" -c "PUT bar:a 2"
err_has "permission denied"
SISY_USER=reader SISY_PASSWORD='r pw' expect_rc 1 "$C" -c "USER LIST"
expect_rc 0 "$C" -c "USER ROLE reader readwrite"
SISY_USER=reader SISY_PASSWORD='r pw' expect_rc 0 "$C" -c "PUT bar:r 1"
expect_rc 0 "$C" -c "USER DEL reader"
SISY_USER=reader SISY_PASSWORD='r pw' expect_rc 2 "$C" -c "PING"

# --- a server restart in the middle of a session ---------------------------
# The shell runs as a coprocess; each step waits for its answer.
coproc CLI { "$C" -At 2>&1; }
CLI_PID=$CLI_PID
say() { echo "$1" >&"${CLI[1]}"; }
hear() { local l; IFS= read -r -t 20 l <&"${CLI[0]}" || fail "no answer to $1"; echo "$l"; }
say "PUT live:1 one"; [[ "$(hear put1)" == "PUT 1 VERSION "* ]] || fail "first PUT in the session"
kill -TERM "$NODE1_PID"
for i in $(seq 1 400); do running "$NODE1_PID" || break; sleep 0.05; done
running "$NODE1_PID" && fail "sisyd did not stop on SIGTERM"
"$SISYD" -D "$NODE1_DIR" --listen="127.0.0.1:$NODE1_PORT" </dev/null >>"$NODE1_DIR/sisyd.log" 2>&1 &
NODE1_PID=$!
sed -i "s/^NODE1_PID=.*/NODE1_PID=$NODE1_PID/" "$T/c/env"
for i in $(seq 1 200); do "$C" -c PING >/dev/null 2>&1 && break; sleep 0.05; done
# A read on the dead session is reported; the next command reconnects.
say "GET live:1"; l=$(hear get1)
[[ "$l" == *"error: the connection to the server was lost"* ]] || fail "lost connection not reported: '$l'"
say "GET live:1"; [ "$(hear get2)" = one ] || fail "no reconnect on the next command"
# A write on a dead session is retried (same client id and sequence).
kill -TERM "$NODE1_PID"
for i in $(seq 1 400); do running "$NODE1_PID" || break; sleep 0.05; done
running "$NODE1_PID" && fail "sisyd did not stop on SIGTERM"
"$SISYD" -D "$NODE1_DIR" --listen="127.0.0.1:$NODE1_PORT" </dev/null >>"$NODE1_DIR/sisyd.log" 2>&1 &
NODE1_PID=$!
sed -i "s/^NODE1_PID=.*/NODE1_PID=$NODE1_PID/" "$T/c/env"
for i in $(seq 1 200); do "$C" -c PING >/dev/null 2>&1 && break; sleep 0.05; done
say "PUT live:2 two"; [[ "$(hear put2)" == "PUT 1 VERSION "* ]] || fail "a write after a restart was not retried"
exec {CLI[1]}>&-
wait "$CLI_PID"; rc=$?
CLI_PID=
[ $rc = 1 ] || fail "the session with one failed read exited $rc"
[ "$("$C" -At -c "GET live:2")" = two ] || fail "the retried write is missing"
echo "ok: acceptance contract, exit statuses, ON_ERROR_STOP, -f/\\i locations, rc file, trust, passfile, binary values, --pipe, roles, restart"
