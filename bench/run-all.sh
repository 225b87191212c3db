#!/bin/sh
# run-all.sh — what `make bench` runs: every comparison benchmark, one after
# the other, against binaries in BUILD_DIR (default build). Each prints its
# own figures; docs/BENCHMARKS.md records them with the exact commands.
# Append new benchmarks below (one block each).
set -e
BUILD=${1:-build}
HERE=$(dirname "$0")

echo "== storage engine vs LevelDB (bench/engine-vs-leveldb.sh) =="
bash "$HERE/engine-vs-leveldb.sh" "$BUILD"

echo "== request processing: sisyd vs redis-server (bench/kv-vs-redis.sh) =="
bash "$HERE/kv-vs-redis.sh" "$BUILD"

echo "== replicated cluster: 3 sisyd nodes vs 3 etcd members (bench/cluster-vs-etcd.sh) =="
bash "$HERE/cluster-vs-etcd.sh" "$BUILD"
