#!/bin/sh
# demo.sh BUILD_DIR — what `make demo` runs.
#
# With the server and the shell built: start a local 3-node cluster with
# tests/cluster/devcluster in a temporary folder (DEMO_DIR: that folder,
# whose cluster starts again if an earlier demo made one; DEMO_NODES: the
# size), open sisy-cli on it, and stop the cluster when the shell exits or
# the start-up is interrupted. Until then: an engine demo.
set -eu
build=${1:-build}
bin="$build/bin"
here=$(cd "$(dirname "$0")" && pwd)

if [ -x "$bin/sisyd" ] && [ -x "$bin/sisy-cli" ] && [ -x "$here/cluster/devcluster" ]; then
	nodes=${DEMO_NODES:-3}
	dir=${DEMO_DIR:-$(mktemp -d /tmp/sisy-demo.XXXXXX)}
	PATH="$(cd "$bin" && pwd):$PATH"
	export PATH
	"$here/cluster/devcluster" down "$dir/cluster" >/dev/null 2>&1 || true
	trap '"$here/cluster/devcluster" down "$dir/cluster" >/dev/null 2>&1 || true' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ -d "$dir/cluster/node1" ]; then
		# DEMO_DIR of an earlier demo: its nodes start again, data kept.
		echo "Starting the SisyphusDB cluster in $dir/cluster again ..."
		for n in "$dir"/cluster/node*; do
			"$here/cluster/devcluster" start "$dir/cluster" "${n##*/node}" >/dev/null
		done
		"$here/cluster/devcluster" wait "$dir/cluster" 60
	else
		echo "Starting a $nodes-node SisyphusDB cluster in $dir/cluster ..."
		"$here/cluster/devcluster" up "$nodes" "$dir/cluster"
	fi
	set -a
	. "$dir/cluster/env"
	set +a
	echo "Connected as $SISY_USER (password in $dir/cluster/env). Try: PUT greeting hello; GET greeting; SCAN PREFIX g; CLUSTER NODES; \\? for help, \\q to quit."
	# Ctrl-C at the prompt is the shell's (it drops the line); the cluster
	# comes down when the shell exits.
	trap : INT
	status=0
	"$bin/sisy-cli" || status=$?
	exit "$status"
fi

echo "The server is not built yet; running the storage engine demo instead."
db=$(mktemp -d /tmp/sisy-engine-demo.XXXXXX)
trap 'rm -rf "$db"' EXIT
"$bin/sisy-bench" engine --benchmarks=fillseq,fillrandom,readrandom,readmissing,readseq --num=200000 --db="$db/db"
