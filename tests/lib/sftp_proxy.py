#!/usr/bin/env python3
"""sftp_proxy: a hostile SFTP server for wharf's tests.

It runs OpenSSH's real sftp-server behind it and relays the SFTP v3 packets
both ways, changing only what a misbehaving partner server would:

  rename  {real name: name to list instead}   names in SSH_FXP_NAME answers
          (a name may hold '/', NUL, control characters: JSON escapes)
  size    {real name: size to claim}          the size in listings and in
          the STAT/LSTAT/FSTAT answers for that file (a server that lies)

and it appends to `log` one line per file read: "<name> <bytes sent>", the
bytes of SSH_FXP_DATA the client actually received for it.

    sftp_proxy.py CONFIG.json     (as an sshd ForceCommand)

CONFIG: {"root": DIR, "rename": {...}, "size": {...}, "log": FILE}.
Test-only: never installed.
"""
import json
import os
import struct
import subprocess
import sys
import threading

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
OPEN, READ, LSTAT, FSTAT, STAT, CLOSE = 3, 5, 7, 8, 17, 4
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105

cfg = json.load(open(sys.argv[1]))
rename = {k.encode(): v.encode("utf-8", "surrogateescape") for k, v in cfg.get("rename", {}).items()}
sizes = {k.encode(): int(v) for k, v in cfg.get("size", {}).items()}
pending = {}   # request id -> (kind, real base name)
handles = {}   # handle -> real base name
sent = {}      # real base name -> DATA bytes relayed
lock = threading.Lock()


def read_exact(f, n):
    b = b""
    while len(b) < n:
        c = f.read(n - len(b))
        if not c:
            return None
        b += c
    return b


def read_packet(f):
    h = read_exact(f, 4)
    if h is None:
        return None
    (n,) = struct.unpack(">I", h)
    return read_exact(f, n)


def put_packet(f, body):
    f.write(struct.pack(">I", len(body)) + body)
    f.flush()


def get_str(b, o):
    (n,) = struct.unpack_from(">I", b, o)
    return b[o + 4:o + 4 + n], o + 4 + n


def put_str(s):
    return struct.pack(">I", len(s)) + s


def parse_attrs(b, o):
    (flags,) = struct.unpack_from(">I", b, o)
    o += 4
    a = {"flags": flags}
    if flags & 1:
        (a["size"],) = struct.unpack_from(">Q", b, o); o += 8
    if flags & 2:
        a["uidgid"] = b[o:o + 8]; o += 8
    if flags & 4:
        a["perm"] = b[o:o + 4]; o += 4
    if flags & 8:
        a["time"] = b[o:o + 8]; o += 8
    if flags & 0x80000000:
        (cnt,) = struct.unpack_from(">I", b, o)
        start = o
        o += 4
        for _ in range(cnt):
            _, o = get_str(b, o)
            _, o = get_str(b, o)
        a["ext"] = b[start:o]
    return a, o


def put_attrs(a):
    f = a["flags"]
    out = struct.pack(">I", f)
    if f & 1:
        out += struct.pack(">Q", a["size"])
    for bit, k in ((2, "uidgid"), (4, "perm"), (8, "time"), (0x80000000, "ext")):
        if f & bit:
            out += a[k]
    return out


def lie(name, a):
    if name in sizes and a["flags"] & 1:
        a["size"] = sizes[name]
    return a


def up(child):
    """client -> sftp-server: remember what each request is about."""
    src = sys.stdin.buffer
    while True:
        p = read_packet(src)
        if p is None:
            break
        t = p[0]
        if t in (OPEN, LSTAT, STAT, FSTAT, READ):
            (rid,) = struct.unpack_from(">I", p, 1)
            arg, _ = get_str(p, 5)
            with lock:
                if t in (FSTAT, READ):
                    pending[rid] = (t, handles.get(arg))
                else:
                    pending[rid] = (t, os.path.basename(arg))
        put_packet(child.stdin, p)
    child.stdin.close()


def down(child):
    """sftp-server -> client: rename, lie, count."""
    dst = sys.stdout.buffer
    while True:
        p = read_packet(child.stdout)
        if p is None:
            break
        t = p[0]
        if t in (HANDLE, DATA, ATTRS, STATUS):
            (rid,) = struct.unpack_from(">I", p, 1)
            with lock:
                kind, name = pending.pop(rid, (None, None))
            if t == HANDLE and kind == OPEN:
                h, _ = get_str(p, 5)
                handles[h] = name
            elif t == DATA and name is not None:
                data, _ = get_str(p, 5)
                sent[name] = sent.get(name, 0) + len(data)
            elif t == ATTRS and name is not None:
                a, _ = parse_attrs(p, 5)
                p = p[:5] + put_attrs(lie(name, a))
        elif t == NAME:
            (rid, cnt) = struct.unpack_from(">II", p, 1)
            o = 9
            out = p[:9]
            for _ in range(cnt):
                fn, o = get_str(p, o)
                ln, o = get_str(p, o)
                a, o = parse_attrs(p, o)
                a = lie(fn, a)
                out += put_str(rename.get(fn, fn)) + put_str(ln) + put_attrs(a)
            p = out
        put_packet(dst, p)


def main():
    child = subprocess.Popen([SFTP_SERVER, "-d", cfg["root"]], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    t = threading.Thread(target=up, args=(child,), daemon=True)
    t.start()
    try:
        down(child)
    finally:
        if cfg.get("log"):
            with open(cfg["log"], "a") as f:
                for name, n in sorted(sent.items()):
                    f.write("%s %d\n" % (name.decode("utf-8", "replace"), n))
        child.wait()


main()
