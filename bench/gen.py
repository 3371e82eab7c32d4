#!/usr/bin/env python3
"""gen: bench/run's data sets, deterministic (seeded), valid against
schemas/orders.schema.json and schemas/orders.xsd.

  gen.py csv OUT ROWS [FIRST_ID]   orders CSV, UTF-8, ~81 bytes a row
  gen.py xml OUT RECORDS           orders XML, ~205 bytes a record
  gen.py small DIR N ROWS          N small orders CSVs (ids never repeat),
                                   each with its "{name}.done" file
  gen.py big OUT BYTES             incompressible bytes (SFTP and SHA-256)
"""
import os
import random
import sys

CUSTOMERS = [
    "Nordwind Handelsgesellschaft mbH Bremen",
    "Blue Harbor Logistics Ltd Southampton",
    "Müller Feinkost GmbH & Co. KG München",
    "Café Lumière Distribution SARL Lyon",
    '"Smith, Jones and Partners, Leeds"',
    "O'Reilly Foods International Cork",
    "Zeta & Sons Wholesale Trading Athens",
    "Acme Corporation Procurement Denver",
    "Þórsdóttir Fiskvinnsla ehf. Reykjavík",
    "Kowalski Hurtownia Spożywcza Łódź",
]
CURRENCIES = ["EUR", "USD", "GBP"]


def rows(first, n, rnd):
    cust = CUSTOMERS
    for i in range(first, first + n):
        yield "%d,%s,2026-%02d-%02d,%s-%04d,%d,%d.%02d,%s\n" % (
            i, cust[rnd.randrange(len(cust))], rnd.randint(1, 12), rnd.randint(1, 28),
            rnd.choice(("ABC", "XYZ", "QRS", "LMN")), rnd.randrange(10000),
            rnd.randint(1, 10000), rnd.randrange(100000), rnd.randrange(100),
            CURRENCIES[i % 3])


def write_csv(path, n, first=1, rnd=None):
    rnd = rnd or random.Random(first)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("order_id,customer,order_date,sku,quantity,unit_price,currency\n")
        chunk = []
        for r in rows(first, n, rnd):
            chunk.append(r)
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    os.rename(tmp, path)


def esc(s):
    return s.strip('"').replace("&", "&amp;").replace("<", "&lt;")


def write_xml(path, n):
    rnd = random.Random(7)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<orders>\n')
        chunk = []
        for i in range(1, n + 1):
            chunk.append(
                '    <order id="%d" currency="%s"><customer>%s</customer><date>2026-%02d-%02d</date>'
                "<sku>%s-%04d</sku><quantity>%d</quantity><unit_price>%d.%02d</unit_price></order>\n"
                % (i, CURRENCIES[i % 3], esc(CUSTOMERS[rnd.randrange(len(CUSTOMERS))]),
                   rnd.randint(1, 12), rnd.randint(1, 28), rnd.choice(("ABC", "XYZ", "QRS")),
                   rnd.randrange(10000), rnd.randint(1, 10000), rnd.randrange(100000),
                   rnd.randrange(100)))
            if len(chunk) == 5000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
        f.write("</orders>\n")
    os.rename(tmp, path)


def write_small(d, n, nrows):
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(11)
    for k in range(n):
        name = os.path.join(d, "orders_%05d.csv" % k)
        write_csv(name, nrows, first=1 + k * nrows, rnd=rnd)
        open(name + ".done", "w").close()


def write_big(path, size):
    tmp = path + ".tmp"
    with open("/dev/urandom", "rb") as src, open(tmp, "wb") as f:
        left = size
        while left:
            b = src.read(min(left, 1 << 22))
            f.write(b)
            left -= len(b)
    os.rename(tmp, path)


def main(a):
    if a[0] == "csv":
        write_csv(a[1], int(a[2]), int(a[3]) if len(a) > 3 else 1)
    elif a[0] == "xml":
        write_xml(a[1], int(a[2]))
    elif a[0] == "small":
        write_small(a[1], int(a[2]), int(a[3]))
    elif a[0] == "big":
        write_big(a[1], int(a[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
