#!/usr/bin/env python3
"""Seed corpora for the fuzz targets: seeds.py SRC_DIR OUT_DIR writes
OUT_DIR/<target>/<seed> from tiny generated inputs and the repo's own
profiles and schemas (stdlib only)."""
import gzip, io, os, sys, tarfile, zipfile

src, out = sys.argv[1], sys.argv[2]
CSV = b"order_id,customer,amount\n1,Acme,1.50\n2,\"Quoted, with comma\",2\n3,\"say \"\"hi\"\"\",3\r\n"


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for sel, data in enumerate([CSV, b"a;b\r\n1;2\r\n", b"x\n\"unclosed", b"a,b\n\"x\"y,2\n", b"\n\n,\n"]):
    put("fuzz_csv", "seed%d" % sel, bytes([sel * 17 & 0xFF]) + data)
for name, data in [("utf8", "a,\u00fc,\u65e5\n".encode()), ("bom8", b"\xef\xbb\xbfa,b\n"),
                   ("u16", "\ufeffa,b\n".encode("utf-16")), ("latin1", "caf\xe9;\xfc\n".encode("latin-1")),
                   ("cp1252", b"\x80 \x93x\x94\n"), ("bad", b"\xc3\x28\xff\x00"), ("ascii", b"plain\n")]:
    put("fuzz_encoding", name, data)
for d, target in [("profiles", "fuzz_profile")]:
    for f in sorted(os.listdir(os.path.join(src, d))):
        put(target, f, open(os.path.join(src, d, f), "rb").read())
put("fuzz_profile", "inline.yaml", b"name: x\nsource: { type: spool, path: d }\nformat: csv\n"
    b"csv: { fields: [ { name: a, type: integer, constraints: { minimum: 1 } } ] }\n"
    b"target: { type: sqlite, path: w.db, table: t }\n")
for f in sorted(os.listdir(os.path.join(src, "schemas"))):
    data = open(os.path.join(src, "schemas", f), "rb").read()
    if f.endswith(".json"):
        put("fuzz_tschema", f, b"\x00" + data)
    elif f.endswith(".yaml"):
        put("fuzz_tschema", f, b"\x01" + data)
put("fuzz_tschema", "inline", b"\x02- { name: a, type: integer }\n- { name: b, type: date, format: \"%d.%m.%Y\" }\n"
    b"- { name: c, type: number, decimalChar: \",\", groupChar: \".\" }\n")
z = io.BytesIO()
with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("a.csv", CSV)
    zf.writestr("b.xml", b"<?xml version=\"1.0\"?><orders/>")
put("fuzz_unpack", "zip", z.getvalue())
t = io.BytesIO()
with tarfile.open(fileobj=t, mode="w:gz") as tf:
    ti = tarfile.TarInfo("a.csv"); ti.size = len(CSV)
    tf.addfile(ti, io.BytesIO(CSV))
put("fuzz_unpack", "tgz", t.getvalue())
put("fuzz_unpack", "gz", gzip.compress(CSV, mtime=0))
put("fuzz_unpack", "csv", CSV)
put("fuzz_unpack", "xml", b"<?xml version=\"1.0\"?>\n<orders><order id=\"1\"/></orders>\n")
for name, data in [("osc", b"osc\x1b]0;x\x07.csv"), ("bad", b"bad\xff\xfe \xc0\xaf"),
                   ("bidi", "a\u202eb\u2028c\u0085".encode()), ("bag-info", b"Wharf-Source-Path: a\n"
                   b"  folded\r\nPayload-Oxum: 3.1\rWharf-Previous-Link: " + b"0" * 64 + b"\n")]:
    put("fuzz_escape", name, data)
