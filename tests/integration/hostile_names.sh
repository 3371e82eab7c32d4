#!/usr/bin/env bash
# Hostile names (issue 14 items 3, 4, 9, 11, 13): file, subdirectory and
# archive member names holding ANSI/OSC escapes, newlines that would forge a
# line, C1 and bidi controls, invalid UTF-8 and spreadsheet formulas go
# through a recursive spool, and then every output a person or a parser
# reads is checked: `once` (on a terminal, with the text log), `intakes`,
# `rejects`, `show`, `status`, report.txt and bag-info.txt carry no control
# byte, no invalid UTF-8 and no forged line; `--json` and JSON log lines keep
# every name; `export --format csv` parses and neutralises formulas.  Then a
# partner path longer than 1024 bytes with a planted `Wharf-Previous-Link:`
# lookalike must not make `wharf verify` cry tamper, and the auditor's
# documented manifest check (docs/auditors.md) passes on bags whose names
# BagIt percent-encodes and fails on a tampered one.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
mkdir -p var/drop/names
cat > profiles/names.yaml <<'EOP'
name: names
source:
  type: spool
  path: var/drop/names
  pattern: "*"
  recursive: true
  complete_when: { min_age: 1s }
format: csv
csv: { schema: orders.schema.json }
target: { type: sqlite, path: var/warehouse.db, table: names }
EOP
check "the profile is valid" w check

# Every name and its content: a valid file loads, "bad" content is rejected.
python3 - "$T/var/drop/names" <<'EOF'
import io, os, sys, tarfile
d = sys.argv[1]
n = [0]
def body(bad=False):
    n[0] += 1
    return ("order_id,customer,amount\n%d,c,%s\n" % (n[0], "abc" if bad else "1.50")).encode()
def put(name, bad=False, sub=b""):
    p = os.path.join(d.encode(), sub, name) if sub else os.path.join(d.encode(), name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(body(bad))
put(b"osc\x1b]0;pwned\x07\x1b[2Jclear.csv")
put(b"forge\nFAKEID  names          REJECTED x.csv: forged\n.csv", bad=True)
put(b"bad\xff\xfename.csv")
put(b"c1\xc2\x9b31mcsi.csv")
put(b"bidi\xe2\x80\xaevsc.exe.csv")
put(b"back\\x1bslash.csv")
put(b'=HYPERLINK("evil.example?x","click").csv')
put(b"+plus.csv")
put(b"-minus.csv")
put(b"@at.csv")
put(b"\ttab.csv")
put(b"inner.csv", sub=b"sub\x1b[7m\ndir")
# an archive whose member names carry a newline and an escape: refused
ok = body()
evil = body()
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
    for name, data in (("ok.csv", ok), ("a\nFORGED-LINE\x1b[31m.csv", evil)):
        i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1795873863
        t.addfile(i, io.BytesIO(data))
open(os.path.join(d, "members.tar"), "wb").write(b.getvalue())
EOF
touch -d '-1 min' var/drop/names/* var/drop/names/*/*

# `once` on a terminal: the text log and the outcome lines.
script -qec "'$WHARF' once" /dev/null >once.tty 2>&1
contains "once ran on a terminal" "$(cat once.tty)" "once: "
contains "and printed the text log" "$(cat once.tty)" " info  names "

# clean FILE...: no control byte (but our own \r, \r\e[K and newlines), no
# DEL, no C1 or bidi control, valid UTF-8, and no forged line
clean() {
  python3 - "$@" <<'EOF'
import re, sys
bad = []
for f in sys.argv[1:]:
    b = open(f, "rb").read().replace(b"\r\x1b[K", b"").replace(b"\r", b"")
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError as e:
        bad.append("%s: invalid UTF-8 at %d" % (f, e.start)); continue
    m = re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]", s)
    if m:
        bad.append("%s: control U+%04X at %d: %r" % (f, ord(m.group()), m.start(), s[max(0, m.start() - 40):m.start() + 20]))
    for line in s.split("\n"):
        if line.startswith(("FAKEID", "FORGED", ".csv")):
            bad.append("%s: forged line %r" % (f, line))
print("\n".join(bad))
EOF
}
eq "once (terminal, text log): nothing raw" "$(clean once.tty)" ""

