#!/bin/sh
# install-deps.sh [build|check|bench|package|demo ...] — makes sure the Debian
# packages a make target needs are installed.
#
# As root it runs `apt-get install -y` for whatever is missing (after
# `apt-get update` when the package lists are missing or older than a day).
# As anyone else it prints the exact command to run and exits 1.
set -eu

pkgs_build="cmake make gcc libc6-dev pkg-config libreadline-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev libxxhash-dev zlib1g-dev"
pkgs_check="libcmocka-dev valgrind python3 procps iproute2"
pkgs_bench="libleveldb-dev redis-server redis-tools etcd-server etcd-client python3"
pkgs_package="debhelper lintian dpkg-dev fakeroot"
pkgs_fuzz="clang libclang-rt-14-dev"

want="$pkgs_build"
for t in "$@"; do
	case "$t" in
	build | demo) ;;
	check) want="$want $pkgs_check" ;;
	bench) want="$want $pkgs_bench" ;;
	package) want="$want $pkgs_package" ;;
	fuzz) want="$want $pkgs_fuzz" ;;
	*) echo "install-deps.sh: unknown target '$t'" >&2; exit 2 ;;
	esac
done

missing=
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "Missing Debian packages:$missing" >&2
	echo "Install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi

lists=/var/lib/apt/lists
fresh=$(find "$lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null | head -1)
if [ -z "$fresh" ]; then
	echo "install-deps.sh: apt-get update (package lists missing or older than a day)"
	apt-get update -q
fi
echo "install-deps.sh: apt-get install -y$missing"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
