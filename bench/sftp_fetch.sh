#!/usr/bin/env bash
# sftp_fetch: wharf's SFTP download (source_sftp_ops.fetch: libssh2, 2 MiB
# reads pipelined, SHA-256 on the fly, fsync + rename) against OpenSSH's
# `sftp get` of the same 500 MB file over loopback, through the test sshd
# (tests/lib/sshd.sh).  Needs root and a build dir:
#
#   bench/sftp_fetch.sh [BUILD_DIR]     (default: build)
#
# The destination is /dev/shm when writable, so the disk does not dominate.
# Prints MB/s for both and the ratio.  Measured on the development VM
# (2 vCPU, OpenSSH 9.2, libssh2 1.10.0): wharf 213-346 MB/s, sftp get
# 294-514 MB/s, ratio 0.66-0.78 (buffer 256 KiB, 2 MiB and 8 MiB all
# within the noise).  The gap is libssh2 1.10's transport: no
# chacha20-poly1305 or AES-GCM, so aes128-ctr + hmac-sha2-256 on one core,
# while OpenSSH splits crypto (ssh) and SFTP (sftp) over two processes.
# Against the same work done by hand (sftp get + sha256sum + sync) wharf
# is 1.2-1.4x faster.
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
WHARF_BENCH=1 "$build/tests/test_sftp" 2>&1 | grep -A4 '^bench:'
