#!/bin/sh
# run.sh BUILD_DIR SECONDS — runs every libFuzzer target built in BUILD_DIR
# (cmake -DSISY_FUZZ=ON with clang; `make fuzz` does this) for SECONDS each,
# starting from tests/fuzz/corpus/<target>/. New interesting inputs go to
# BUILD_DIR/fuzz-corpus/<target>/ (the checked-in corpus stays as it is);
# crashes are written to BUILD_DIR/fuzz-crashes/ and make the script fail.
set -u
BUILD=${1:?usage: run.sh BUILD_DIR SECONDS}
SECS=${2:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$BUILD/fuzz-crashes"
status=0
found=0
for bin in "$BUILD"/bin/fuzz_*; do
  [ -x "$bin" ] || continue
  found=1
  t=$(basename "$bin"); t=${t#fuzz_}
  work="$BUILD/fuzz-corpus/$t"
  mkdir -p "$work"
  seeds="$HERE/corpus/$t"
  [ -d "$seeds" ] || seeds=
  echo "== fuzz_$t for ${SECS}s"
  if ! "$bin" -max_total_time="$SECS" -max_len=65536 -timeout=10 \
       -artifact_prefix="$BUILD/fuzz-crashes/$t-" "$work" $seeds; then
    echo "fuzz_$t FAILED: see $BUILD/fuzz-crashes/"
    status=1
  fi
done
[ $found = 1 ] || { echo "run.sh: no fuzz_* binaries in $BUILD/bin (configure with -DSISY_FUZZ=ON)"; exit 1; }
exit $status