ids=$(w intakes --json | python3 -c 'import json,sys; print(" ".join(i["id"] for i in json.load(sys.stdin)))')
w intakes >intakes.out 2>&1
w rejects >rejects.out 2>&1
w status >status.out 2>&1
: >show.out
for id in $ids; do w show "$id" >>show.out 2>&1; done
eq "intakes: nothing raw" "$(clean intakes.out)" ""
eq "rejects: nothing raw, no forged line" "$(clean rejects.out)" ""
eq "status: nothing raw" "$(clean status.out)" ""
eq "show: nothing raw" "$(clean show.out)" ""
contains "show names the escape visibly" "$(cat show.out)" 'osc\x1b]0;pwned\x07\x1b[2Jclear.csv'
contains "show names the subdirectory visibly" "$(cat show.out)" 'sub\x1b[7m\x0adir/inner.csv'
contains "a literal backslash is doubled" "$(cat show.out)" 'back\\x1bslash.csv'
contains "bidi override shown" "$(cat show.out)" 'bidi\u202evsc.exe.csv'
eq "rejects: one two-line entry per reject" \
  "$(grep -c '^[0-9A-Z]\{26\}  ' rejects.out)" "$(w rejects --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

reports=$(find var/rejects -name report.txt | sort)
infos=$(find var/archive var/rejects -name bag-info.txt | sort)
eq "two rejects with reports (the forged name, the archive)" "$(echo "$reports" | grep -c .)" 2
# shellcheck disable=SC2086
eq "report.txt: nothing raw, no forged line" "$(clean $reports)" ""
for r in $reports; do
  pj=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shown"])' "${r%.txt}.json")
  eq "report.txt: one line per problem, then the footer ($r)" "$(awk '/^$/ {exit} {n++} END {print n}' "$r")" "$pj"
done
contains "report.txt names the refused member visibly" "$(cat $reports)" 'a\x0aFORGED-LINE\x1b[31m.csv'
# shellcheck disable=SC2086
eq "bag-info.txt: nothing raw" "$(clean $infos)" ""
bad_info=$(for f in $infos; do grep -v '^[A-Za-z0-9-]\+: ' "$f"; done)
eq "bag-info.txt: every line is one element (Label: value)" "$bad_info" ""
check "wharf verify passes" w verify

# --json and JSON log lines keep every name (jansson refuses invalid UTF-8)
w intakes --json >intakes.json
eq "every intake has its name and path in --json" "$(python3 -c '
import json, sys
print(sum(1 for i in json.load(open("intakes.json")) if not i.get("name") or not i.get("path")))')" 0
contains "the invalid UTF-8 name, escaped" "$(cat intakes.json)" '"bad\\xff\\xfename.csv"'
printf 'order_id,customer,amount\n900,c,1\n' >"$(printf 'var/drop/names/log\xffline.csv')"
touch -d '-1 min' var/drop/names/log*
w once >/dev/null 2>log.json
eq "every JSON log line parses and has its message" "$(python3 -c '
import json
n = 0
for l in open("log.json", encoding="utf-8"):
    j = json.loads(l)
    n += "message" not in j
print(n)')" 0
contains "the log line about the invalid UTF-8 name is there" "$(cat log.json)" 'log\\xffline.csv'

# export --format csv: structurally correct, formulas neutralised
w export --since 2000-01-01 --format csv >export.csv
eq "export csv: parses, one row per sealed intake" "$(python3 -c '
import csv, json, sys
rows = list(csv.reader(open("export.csv", newline="", encoding="utf-8", errors="surrogateescape")))
bags = sum(1 for i in json.load(open("intakes.json")) if i["bag"]) + 1
print(len(rows) - 1 == bags and all(len(r) == 12 for r in rows))')" True
eq "export csv: no cell starts with = + - @ TAB CR" "$(python3 -c '
import csv
for r in csv.reader(open("export.csv", newline="", encoding="utf-8", errors="surrogateescape")):
    for c in r:
        if c[:1] in ("=", "+", "-", "@", "\t", "\r"): print(repr(c))')" ""
