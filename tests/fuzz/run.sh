#!/usr/bin/env bash
# Build wharf's libFuzzer targets with clang (-DWHARF_FUZZ=ON, in its own
# build dir) and fuzz each one for a bounded time.
#
#   tests/fuzz/run.sh [TARGET...]      all six targets when none is named
#
#   FUZZ_SECONDS=N      seconds per target (default 20; ctest's fuzz/smoke
#                       uses 10).  For a real campaign use hours, e.g.
#                       FUZZ_SECONDS=3600 FUZZ_JOBS=4 tests/fuzz/run.sh fuzz_csv
#   FUZZ_JOBS=N         parallel fuzzing processes per target (default 1)
#   FUZZ_BUILD_DIR=DIR  build dir (default build-fuzz in the source tree)
#
# The corpus grows in DIR/corpus/<target> across runs (seeded by seeds.py);
# crashes land in DIR/artifacts/<target>/ and fail the run.  Reproduce one
# with: DIR/tests/fuzz/<target> DIR/artifacts/<target>/crash-...
# Exit 77 (skipped) when clang cannot link -fsanitize=fuzzer (Debian:
# clang plus libclang-rt-14-dev for clang-14).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$SRC/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
JOBS=${FUZZ_JOBS:-1}
TARGETS=${*:-fuzz_csv fuzz_encoding fuzz_profile fuzz_tschema fuzz_unpack fuzz_escape}
CC_FUZZ=${CC_FUZZ:-clang}

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$probe/p.c"
if ! command -v "$CC_FUZZ" >/dev/null 2>&1 ||
   ! "$CC_FUZZ" -fsanitize=fuzzer,address "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz: skipped: $CC_FUZZ cannot link -fsanitize=fuzzer ($(head -c 200 "$probe/err" 2>/dev/null))"
  exit 77
fi

echo "fuzz: building into $BUILD"
CC=$CC_FUZZ cmake -S "$SRC" -B "$BUILD" -DWHARF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$probe/cmake.log" 2>&1 ||
  { cat "$probe/cmake.log"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target fuzz >"$probe/build.log" 2>&1 ||
  { tail -50 "$probe/build.log"; exit 1; }

python3 "$SRC/tests/fuzz/seeds.py" "$SRC" "$BUILD/seeds" || exit 1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
failed=0
for t in $TARGETS; do
  bin=$BUILD/tests/fuzz/$t
  mkdir -p "$BUILD/corpus/$t" "$BUILD/artifacts/$t" "$BUILD/seeds/$t"
  log=$BUILD/artifacts/$t/last.log
  par=(); [ "$JOBS" -gt 1 ] && par=(-jobs="$JOBS" -workers="$JOBS")
  rm -f "$BUILD/artifacts/$t"/fuzz-*.log
  (cd "$BUILD/artifacts/$t" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 "${par[@]}" \
      -artifact_prefix="$BUILD/artifacts/$t/" "$BUILD/corpus/$t" "$BUILD/seeds/$t") >"$log" 2>&1
  rc=$?
  # with -jobs the stats are in fuzz-N.log files
  execs=$(cat "$log" "$BUILD/artifacts/$t"/fuzz-*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s+=$1} END {print s+0}')
  cov=$(grep -ho 'cov: [0-9]*' "$log" "$BUILD/artifacts/$t"/fuzz-*.log 2>/dev/null | tail -1)
  if [ "$rc" -ne 0 ] || ls "$BUILD/artifacts/$t"/crash-* "$BUILD/artifacts/$t"/leak-* "$BUILD/artifacts/$t"/timeout-* "$BUILD/artifacts/$t"/oom-* >/dev/null 2>&1; then
    failed=$((failed + 1))
    echo "FAIL - $t: exit $rc; see $log"
    grep -m5 -A12 'ERROR: \|==ERROR\|SUMMARY' "$log" "$BUILD/artifacts/$t"/fuzz-*.log 2>/dev/null | head -40
  else
    echo "ok   - $t: ${SECONDS_EACH}s, $execs runs, $cov, corpus $(ls "$BUILD/corpus/$t" | wc -l) files"
  fi
done
echo "fuzz targets failed: $failed"
[ "$failed" -eq 0 ]
