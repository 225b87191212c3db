#!/usr/bin/env bash
# engine-vs-leveldb.sh — our engine (sisy-bench engine) against LevelDB
# (leveldb-bench, Debian's libleveldb) on this machine, in one go.
#
#   bench/engine-vs-leveldb.sh [BUILD_DIR]          (default: build)
#
# Runs ROUNDS pairs, alternating which side goes first, each side on a fresh
# database with the same flags (bench/bench_util.h: same keys, same values,
# same cache size, same Bloom bits). Prints per benchmark the median µs/op of
# each side and the median of the per-pair ratios LevelDB/ours (> 1: we are
# faster), and for each side how much faster readmissing is than readrandom.
# This machine is noisy (±20% between runs of one engine): trust medians.
#
# Environment: N (1000000), ROUNDS (5), BENCHMARKS
# (fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom),
# CACHE (8388608), COMPRESSION (0; 1 = zlib on our side, snappy on
# LevelDB's, the only codecs each has), EXTRA (more flags for both sides),
# KEEP_OUTPUT (a directory to keep every run's output in).
set -euo pipefail
BUILD=${1:-build}
N=${N:-1000000}
ROUNDS=${ROUNDS:-5}
BENCHMARKS=${BENCHMARKS:-fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom}
CACHE=${CACHE:-8388608}
COMPRESSION=${COMPRESSION:-0}
EXTRA=${EXTRA:-}
ours=$BUILD/bin/sisy-bench
theirs=$BUILD/bin/leveldb-bench
[ -x "$ours" ] || { echo "no $ours: build first (make)"; exit 1; }
[ -x "$theirs" ] || { echo "no $theirs: install libleveldb-dev and rebuild (make bench does)"; exit 1; }

work=$(mktemp -d /tmp/sisy-engine-vs-leveldb.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags="--benchmarks=$BENCHMARKS --num=$N --key_size=16 --value_size=100 --cache_size=$CACHE --compression=$COMPRESSION --bloom_bits=10 $EXTRA"
if [ "$COMPRESSION" = 1 ]; then comp_ours=zlib; comp_theirs=snappy; else comp_ours=none; comp_theirs=none; fi

echo "engine vs LevelDB: N=$N, $ROUNDS alternating pairs, block cache $CACHE B, Bloom 10 bits/key"
echo "compression: ours $comp_ours, LevelDB $comp_theirs"
echo "flags: $flags"

# micros BENCH FILE: the µs/op of one benchmark line.
micros() { awk -v b="$1" '$1==b {for(i=1;i<NF;i++) if($(i+1) ~ /^micros\/op/) {print $i; exit}}' "$2"; }

: >"$work/pairs"
for round in $(seq 1 "$ROUNDS"); do
	rm -rf "$work/s" "$work/l"
	run_ours() { "$ours" engine $flags --db="$work/s" >"$work/s.out" 2>&1 || { cat "$work/s.out"; exit 1; }; }
	run_theirs() { "$theirs" $flags --db="$work/l" >"$work/l.out" 2>&1 || { cat "$work/l.out"; exit 1; }; }
	if [ $((round % 2)) = 1 ]; then run_ours; run_theirs; else run_theirs; run_ours; fi
	if [ -n "${KEEP_OUTPUT:-}" ]; then
		mkdir -p "$KEEP_OUTPUT"
		cp "$work/s.out" "$KEEP_OUTPUT/ours.$round.out"
		cp "$work/l.out" "$KEEP_OUTPUT/leveldb.$round.out"
	fi
	for b in ${BENCHMARKS//,/ }; do
		u=$(micros "$b" "$work/s.out"); t=$(micros "$b" "$work/l.out")
		[ -n "$u" ] && [ -n "$t" ] || { echo "round $round: no '$b' line"; exit 1; }
		echo "$round $b $u $t" >>"$work/pairs"
	done
	echo "round $round: $(awk -v r="$round" '$1==r {printf "%s %s/%s  ", $2, $3, $4}' "$work/pairs")"
	rm -rf "$work/s" "$work/l"
done

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo
printf '%-12s %14s %14s %22s\n' benchmark "ours µs/op" "LevelDB µs/op" "LevelDB/ours (median)"
for b in ${BENCHMARKS//,/ }; do
	u=$(awk -v b="$b" '$2==b {print $3}' "$work/pairs" | median)
	t=$(awk -v b="$b" '$2==b {print $4}' "$work/pairs" | median)
	r=$(awk -v b="$b" '$2==b {print $4/$3}' "$work/pairs" | median)
	printf '%-12s %14.3f %14.3f %21.2fx\n' "$b" "$u" "$t" "$r"
done
case ",$BENCHMARKS," in
*,readrandom,*readmissing,*)
	for side in 3:ours 4:LevelDB; do
		col=${side%%:*}
		f=$(awk -v c="$col" '$2=="readrandom" {rr[$1]=$c} $2=="readmissing" {rm[$1]=$c} END {for (k in rr) print rr[k]/rm[k]}' "$work/pairs" | median)
		printf 'readmissing is %.1fx faster than readrandom (%s)\n' "$f" "${side#*:}"
	done
	;;
esac