export_names=$(python3 -c '
import csv
for r in csv.reader(open("export.csv", newline="", encoding="utf-8", errors="surrogateescape")):
    print(r[2].replace("\n", "|"))')
contains "the formula name is kept, behind a quote" "$export_names" "'=HYPERLINK(\"evil.example?x\",\"click\").csv"
contains "as are +, -, @" "$export_names" "'+plus.csv"
contains "and TAB" "$export_names" "'	tab.csv"
contains "a newline in a name stays inside its quoted cell" "$export_names" "forge|FAKEID"

# --- item 4: a partner path over 1024 bytes plants a bag-info lookalike ----
# "Wharf-Source-Path: " is 19 bytes: put "Wharf-Previous-Link: <64 x 0>" at byte
# 1023 of that line, where a 1024-byte line buffer would cut it.
long=$(python3 - "$T" <<'EOF'
import os, sys
base = os.path.realpath(sys.argv[1]) + "/long"
left = 1023 - len("Wharf-Source-Path: ") - len(base) - 1  # "/c1/c2.../" then the fake
parts = []
while left > 0:
    k = min(200, left - 1)
    if left - (k + 1) == 1:
        k -= 1
    parts.append("p" * k)
    left -= k + 1
d = "/".join([base] + parts) + "/Wharf-Previous-Link: " + "0" * 64
os.makedirs(d, exist_ok=True)
f = d + "/orders.csv"
assert ("Wharf-Source-Path: " + f).index("Wharf-Previous-Link") == 1023
open(f, "w").write("order_id,customer,amount\n7001,long,1.50\n")
print(f)
EOF
)
check "a file under a path of $(printf %s "$long" | wc -c) bytes is ingested" w ingest -p names "$long"
w verify >verify.out 2>&1; rc=$?
eq "wharf verify passes on the intact bag (exit 0)" "$rc" 0
contains "verify: ok" "$(cat verify.out)" "verify: ok"

# --- item 13: the auditor's manifest check, exactly as documented ----------
recipe=$(python3 - "$WHARF_SOURCE_DIR/docs/auditors.md" <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"<!-- auditor-check -->\n```sh\n(.*?)```", s, re.S)
print(m.group(1) if m else "")
EOF
)
readme_recipe=$(python3 - "$WHARF_SOURCE_DIR/README.md" <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
m = re.search(r"<!-- auditor-check -->\n```sh\n(.*?)```", s, re.S)
print(m.group(1) if m else "")
EOF
)
check "docs/auditors.md has the recipe" test -n "$recipe"
eq "README shows the same recipe" "$readme_recipe" "$recipe"
spool_profile audit "{ min_age: 1s }"
for nm in '100%.csv' 'name with spaces.csv' $'new\nline.csv' $'cr\rname.csv' 'tab	and %41.csv'; do
  orders_csv "var/drop/audit/$nm" $((8000 + ${#nm} * 10)) 3
done
touch -d '-1 min' var/drop/audit/*
w once audit >/dev/null 2>&1
audit_bags=$(find var/archive/audit -name manifest-sha256.txt -printf '%h\n' | sort)
eq "five audit bags sealed" "$(echo "$audit_bags" | grep -c .)" 5
old_ok=0
for b in $audit_bags; do (cd "$b" && sha256sum -c manifest-sha256.txt) >/dev/null 2>&1 && old_ok=$((old_ok + 1)); done
[ "$old_ok" -lt 5 ] && ok "plain sha256sum -c fails on some encoded names (why the recipe exists)" \
  || bad "sha256sum -c passed on every bag: the names test nothing"
all_ok=0
for b in $audit_bags; do
  (cd "$b" && bash -ec "$recipe") >recipe.out 2>&1 && all_ok=$((all_ok + 1)) || cat recipe.out
done
eq "the documented recipe passes on every bag" "$all_ok" 5
b=$(echo "$audit_bags" | head -1)
f=$(find "$b/data" -type f | head -1)
printf 'x' >>"$f"
(cd "$b" && bash -ec "$recipe") >recipe.out 2>&1; rc=$?
eq "the recipe fails on a tampered payload" "$rc" 1
contains "and names it" "$(cat recipe.out)" "FAILED"
printf 'x' >>"$b/bag-info.txt"
(cd "$b" && bash -ec "$recipe") >recipe.out 2>&1; rc=$?
eq "the recipe fails on a tampered tag file" "$rc" 1
contains "and names it" "$(cat recipe.out)" "bag-info.txt: FAILED"
finish
