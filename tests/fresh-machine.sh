#!/usr/bin/env bash
# setup/fresh_machine: makes this machine look fresh for the SFTP tests.
# /run/sshd (sshd's privilege separation directory) only exists where the
# ssh service has run since boot; the fixtures (tests/lib/sshd.sh) must
# create it themselves.  So remove it before the tests that start sshd --
# only when no sshd at all is running (a system sshd, or another run's test
# server, needs it) -- and they must still pass.
set -u
if [ "$(id -u)" != 0 ]; then
    echo "fresh_machine: not root; the SFTP tests need root and skip or fail on their own"
    exit 0
fi
if pids=$(pgrep -x sshd); then
    echo "fresh_machine: an sshd is running (pid $(echo $pids | tr '\n' ' ')); /run/sshd left in place"
    exit 0
fi
if [ -e /run/sshd ]; then
    rm -rf /run/sshd || { echo "fresh_machine: cannot remove /run/sshd" >&2; exit 1; }
    echo "fresh_machine: removed /run/sshd; the SFTP fixtures must create it"
else
    echo "fresh_machine: no /run/sshd (as on a fresh boot); the SFTP fixtures must create it"
fi
[ ! -e /run/sshd ] || { echo "fresh_machine: /run/sshd still there" >&2; exit 1; }
