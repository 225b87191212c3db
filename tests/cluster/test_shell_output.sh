#!/usr/bin/env bash
# sisy-cli's commands and output formats against a real sisyd: every
# command in every format (aligned, -A, -At, --csv, --json), byte for byte;
# a missing key vs an empty value in each; binary values escaped when
# aligned and raw with -At; versions and conditions; batches; backslash
# commands (\format, \t, \o, \set/:NAME, \echo, \timing, \watch, \h).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}
C="$BIN/sisy-cli"
T=$(mktemp -d /tmp/sisy-test-shell-output.XXXXXX)
export SISYD="$BIN/sisyd"
cleanup() { "$HERE/devcluster" down "$T/c" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
# is WANT CLI-ARGS...: WANT is the exact stdout of sisy-cli -X ARGS, with
# every newline (exit status 0).
is() {
	local want=$1; shift
	local got rc
	got=$("$C" -X "$@" 2>"$T/err"; echo "|rc=$?")
	[ "$got" = "$want|rc=0" ] || fail "sisy-cli $*:
--- got ---
$got
--- want ---
$want|rc=0
--- stderr ---
$(cat "$T/err")"
}

# like REGEX CLI-ARGS...: the whole stdout matches the extended regex.
like() {
	local re=$1; shift
	local got
	got=$("$C" -X "$@" 2>"$T/err") || fail "sisy-cli $* failed: $(cat "$T/err")"
	[[ "$got" =~ ^$re$ ]] || fail "sisy-cli $*: '$got' does not match '$re'"
}

"$HERE/devcluster" up 1 "$T/c" >/dev/null || fail "devcluster up"
set -a; . "$T/c/env"; set +a
export HOME="$T/home"; mkdir -p "$HOME"

"$C" -q -c "PUT o:a 'x,y'" -c "PUT o:b ''" -c 'PUT o:c "say \"hi\""' || fail "setup"

# --- GET: a value, an empty value, a missing key, in every format ----------
is $' value \n-------\n x,y\n(1 row)\n\n' -c "GET o:a"
is $' value \n-------\n \n(1 row)\n\n' -c "GET o:b"
is $' value \n-------\n(0 rows)\n\n' -c "GET o:missing"
is $'value\nx,y\n(1 row)\n' -A -c "GET o:a"
is $'value\n\n(1 row)\n' -A -c "GET o:b"
is $'value\n(0 rows)\n' -A -c "GET o:missing"
is $'x,y\n' -At -c "GET o:a"
is $'\n' -At -c "GET o:b"
is '' -At -c "GET o:missing"
is $'value\n"x,y"\n' --csv -c "GET o:a"
is $'value\n""\n' --csv -c "GET o:b"
is $'value\n' --csv -c "GET o:missing"
is $'""\n' --csv -t -c "GET o:b"
is '' --csv -t -c "GET o:missing"
is $'value\n"say ""hi"""\n' --csv -c "GET o:c"
is $'[{"value":"x,y"}]\n' --json -c "GET o:a"
is $'[{"value":""}]\n' --json -c "GET o:b"
is $'[]\n' --json -c "GET o:missing"
is $'[{"value":"say \\"hi\\""}]\n' --json -c "GET o:c"

# --- versions and conditions ---------------------------------------------
v=$("$C" -At -c "PUT o:v one" | sed -n 's/^PUT 1 VERSION \([0-9][0-9]*\)$/\1/p')
[ -n "$v" ] || fail "PUT printed no version"
is "one|$v"$'\n' -At -c "GET o:v WITH VERSION"
is "[{\"value\":\"one\",\"version\":$v}]"$'\n' --json -c "GET o:v WITH VERSION"
"$C" -X -c "PUT o:v two IF VERSION $((v + 1000))" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "a failed IF VERSION exited $rc"
grep -q "PUT: the key's version is not $((v + 1000)); nothing was written" "$T/err" || fail "IF VERSION message: $(cat "$T/err")"
is "one"$'\n' -At -c "GET o:v"
w=$("$C" -At -c "PUT o:v two IF VERSION $v" | sed -n 's/^PUT 1 VERSION \([0-9][0-9]*\)$/\1/p')
[ -n "$w" ] && [ "$w" -gt "$v" ] || fail "PUT IF VERSION did not write a newer version ($v -> '$w')"
"$C" -X -c "PUT o:v three IF ABSENT" >/dev/null 2>"$T/err" && fail "IF ABSENT on an existing key succeeded"
grep -q "PUT: the key exists (IF ABSENT)" "$T/err" || fail "IF ABSENT message: $(cat "$T/err")"
like 'PUT 1 VERSION [0-9]+' -c "PUT o:new x IF ABSENT"
"$C" -X -c "DEL o:v IF VERSION $v" >/dev/null 2>&1 && fail "DEL IF VERSION with an old version succeeded"
is "DEL 1"$'\n' -c "DEL o:v IF VERSION $w"
is "DEL 0"$'\n' -c "DEL o:v"

# --- EXISTS, MGET, SCAN -------------------------------------------------------
is $'true\nfalse\n' -At -c "EXISTS o:a" -c "EXISTS o:nope"
is $' exists \n--------\n true\n(1 row)\n\n' -c "EXISTS o:a"
is $'[{"exists":false}]\n' --json -c "EXISTS o:nope"
is $'o:b|\no:a|x,y\n' -At -c "MGET o:b o:nope o:a"
is $'key,value\no:b,\no:a,"x,y"\n' --csv -c "MGET o:b o:nope o:a"
is $'  key  |  value   \n-------+----------\n o:a   | x,y\n o:b   | \n o:c   | say "hi"\n o:new | x\n(4 rows)\n\n' \
	-c "SCAN PREFIX o:"
is $'key|value\no:a|x,y\no:b|\n(2 rows)\n' -A -c "SCAN FROM o:a TO o:c"
is $'[{"key":"o:b","value":""},\n{"key":"o:c","value":"say \\"hi\\""}]\n' --json -c "SCAN FROM o:b TO o:d LIMIT 2"
is '' -At -c "SCAN PREFIX o: LIMIT 0"

# --- binary keys and values ---------------------------------------------------
like 'PUT 1 VERSION [0-9]+' -c "PUT x'6f3a00ff' x'1b5b324a0a00'"
is $'     value     \n---------------\n \\x1b[2J\\n\\x00\n(1 row)\n\n' -c "GET x'6f3a00ff'"
"$C" -X -At -c "GET x'6f3a00ff'" | od -An -tx1 | tr -d ' \n' >"$T/hex"
[ "$(cat "$T/hex")" = "1b5b324a0a000a" ] || fail "-At of a binary value: $(cat "$T/hex")"
is $'[{"value":"\\u001b[2J\\n\\u0000"}]\n' --json -c "GET x'6f3a00ff'"
# Bytes that are not UTF-8 cannot be a JSON string.
like 'PUT 1 VERSION [0-9]+' -c "PUT o:bin x'ff00'"
is $'[{"value":{"hex":"ff00"}}]\n' --json -c "GET o:bin"

# --- batches ------------------------------------------------------------------
like $'BEGIN\nQUEUED\nQUEUED\nCOMMIT 2 VERSION [0-9]+' -c "BEGIN; PUT b:1 1; PUT b:2 2; COMMIT"
"$C" -X -c "BEGIN; PUT b:3 3; PUT b:1 9 IF ABSENT; COMMIT" >/dev/null 2>"$T/err" && fail "a conflicting batch succeeded"
grep -q "the condition of write 2 (PUT b:1) did not hold; nothing was written" "$T/err" || fail "batch conflict message: $(cat "$T/err")"
is $'b:1|1\nb:2|2\n' -At -c "SCAN PREFIX b:"
is $'BEGIN\nQUEUED\nROLLBACK\n' -c "BEGIN; DEL b:1; ROLLBACK"
is $'1\n' -At -c "GET b:1"

# --- PING, INFO, WHOAMI, users ----------------------------------------------
is $'PONG\n' -c "PING"
is $'{"status":"PONG"}\n' --json -c "PING"
is $'admin|admin|1|leader\n' -At -c "WHOAMI"
"$C" -X -At -c "INFO" | grep -q '^server.version|' || fail "INFO has no server.version row"
# INFO engine: the engine's rows and nothing else
eng=$("$C" -X -At -c "INFO engine") || fail "INFO engine failed"
echo "$eng" | grep -q '^engine.write_stall_ms|[0-9]*$' || fail "INFO engine has no write_stall_ms row"
echo "$eng" | grep -vq '^engine\.' && fail "INFO engine printed another section's row"
is $'USER ADD\nadmin|admin\nu1|readwrite\n' -At -c "USER ADD u1 ROLE readwrite PASSWORD p" -c "USER LIST"
is $'USER ROLE\nUSER PASSWORD\nUSER DEL\n' -c "USER ROLE u1 admin; USER PASSWORD u1 q; USER DEL u1"

# --- backslash commands and options ----------------------------------------
is $'Output format is csv.\nTuples only is on.\n"x,y"\n' -c '\format csv' -c '\t on' -c "GET o:a"
is $'hello two words A\n' -c "\\echo hello 'two words' x'41'"
like $'PUT 1 VERSION [0-9]+\nvia var' -At -c '\set k o:var' -c "\\set v 'via var'" -c 'PUT :k :v' -c "GET :'k'"
is '' -q -c "PUT o:quiet 1"
"$C" -X -c '\timing on' -c PING | grep -q '^Time: [0-9.]* ms$' || fail "\\timing printed no time"
"$C" -X -At -o "$T/o.txt" -c "GET o:a" -c '\echo to-stdout' >"$T/stdout" || fail "-o"
[ "$(cat "$T/o.txt")" = "x,y" ] && [ "$(cat "$T/stdout")" = "to-stdout" ] || fail "-o: file '$(cat "$T/o.txt")', stdout '$(cat "$T/stdout")'"
"$C" -X -At -c "\\o $T/o2.txt" -c "GET o:a" -c '\o' -c "GET o:b" >"$T/stdout" || fail "\\o"
[ "$(cat "$T/o2.txt")" = "x,y" ] && [ "$(cat "$T/stdout")" = "" ] || fail "\\o: file '$(cat "$T/o2.txt")'"
[ "$("$C" -X -At -c "GET o:a" -c '\watch 0.01 3' | grep -c '^x,y$')" = 4 ] || fail "\\watch 0.01 3 did not run 3 more times"
is $'x,y\n' -At --consistency=stale -c "GET o:a"
is $'x,y\n' -At -c '\set CONSISTENCY stale' -c "GET o:a"
"$C" -X -c '\h SCAN' | grep -q 'SCAN \[PREFIX p | FROM a \[TO b\]\] \[LIMIT n\]' || fail "\\h SCAN"
"$C" -X -c '\?' | grep -q '\\watch' || fail "\\?"
"$C" --help | grep -q -- '--tuples-only' || fail "--help"
"$C" --version | grep -q '^sisy-cli (SisyphusDB) ' || fail "--version"
"$C" --bogus >/dev/null 2>"$T/err"; [ $? = 1 ] && grep -q 'Try "sisy-cli --help"' "$T/err" || fail "bad option"
echo "ok: GET/PUT/DEL/EXISTS/MGET/SCAN/batches/users in aligned, unaligned, csv and json; binary values; backslash commands"
