#!/usr/bin/env python3
"""Short legacy-encoded files, and the check that wharf never loads one wrong.

  legacy_encodings.py generate DIR     writes DIR/<profile>/<file>.csv and DIR/cases.json
  legacy_encodings.py check DIR DB INTAKES.json
        compares what each intake became with the text the file holds:
        loaded with exactly that text (the SQLite target, row by row), or
        rejected as encoding_uncertain / invalid_encoding.  Anything else
        (loaded with other text, rejected for another reason) is a failure.
        Prints one line per profile with loaded/uncertain counts.

Every file is 1-10 lines of one column (no header, `;` delimiter), written
with Python's own codecs in one charset, from phrases full of the letters
and signs that differ between the charsets of its script: € Š š Ž ž Œ œ Ÿ
(Windows-1252 against ISO-8859-15), ¤ ¦ ¨ ´ ¸ ¼ ½ ¾, Polish, Czech and
Hungarian letters (1250 against ISO-8859-2), Cyrillic in four charsets,
Greek, Turkish and Baltic letters, DOS and Mac Roman codes for Western ones.

Each file goes through the profiles whose `encoding: { auto: [...] }` lists
its charset: the default list (Western ones only), its family's list, and
the list of every charset detection supports.  The three-row Windows-1252
file from issue 20 is among them (issue20.csv).
"""
import json
import os
import random
import sys

# python codec -> wharf's canonical name
CHARSETS = {
    "cp1252": "WINDOWS-1252", "latin_1": "ISO-8859-1", "iso8859_15": "ISO-8859-15",
    "cp850": "CP850", "cp437": "CP437", "mac_roman": "MACINTOSH",
    "cp1250": "WINDOWS-1250", "iso8859_2": "ISO-8859-2",
    "cp1251": "WINDOWS-1251", "iso8859_5": "ISO-8859-5", "koi8_r": "KOI8-R", "koi8_u": "KOI8-U",
    "cp1253": "WINDOWS-1253", "iso8859_7": "ISO-8859-7",
    "cp1254": "WINDOWS-1254", "iso8859_9": "ISO-8859-9",
    "cp1257": "WINDOWS-1257", "iso8859_13": "ISO-8859-13",
}

WESTERN = [
    "Müller GmbH €", "François Sàrl", "Ørsted A/S", "Straße 12", "Crème brûlée à 4,50 €",
    "Société Générale", "Señor Muñoz – Año 2024", "Øresund Bröd & Smör", "Ærø Ålborg",
    "Bjørn Østergård", "„Anführungszeichen“ und “quotes”", "Preis: 12,50 € (inkl. MwSt.)",
    "Œuvre complète", "cœur et sœur", "Dušan Šimek", "Žižkov", "Pâtisserie Ÿvonne",
    "1½ kg Äpfel", "¼ Liter Öl", "Café – 3 × 2", "Garçon… déjà vu", "L’été à Noël",
    "naïve coöperation", "Größe: 38°", "Jürgen Weiß", "Bäckerei Groß", "Curaçao © 2024",
    "Smörgåsbord für 10 €", "Zoë Brontë", "Ångström", "Þórður Guðmundsson", "Ça va? ¡Sí!",
]
CENTRAL = [
    "Zażółć gęślą jaźń", "Łódź Śląsk", "Příliš žluťoučký kůň", "úpěl ďábelské ódy",
    "Árvíztűrő tükörfúrógép", "Kraków ul. Świętokrzyska", "Brno – Šumava", "Ďurčo Ľubomír",
    "Žilina, Košice", "Dvořák Antonín", "Gdańsk 12 zł", "Tűzoltó Ödön",
]
CYRILLIC = [
    "Съешь же ещё этих мягких французских булок", "Привет мир", "Москва, ул. Тверская",
    "Общество с ограниченной ответственностью", "Иванов Иван Иванович", "Цена: 100 руб.",
    "Широкая электрификация южных губерний", "ЗАО «Ромашка»", "Ёлка и ёж",
]
UKRAINIAN = ["Ґанок їжак", "Київ, вул. Хрещатик", "Євген Ґудзь", "Україна — їжа"]
GREEK = [
    "Γειά σου Κόσμε", "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία", "Αθήνα, οδός Ερμού",
    "Θεσσαλονίκη", "Τιμή: 12 ευρώ", "ΑΕ Ελληνικά Πετρέλαια",
]
TURKISH = [
    "Pijamalı hasta yağız şoföre çabucak güvendi", "İstanbul Şişli", "Ağaç ığdır",
    "Gümüşhane Çorum", "Öğretmen Işık", "Şirket A.Ş.",
]
BALTIC = [
    "Įlinkdama fechtuotojo špaga", "Glāžšķūņa rūķīši", "Põdur Zagrebi tšellomängija",
    "Vilnius, Gedimino pr.", "Rīga, Brīvības iela", "Ąžuolas ėjo į šilą", "Ķēniņš Ļoti",
]

