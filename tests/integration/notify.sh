#!/usr/bin/env bash
# systemd notification without systemd: a datagram socket plays the service
# manager ($NOTIFY_SOCKET, $WATCHDOG_USEC) and must receive READY=1, the
# watchdog pings at half the interval, RELOADING=1/READY=1 around SIGHUP and
# STOPPING=1 at SIGTERM.
. "$WHARF_SOURCE_DIR/tests/lib/common.sh"

orders_schema
spool_profile acme '{ done_file: "{name}.done" }'
python3 - "$T/notify.sock" "$T/notify.log" <<'EOP' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(0.5)
end = time.time() + 20
with open(sys.argv[2], "a") as log:
    while time.time() < end:
        try: msg = s.recv(4096).decode()
        except socket.timeout: continue
        for line in msg.split("\n"):
            log.write("%.3f %s\n" % (time.time(), line)); log.flush()
EOP
LISTENER=$!
for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 "$WHARF" run >srv.out 2>srv.err &
SRV=$!
for _ in $(seq 1 50); do grep -q "READY=1" notify.log 2>/dev/null && break; sleep 0.1; done
check "READY=1 sent at start" grep -q "READY=1" notify.log
sleep 3
gap=$(python3 -c '
ts=[float(l.split()[0]) for l in open("notify.log") if "WATCHDOG=1" in l]
print("%.3f" % max(b - a for a, b in zip(ts, ts[1:])) if len(ts) > 2 else "none")')
check "watchdog pinged well within WATCHDOG_USEC=1s (largest gap $gap s)" \
  python3 -c "import sys; sys.exit(0 if '$gap' != 'none' and float('$gap') < 0.9 else 1)"
kill -HUP $SRV; sleep 1
check "RELOADING=1 on SIGHUP" grep -q "RELOADING=1" notify.log
eq "READY=1 again after the reload" "$(grep -c 'READY=1' notify.log)" 2
kill -TERM $SRV; wait $SRV; rc=$?
eq "clean exit on SIGTERM" "$rc" 0
sleep 0.6
check "STOPPING=1 on SIGTERM" grep -q "STOPPING=1" notify.log
kill $LISTENER 2>/dev/null; wait $LISTENER 2>/dev/null
finish
