#!/bin/sh
# teeth.sh — shows the simulator has teeth: builds the Raft core once per
# deliberately broken rule (CMake SISY_RAFT_BUG, see sisyd/raft) in its own
# build directory, then runs seeds until sisy-sim reports a violation, for
# 5 and 3 nodes, with the direct durability-promise checks on and off (off:
# only end-to-end properties — election safety, log matching, leader
# completeness, state machine safety, acknowledged writes, linearizability —
# can catch it). Prints one line per run; paste the table into
# docs/testing.md. Manual and long: not part of make check.
#
#   sh tests/sim/teeth.sh [MAX_SEEDS] [BUGS...]
#
# Environment: SRC (source tree, default: this script's ../..), BUILD_PREFIX
# (default $SRC/build-s-bug-), JOBS (default 2), SEED (first seed, default
# 5000001).
set -eu
MAX=${1:-5000}
[ $# -gt 0 ] && shift
BUGS=${*:-"vote_no_log_check commit_old_term apply_before_commit ack_before_durable config_at_commit"}
SRC=${SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PREFIX=${BUILD_PREFIX:-$SRC/build-s-bug-}
JOBS=${JOBS:-2}
SEED=${SEED:-5000001}

printf '%-20s %-5s %-9s %s\n' bug nodes promises "found after (seeds) / property"
for bug in $BUGS; do
	dir=$PREFIX$bug
	cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSISY_RAFT_BUG="$bug" -Wno-dev >/dev/null 2>&1
	cmake --build "$dir" -j "$JOBS" --target sisy-sim >/dev/null
	for nodes in 5 3; do
		for promises in on off; do
			flag=
			[ "$promises" = off ] && flag=--no-promise-checks
			out=$("$dir/bin/sisy-sim" --seed "$SEED" --seeds "$MAX" \
				--nodes "$nodes" --stop $flag 2>&1 || true)
			last=$(printf '%s\n' "$out" | tail -n 1)
			ran=$(printf '%s\n' "$last" | sed -n 's/^seeds: \([0-9]*\), violations: \([0-9]*\)$/\1 \2/p')
			n=${ran% *}
			v=${ran#* }
			if [ "${v:-0}" -gt 0 ]; then
				prop=$(printf '%s\n' "$out" | sed -n 's/^VIOLATION seed \([0-9]*\) .*: \([a-z-]*\)$/seed \1: \2/p' | head -n 1)
				printf '%-20s %-5s %-9s %s (%s)\n' "$bug" "$nodes" "$promises" "$n" "$prop"
			else
				printf '%-20s %-5s %-9s NOT FOUND in %s seeds\n' "$bug" "$nodes" "$promises" "${n:-?}"
			fi
		done
	done
done