FAMILIES = {
    "west": (["cp1252", "latin_1", "iso8859_15", "cp850", "cp437", "mac_roman"], WESTERN),
    "central": (["cp1250", "iso8859_2"], CENTRAL),
    "cyrillic": (["cp1251", "iso8859_5", "koi8_r", "koi8_u"], CYRILLIC + UKRAINIAN),
    "greek": (["cp1253", "iso8859_7"], GREEK),
    "turkish": (["cp1254", "iso8859_9"], TURKISH),
    "baltic": (["cp1257", "iso8859_13"], BALTIC),
}
DEFAULT = ["cp1252", "latin_1", "iso8859_15"]  # what `encoding: auto` lists by default
FILES_PER_CHARSET = 6


def encodable(text, codec):
    try:
        text.encode(codec)
        return True
    except UnicodeEncodeError:
        return False


def generate(out):
    rnd = random.Random(20)
    cases = []  # {profile, file, charset, lines}
    profiles = {"default": [], "all": []}
    for fam in FAMILIES:
        profiles[fam] = []
    for fam, (codecs, phrases) in FAMILIES.items():
        for codec in codecs:
            pool = [p for p in phrases if encodable(p, codec) and not p.isascii()]
            assert len(pool) >= 3, (codec, pool)
            for i in range(FILES_PER_CHARSET):
                n = rnd.randint(1, 10)
                lines = [rnd.choice(pool) for _ in range(n)]
                lines[0] = "%s %d" % (lines[0], i)  # no two files alike
                eol = rnd.choice(["\r\n", "\n"])
                name = "%s_%d.csv" % (codec, i)
                data = (eol.join(lines) + eol).encode(codec)
                targets = ["all", fam] + (["default"] if codec in DEFAULT else [])
                for prof in targets:
                    profiles[prof].append((name, data, codec, lines))
    # issue 20, finding 5: three rows, `;`, CRLF, Windows-1252
    rows = ["Müller GmbH €", "François Sàrl", "Ørsted A/S"]
    data = "\r\n".join(rows).encode("cp1252") + b"\r\n"
    for prof in ("default", "west", "all"):
        profiles[prof].append(("issue20.csv", data, "cp1252", rows))
    for prof, files in profiles.items():
        os.makedirs(os.path.join(out, prof), exist_ok=True)
        for name, data, codec, lines in files:
            with open(os.path.join(out, prof, name), "wb") as f:
                f.write(data)
            cases.append({"profile": prof, "file": name, "charset": CHARSETS[codec],
                          "lines": lines})
    lists = {"default": None, "all": sorted(set(CHARSETS.values()))}
    for fam, (codecs, _) in FAMILIES.items():
        lists[fam] = [CHARSETS[c] for c in codecs]
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"cases": cases, "lists": lists}, f, ensure_ascii=False, indent=1)


def check(out, db, intakes_path):
    import sqlite3
    with open(os.path.join(out, "cases.json")) as f:
        spec = json.load(f)
    with open(intakes_path) as f:
        intakes = json.load(f)
    by = {(i["profile"], i["name"]): i for i in intakes}
    con = sqlite3.connect(db)
    failures = 0
    stats = {}
    for c in spec["cases"]:
        key = (c["profile"], c["file"])
        st = stats.setdefault(c["profile"], {"loaded": 0, "uncertain": 0})
        i = by.get(key)
        if i is None:
            print("FAIL %s/%s: no intake" % key)
            failures += 1
            continue
        if i["outcome"] == "loaded":
            rows = [r[0] for r in con.execute(
                'select name from "t_%s" where _wharf_intake = ? order by rowid'
                % c["profile"], (i["id"],))]
            if rows != c["lines"]:
                print("FAIL %s/%s (%s): loaded WRONG as %s: %r, want %r" % (
                    c["profile"], c["file"], c["charset"],
                    ((i.get("info") or {}).get("inspection") or {}).get("parts", [{}])[0]
                    .get("encoding"), rows, c["lines"]))
                failures += 1
            else:
                st["loaded"] += 1
                st.setdefault("by", {}).setdefault(c["charset"], 0)
                st["by"][c["charset"]] += 1
        elif i["outcome"] == "rejected" and any(
                w in (i["last_error"] or "") for w in ("encoding uncertain", "not UTF-8",
                                                       "C1 control")):
            st["uncertain"] += 1
        else:
            print("FAIL %s/%s (%s): %s: %s" % (c["profile"], c["file"], c["charset"],
                                               i["outcome"], i["last_error"]))
            failures += 1
    for prof, st in sorted(stats.items()):
        print("profile %-9s loaded right %3d, rejected as uncertain %3d  %s" % (
            prof, st["loaded"], st["uncertain"], json.dumps(st.get("by", {}), sort_keys=True)))
    # detection must also work, not only refuse: under the default list and
    # each family's list, at least 3 files in 4 load (the list of every
    # charset may refuse more: more readings to tell apart)
    for prof, st in sorted(stats.items()):
        n = st["loaded"] + st["uncertain"]
        if prof != "all" and st["loaded"] < 0.75 * n:
            print("FAIL profile %s: only %d of %d files loaded" % (prof, st["loaded"], n))
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
