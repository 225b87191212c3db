#!/bin/sh
# build.sh OUTDIR — builds the .deb packages from the current tree into OUTDIR
# (what `make deb` runs). Needs debhelper (make deb installs it).
set -eu
out=${1:-build-deb}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/sisy-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sisyphusdb"
git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents -t "$work/sisyphusdb")
cp -r "$src/packaging/deb/debian" "$work/sisyphusdb/debian"
(cd "$work/sisyphusdb" && dpkg-buildpackage -us -uc -b)
mkdir -p "$out"
cp "$work"/*.deb "$out"/
ls -l "$out"/*.deb
if command -v lintian >/dev/null; then lintian "$out"/*.deb || true; fi
