#!/usr/bin/env python3
"""runbook.py: the commands an operator is told to run in runbooks/*.md.

    runbook.py list FILE            every command chunk, NUL-separated, as written
    runbook.py subst FILE           the same, placeholders replaced from RB_* env vars
    runbook.py prelude FILE         FILE's first block, substituted (README's "Before you start")

A command chunk is one ```sh block line, joined with the following lines
until bash -n accepts it (a SQL query in quotes over three lines, a
`for ... done` loop).  Comment-only lines are dropped.

Placeholders are the words the runbooks use for "your value here"; each is
replaced only as a whole word (not inside PRAGMA, not the -P of sftp):

    P ID NEW_ID DSN_FILE FILE DB TARGET_DB KEY_FILE HOST PORT USER BAG THAT
    REMOTE_DIR (and
    <ID>, <that>) /etc/wharf/profiles /etc/wharf/schemas /etc/wharf/wharf.yaml
    /etc/wharf/known_hosts /srv/sftp/acme/drop /var/lib/wharf /usr/bin/wharf /root

from RB_P, RB_ID, ... (RB_ETC_PROFILES, RB_ETC_SCHEMAS, RB_ETC_CONFIG,
RB_ETC_KNOWN_HOSTS, RB_DROP, RB_STATE, RB_WHARF, RB_ROOT).  A chunk naming a
placeholder whose variable is unset is an error: the scenario must provide
it.
"""
import os
import re
import subprocess
import sys

WORDS = ["REMOTE_DIR", "NEW_ID", "DSN_FILE", "TARGET_DB", "KEY_FILE", "FILE", "HOST", "PORT", "USER", "BAG", "DB",
         "THAT", "ID", "P"]
PATHS = [("/etc/wharf/profiles", "RB_ETC_PROFILES"), ("/etc/wharf/schemas", "RB_ETC_SCHEMAS"),
         ("/etc/wharf/wharf.yaml", "RB_ETC_CONFIG"), ("/etc/wharf/known_hosts", "RB_ETC_KNOWN_HOSTS"),
         ("/srv/sftp/acme/drop", "RB_DROP"), ("/var/lib/wharf", "RB_STATE"),
         ("/usr/bin/wharf", "RB_WHARF"), ("/root", "RB_ROOT")]
# "<ID>" and "<that>" are the same placeholders written for a reader; they
# become ID and THAT before bash -n sees them (a bare <ID> is a redirection).
ANGLE = [("<ID>", "ID"), ("<that>", "THAT")]


def in_scope(section):
    """RB_SECTION: only the blocks under a "## " heading starting with it;
    RB_SKIP_SECTION: all but those (a page with a section that needs another
    deployment, e.g. target-down's PostgreSQL part)."""
    only, skip = os.environ.get("RB_SECTION"), os.environ.get("RB_SKIP_SECTION")
    if only:
        return section.startswith(only)
    if skip:
        return not section.startswith(skip)
    return True


def blocks(text):
    out, cur, inside, section = [], None, False, ""
    for line in text.splitlines():
        s = line.strip()
        if not inside and line.startswith("## "):
            section = line[3:].strip()
            continue
        if s.startswith("```"):
            if inside:
                if in_scope(section):
                    out.append(cur)
                inside = False
            elif s in ("```sh", "```bash", "```shell"):
                inside, cur = True, []
            continue
        if inside:
            line = line.strip()
            for a, w in ANGLE:
                line = line.replace(a, w)
            cur.append(line)
    return out


def complete(chunk):
    return subprocess.run(["bash", "-n", "-c", chunk], capture_output=True).returncode == 0


def chunks(path):
    res = []
    for b in blocks(open(path, encoding="utf-8").read()):
        acc = None
        for line in b:
            if acc is None:
                if not line or line.startswith("#"):
                    continue
                acc = line
            else:
                acc += "\n" + line
            if not acc.endswith("\\") and complete(acc):
                res.append(acc)
                acc = None
        if acc is not None:
            sys.exit(f"{path}: an incomplete command: {acc!r}")
    return res


def subst(chunk, path):
    def val(var, word):
        v = os.environ.get(var)
        if v is None:
            sys.exit(f"{path}: the scenario gives no {var} for {word!r} in: {chunk}")
        return v
    for p, var in PATHS:
        if re.search(re.escape(p) + r"(?![\w.-])", chunk) or (p + "/") in chunk:
            chunk = re.sub(re.escape(p) + r"(?![\w.-])", lambda m: val(var, p), chunk)
    for w in WORDS:
        pat = r"(?<![-\w$.])" + w + r"(?![\w])"
        if re.search(pat, chunk):
            chunk = re.sub(pat, lambda m: val("RB_" + w, w), chunk)
    return chunk


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("list", "subst", "prelude"):
        sys.exit(__doc__)
    path = sys.argv[2]
    if sys.argv[1] == "prelude":  # the first block: what "every page assumes"
        os.environ.pop("RB_SECTION", None)
        os.environ.pop("RB_SKIP_SECTION", None)
        first = blocks(open(path, encoding="utf-8").read())[0]
        print(subst("\n".join(first), path))
        return
    for c in chunks(path):
        sys.stdout.write((subst(c, path) if sys.argv[1] == "subst" else c) + "\0")


if __name__ == "__main__":
    main()
