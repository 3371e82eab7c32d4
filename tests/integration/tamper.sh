#!/usr/bin/env bash
# Tamper evidence: one byte flipped in an archived original, in a manifest,
# in bag-info.txt, and in the ledger's chain — `wharf verify` catches each,
# exits 1 and names the bag or link.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
for i in 1 2 3; do orders_csv var/drop/acme/o$i.csv $((i * 100)) 10; touch var/drop/acme/o$i.csv.done; done
w once >/dev/null 2>&1
eq "three files loaded" "$(intake_states)" "done/loaded=3 "
check "verify passes untouched" w verify
BAG=$(ls -d var/archive/acme/*/*/*/* | sed -n 2p)
ID=$(basename "$BAG")

flip() { # flip one byte of $1 at offset $2
  python3 - "$1" "$2" <<'EOP'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[off] ^= 0x01; open(p, 'wb').write(bytes(b))
EOP
}

for target in "data/o2.csv:20" "manifest-sha256.txt:3" "bag-info.txt:30"; do
  f=${target%%:*}; off=${target##*:}
  cp "$BAG/$f" "$T/saved"
  flip "$BAG/$f" "$off"
  out=$(w verify 2>&1); rc=$?
  eq "verify exits 1 after a flipped byte in $f" "$rc" 1
  contains "verify names the bag of $f" "$out" "$ID"
  contains "verify names the file $f" "$out" "$f"
  cp "$T/saved" "$BAG/$f"
done
check "verify passes again once restored" w verify

# The ledger's chain: change one character of the second link.
orig=$(sqlite3 var/ledger.db "select link from chain order by seq limit 1 offset 1")
forged=$(printf '%s' "$orig" | sed 's/^./f/'); [ "$forged" = "$orig" ] && forged=$(printf '%s' "$orig" | sed 's/^./e/')
sqlite3 var/ledger.db "update chain set link='$forged' where link='$orig'"
out=$(w verify 2>&1); rc=$?
eq "verify exits 1 after a forged chain link" "$rc" 1
contains "verify names the broken link" "$out" "chain link 2"
out=$(w verify --json 2>&1)
contains "verify --json reports not ok" "$out" '"ok": false'
finish
