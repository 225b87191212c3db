#!/bin/sh
# test_lincheck_cli.sh — sisy-lincheck's exit codes and output on small
# history files (tests/sim/data): 0 linearizable, 1 not, 2 unknown (budget),
# 3 bad input or usage.
set -u
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}/sisy-lincheck
DATA=${SRC_DIR:?SRC_DIR must point at the source tree}/tests/sim/data
fails=0

expect() { # expect CODE PATTERN ARGS...
	want=$1 pattern=$2
	shift 2
	out=$("$BIN" "$@" 2>&1)
	got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: sisy-lincheck $*: exit $got, want $want"
		echo "$out"
		fails=$((fails + 1))
	elif ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
		echo "FAIL: sisy-lincheck $*: output lacks '$pattern':"
		echo "$out"
		fails=$((fails + 1))
	fi
}

expect 0 '^linearizable: 6 ops checked on 2 keys (7 in file)' "$DATA/ok.jsonl"
expect 0 '^linearizable' - <"$DATA/ok.jsonl"
expect 1 '^not linearizable' "$DATA/stale.jsonl"
expect 1 'get -> "a" \[40, 50\]' "$DATA/stale.jsonl"
expect 1 '(zones)' --steps 1 "$DATA/stale.jsonl"
expect 1 'get -> "a" \[40, 50\]' "$DATA/stale_del.jsonl"
expect 2 '^unknown' --steps 1 "$DATA/stale_del.jsonl"
expect 3 'line 2: .*outcome' "$DATA/bad.jsonl"
expect 3 'No such file' "$DATA/does-not-exist.jsonl"
expect 3 'usage' --no-such-flag "$DATA/ok.jsonl"
expect 3 'usage'

[ "$fails" -eq 0 ] && echo "test_lincheck_cli: all passed"
[ "$fails" -eq 0 ]
