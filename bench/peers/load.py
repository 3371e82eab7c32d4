#!/usr/bin/env python3
# bench P1: the loader a user would write instead of wharf: csv + sqlite3,
# column types and a unique id, nothing else.  usage: load.py FILE DB
import csv, sqlite3, sys

db = sqlite3.connect(sys.argv[2])
db.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer TEXT, order_date TEXT,"
           " sku TEXT, quantity INTEGER, unit_price REAL, currency TEXT)")
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    next(rows)
    typed = ((int(i), c, d, s, int(q), float(p), cur) for i, c, d, s, q, p, cur in rows)
    with db:
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", typed)
db.close()
