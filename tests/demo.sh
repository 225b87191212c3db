#!/bin/sh
# demo.sh BUILD_DIR — what `make demo` runs.
#
# With the server and the shell built: start a local 3-node cluster with
# tests/cluster/devcluster in a temporary folder, open sisy-cli on it, and
# stop the cluster when the shell exits. Until then: an engine demo.
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
	echo "Starting a $nodes-node SisyphusDB cluster in $dir/cluster ..."
	"$here/cluster/devcluster" up "$nodes" "$dir/cluster"
	trap '"$here/cluster/devcluster" down "$dir/cluster"' EXIT INT TERM
	set -a
	. "$dir/cluster/env"
	set +a
	echo "Connected as $SISY_USER (password in $dir/cluster/env). Try: PUT greeting hello; GET greeting; SCAN PREFIX g; CLUSTER NODES; \\? for help, \\q to quit."
	"$bin/sisy-cli"
	exit 0
fi

echo "The server is not built yet; running the storage engine demo instead."
db=$(mktemp -d /tmp/sisy-engine-demo.XXXXXX)
trap 'rm -rf "$db"' EXIT
"$bin/sisy-bench" engine --benchmarks=fillseq,fillrandom,readrandom,readmissing,readseq --num=200000 --db="$db/db"
