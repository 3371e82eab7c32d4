#!/usr/bin/env python3
"""bench/delay_proxy.py: a TCP relay on loopback that holds every chunk for
DELAY ms in each direction (so a round trip gains 2 x DELAY), without
limiting bandwidth: chunks are read as fast as they come and each is written
DELAY ms after it arrived, in order.  For B4w (bench/run): the many-small-
files case over a wide-area-like link.

    delay_proxy.py LISTEN_PORT TARGET_PORT [DELAY_MS]   (default 20)

Listens on 127.0.0.1 only and relays to 127.0.0.1:TARGET_PORT.  Prints
"ready PORT" on stdout once listening (LISTEN_PORT 0: a free port).  Runs
until killed (SIGTERM); bench/run starts and stops it.
"""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
    q = asyncio.Queue()

    async def drain():
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.ensure_future(drain())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            q.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    q.put_nowait((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def serve(listen, target, delay):
    async def client(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay))
        for w in (cw, sw):
            try:
                w.close()
            except OSError:
                pass

    srv = await asyncio.start_server(client, "127.0.0.1", listen)
    port = srv.sockets[0].getsockname()[1]
    print("ready %d" % port, flush=True)
    async with srv:
        await srv.serve_forever()


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 20.0) / 1000.0
    try:
        asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), delay))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
