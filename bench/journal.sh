#!/usr/bin/env bash
# bench/journal.sh [WHARF] [N]: what N small files cost the file system's
# journal.  A fresh ext4 on a loop device (its own jbd2 journal, so nothing
# else on the machine is counted), N 10-row CSVs with done files in a spool
# on it (bench/gen.py small), one `wharf once` (validate, load into SQLite,
# seal, delete) under `strace -c`; prints the jbd2 transactions the run
# committed (/proc/fs/jbd2/<dev>/info) and its fsync/fdatasync calls, per
# file.  Journal commits are what a durable point costs on real disks; the
# count does not depend on the machine's load, unlike the time.
# Needs root (mount), mkfs.ext4, strace.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WHARF=$(realpath "${1:-$HERE/../build/wharf}")
N=${2:-200}
D=$(mktemp -d /tmp/wharf-journal.XXXXXX)
cleanup() { umount "$D/mnt" 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
truncate -s 1G "$D/ext4.img"
mkfs.ext4 -q "$D/ext4.img"
mkdir "$D/mnt"
mount -o loop "$D/ext4.img" "$D/mnt"
dev=$(basename "$(findmnt -n -o SOURCE "$D/mnt")")
info=$(ls -d /proc/fs/jbd2/"$dev"-* | head -1)/info
W=$D/mnt/w
mkdir -p "$W/profiles" "$W/var/drop/s"
cp -r "$HERE/../schemas" "$W/"
cat > "$W/profiles/s.yaml" <<'EOP'
name: s
source: { type: spool, path: var/drop/s, pattern: "*.csv", complete_when: { done_file: "{name}.done" } }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: orders }
EOP
python3 "$HERE/gen.py" small "$W/var/drop/s" "$N" 10
sync
sleep 1
t0=$(awk '/transactions/ {print $1; exit}' "$info")
(cd "$W" && strace -f -c -e trace=fsync,fdatasync -o "$D/strace.txt" "$WHARF" once >/dev/null 2>&1) || true
t1=$(awk '/transactions/ {print $1; exit}' "$info")
loaded=$(cd "$W" && "$WHARF" intakes --json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i["outcome"] == "loaded"))')
fs=$(awk '$NF == "fsync" {print $4}' "$D/strace.txt")
fd=$(awk '$NF == "fdatasync" {print $4}' "$D/strace.txt")
python3 - "$N" "$loaded" "$((t1 - t0))" "${fs:-0}" "${fd:-0}" <<'PY'
import sys
n, loaded, tx, fs, fd = map(int, sys.argv[1:])
print("%d files (%d loaded): %d journal commits (%.2f a file), %d fsync (%.2f a file), "
      "%d fdatasync (%.2f a file)" % (n, loaded, tx, tx / n, fs, fs / n, fd, fd / n))
PY
