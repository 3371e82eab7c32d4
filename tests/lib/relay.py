#!/usr/bin/env python3
"""tests/lib/relay.py: a TCP relay on 127.0.0.1 in front of the sshd
fixture, to play a partner's server that limits sessions or a link that
drops:

    relay.py TARGET_PORT PORTFILE [--limit N] [--rate BYTES_PER_S]

  --limit N   at most N connections at once: one beyond is closed at once
              (as servers with a per-user session limit do); each refusal
              is counted in PORTFILE.refused
  --rate R    each connection carries at most R bytes a second toward the
              client (so a test can see files in flight)
  SIGUSR1     drops every open connection (the link went down); new ones
              are relayed again

Writes the port it listens on to PORTFILE once listening.  Runs until
killed.
"""
import argparse
import asyncio
import os
import signal


async def pump(r, w, rate):
    try:
        while True:
            b = await r.read(1 << 15)
            if not b:
                break
            w.write(b)
            await w.drain()
            if rate:
                await asyncio.sleep(len(b) / rate)
    except (ConnectionError, OSError):
        pass
    try:
        w.close()
    except OSError:
        pass


async def main(a):
    active = []
    refused = 0

    def drop_all():
        for pair in list(active):
            for w in pair:
                if w is not None:
                    w.transport.abort()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, drop_all)

    async def client(cr, cw):
        nonlocal refused
        if a.limit and len(active) >= a.limit:
            refused += 1
            with open(a.portfile + ".refused.tmp", "w") as f:
                f.write("%d\n" % refused)
            os.replace(a.portfile + ".refused.tmp", a.portfile + ".refused")
            cw.transport.abort()
            return
        pair = [cw, None]
        active.append(pair)  # counted before the first await
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", a.target)
            pair[1] = sw
            await asyncio.gather(pump(cr, sw, 0), pump(sr, cw, a.rate))
        except OSError:
            cw.transport.abort()
        finally:
            active.remove(pair)

    srv = await asyncio.start_server(client, "127.0.0.1", 0)
    with open(a.portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.sockets[0].getsockname()[1])
    os.replace(a.portfile + ".tmp", a.portfile)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("target", type=int)
    ap.add_argument("portfile")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0)
    asyncio.run(main(ap.parse_args()))
