#!/usr/bin/env python3
"""The exactly-once invariants of wharf, checked from the outside.

Used by tests/integration/faults.sh and crash_random.sh after a run that was
disturbed (I/O faults, SIGKILL) and then recovered:

  invariants.py INTAKES_JSON WAREHOUSE_DB EXPECT_TSV [--allow-failed]

INTAKES_JSON is the output of `wharf intakes --json`; EXPECT_TSV has one line
per dropped file:

  profile <TAB> file name <TAB> loaded|rejected <TAB> rows <TAB> table <TAB> group

Files with the same group (not "-") carry the same content: exactly one of
them is loaded, the others are recorded as duplicates.  Checked:
  - every file has exactly one intake, in state done (no intake stuck or,
    unless --allow-failed, parked in failed; a failed one must say why);
  - outcome as expected; rows in the ledger as expected;
  - in the target, rows per intake == ledger rows == wharf_loads.rows, and
    no rows belong to an intake the ledger does not know or did not load.
Prints one line per violation and "violations: N"; exits 1 when N > 0.
"""
import json
import sqlite3
import sys
from collections import defaultdict


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    allow_failed = "--allow-failed" in sys.argv
    intakes = json.load(open(args[0]))
    db = args[1]
    expect = []
    for line in open(args[2]):
        line = line.rstrip("\n")
        if line and not line.startswith("#"):
            p, name, kind, rows, table, group = line.split("\t")
            expect.append((p, name, kind, int(rows), table, group))
    v = []
    by_name = defaultdict(list)
    for i in intakes:
        by_name[(i["profile"], i["name"])].append(i)
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    except sqlite3.Error as e:
        con = None
        if any(e_[2] == "loaded" for e_ in expect):
            v.append("target %s cannot be opened: %s" % (db, e))

    def q(sql, *a):
        try:
            return con.execute(sql, a).fetchall() if con else []
        except sqlite3.Error as e:
            v.append("target query failed: %s: %s" % (sql, e))
            return []

    loads = {r[0]: r[1] for r in q("select intake, rows from wharf_loads")}
    groups = defaultdict(list)
    tables = set()
    for p, name, kind, rows, table, group in expect:
        tables.add(table)
        got = by_name.pop((p, name), [])
        if len(got) != 1:
            v.append("%s/%s: %d intakes, want exactly 1 (%s)" % (
                p, name, len(got), [(i["state"], i["outcome"]) for i in got]))
            if not got:
                continue
        i = got[0]
        if i["state"] == "failed" and allow_failed:
            if not (i.get("last_error") or "").strip():
                v.append("%s/%s: failed without a reason" % (p, name))
            continue
        if i["state"] != "done":
            v.append("%s/%s: stuck in %s (%s)" % (p, name, i["state"], i.get("last_error")))
            continue
        if group != "-":
            groups[group].append((i, kind, rows, table, name))
            continue
        check_one(v, q, loads, i, kind, rows, table, name)
    for g, members in groups.items():
        loaded = [m for m in members if m[0]["outcome"] == "loaded"]
        if len(loaded) != 1:
            v.append("group %s: %d of %s loaded, want exactly 1" % (
                g, len(loaded), [m[4] for m in members]))
        for m in members:
            if m[0]["outcome"] not in ("loaded", "duplicate"):
                v.append("group %s: %s outcome %s, want loaded or duplicate" % (g, m[4], m[0]["outcome"]))
            elif m[0]["outcome"] == "loaded":
                check_one(v, q, loads, m[0], "loaded", m[2], m[3], m[4])
            elif m[0]["rows"] != 0:
                v.append("%s: duplicate with %d rows" % (m[4], m[0]["rows"]))
    for (p, name), got in by_name.items():
        v.append("%s/%s: unexpected intake(s) %s" % (p, name, [(i["state"], i["outcome"]) for i in got]))
    loaded_ids = {i["id"] for i in intakes if i["outcome"] == "loaded"}
    for table in tables:
        for intake, n in q('select _wharf_intake, count(*) from "%s" group by 1' % table) if \
                q("select 1 from sqlite_master where type='table' and name=?", table) else []:
            if intake not in loaded_ids:
                v.append("table %s: %d rows of intake %s, which the ledger has not loaded" % (table, n, intake))
    for intake in loads:
        if intake not in loaded_ids:
            v.append("wharf_loads has %s, which the ledger has not loaded" % intake)
    for line in v:
        print("violation:", line)
    print("violations: %d" % len(v))
    return 1 if v else 0


def check_one(v, q, loads, i, kind, rows, table, name):
    if i["outcome"] != kind:
        v.append("%s: outcome %s, want %s (%s)" % (name, i["outcome"], kind, i.get("last_error")))
        return
    if kind != "loaded":
        return
    if i["rows"] != rows:
        v.append("%s: ledger rows %d, want %d" % (name, i["rows"], rows))
    got = q('select count(*) from "%s" where _wharf_intake = ?' % table, i["id"])
    n = got[0][0] if got else -1
    if n != rows:
        v.append("%s: %d rows in %s, want %d" % (name, n, table, rows))
    if loads.get(i["id"]) != rows:
        v.append("%s: wharf_loads rows %s, want %d" % (name, loads.get(i["id"]), rows))


if __name__ == "__main__":
    sys.exit(main())
