"""Racer for hostile_spool.sh: exchanges ROOT/sub (a directory) with ROOT/link
(a symlink to a directory outside the spool) with renameat2(RENAME_EXCHANGE)
as fast as it can, until ROOT/../race.stop appears (or 300 s pass), refilling
sub/ through a descriptor it holds: a*.csv files that load and q*.csv
symlinks that get quarantined.  Writes the swap count to ROOT/../race.swaps.
"""
import ctypes
import os
import sys
import time

root = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE, AT_FDCWD = 2, -100
a, b = (root + "/sub").encode(), (root + "/link").encode()
sub = os.open(root + "/sub", os.O_RDONLY | os.O_DIRECTORY)


def refill():
    for i in range(1, 7):
        n = "a%d.csv" % i
        try:
            os.stat(n, dir_fd=sub)
        except FileNotFoundError:
            fd = os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=sub)
            os.write(fd, b"order_id,customer,amount\n%d,INSIDE,1\n" % (100 + i))
            os.close(fd)
            # old enough for min_age, and not the outside files' mtime
            os.utime(n, (1672531200 + i, 1672531200 + i), dir_fd=sub)
        q = "q%d.csv" % i
        try:
            os.stat(q, dir_fd=sub, follow_symlinks=False)
        except FileNotFoundError:
            os.symlink("/nonexistent/q", q, dir_fd=sub)


refill()
open(root + "/../race.ready", "w").close()
deadline = time.time() + 300
swaps = 0
while not os.path.exists(root + "/../race.stop") and time.time() < deadline:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2: errno %d" % ctypes.get_errno())
    swaps += 1
    if swaps % 256 == 0:
        refill()
if os.path.islink(root + "/sub"):
    libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
with open(root + "/../race.swaps", "w") as f:
    f.write(str(swaps))
