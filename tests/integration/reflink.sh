#!/usr/bin/env bash
# The take on a filesystem with reflinks (XFS, reflink=1, on a loop device):
# the copy into work/ is a FICLONE of the partner's file -- its extents are
# shared, no bytes copied -- and still a file of wharf's own: the whole of
# hostile_spool.sh (a partner rewriting its file through a held descriptor
# after the take and after sealing, the subdirectory racer, limits, modes)
# runs again with its work tree on that filesystem.  Needs root, mkfs.xfs,
# a loop device and filefrag; without them it says so and checks nothing.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

MNT=$T/xfs
if [ "$(id -u)" != 0 ] || ! command -v mkfs.xfs >/dev/null || ! command -v filefrag >/dev/null; then
  echo "note - needs root, mkfs.xfs (xfsprogs) and filefrag (e2fsprogs); reflink take not checked"
  finish; exit
fi
truncate -s 300M "$T/xfs.img" && mkfs.xfs -q -m reflink=1 "$T/xfs.img" && mkdir -p "$MNT" &&
  mount -o loop "$T/xfs.img" "$MNT" 2>"$T/mount.err"
if ! mountpoint -q "$MNT"; then
  echo "note - cannot mount a loop device here ($(head -c 200 "$T/mount.err")); reflink take not checked"
  finish; exit
fi
trap 'umount "$MNT" 2>/dev/null; cleanup' EXIT

# --- the take is a reflink -------------------------------------------------
W=$MNT/w
mkdir -p $W/profiles $W/schemas && cd $W || exit 1
orders_schema
spool_profile rl '{ done_file: "{name}.done" }' delete
orders_csv var/drop/rl/big.csv 1 50000
SHA=$(sha256sum var/drop/rl/big.csv | cut -d' ' -f1)
touch var/drop/rl/big.csv.done
WHARF_TEST_CRASH=taken w once rl >/dev/null 2>&1 # stop right after the take
ID=$(w intakes -p rl --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
check "big.csv was taken" test -f "var/work/$ID/original"
contains "the work copy shares its extents with the partner's file (FICLONE)" \
  "$(filefrag -v "var/work/$ID/original" 2>&1)" "shared"
# the partner overwrites its file in place: the clone must not change
python3 - var/drop/rl/big.csv <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"9" * 4096, 100)
os.fsync(fd)
os.close(fd)
PY
eq "the work copy still holds the bytes taken" "$(sha256sum "var/work/$ID/original" | cut -d' ' -f1)" "$SHA"
w once rl >/dev/null 2>&1
eq "loaded: every row" "$(sql var/warehouse.db "select count(*) from rl where _wharf_intake = '$ID'")" 50000
check "wharf verify passes" w verify
cd "$T" || exit 1

# --- the hostile spool suite with everything on the reflink filesystem ----
chmod 711 "$T" # its unprivileged part must reach its own temp dir in here
out=$(TMPDIR=$MNT bash "$WHARF_SOURCE_DIR/tests/integration/hostile_spool.sh" 2>&1)
rc=$?
eq "hostile_spool.sh passes on XFS with reflinks (exit 0)" "$rc" 0
[ "$rc" = 0 ] || grep -v '^ok' <<<"$out" | head -20
finish
