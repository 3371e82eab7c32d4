#!/usr/bin/env bash
# bench_smoke: bench/run --smoke (tiny data sets, one run of every case,
# a real sshd on loopback for B3/B4) must run every case to the end within
# two minutes.  Goals are not judged here (tiny sizes measure start-up
# costs); only that the benchmark itself works.  Needs root, like the other
# SFTP tests.
set -uo pipefail
: "${WHARF_SOURCE_DIR:?}"
build=${WHARF_BUILD_DIR:-$WHARF_SOURCE_DIR/build}
data=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench-smoke.XXXXXX")
trap 'rm -rf "$data"' EXIT

start=$(date +%s)
BENCH_BUILD=$build BENCH_DATA=$data timeout 115 \
    "$WHARF_SOURCE_DIR/bench/run" --smoke --out "$data/SMOKE.md" >"$data/out.txt" 2>&1
rc=$?
took=$(($(date +%s) - start))
if [ $rc -ne 0 ]; then
    cat "$data/out.txt"
    echo "FAIL - bench/run --smoke exited $rc after ${took}s"
    exit 1
fi
for c in B1 B1-floor B1-pg B1-pg-fmt I4 B2a B2b B3 B3w B3w-p4 B4 B4s B4w B5 B6 B7 B9 B10; do
    if ! grep -q "^| $c | " "$data/SMOKE.md"; then
        cat "$data/out.txt"
        echo "FAIL - $c missing from the smoke results"
        exit 1
    fi
done
if [ "$took" -ge 120 ]; then
    echo "FAIL - bench/run --smoke took ${took}s (limit 120s)"
    exit 1
fi
echo "ok   - bench/run --smoke ran every case in ${took}s"
