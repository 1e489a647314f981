"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each direction.

    python3 bench/delay_proxy.py --upstream PORT --delay-ms 10 --port-file FILE

Listens on a free loopback port (written to FILE once it accepts connections) and forwards
each connection to 127.0.0.1:UPSTREAM. Every chunk read from either side is written to the
other side DELAY ms after it arrived, in order, so a command and its reply take 2 x DELAY
more than on plain loopback: the round trip of a distant server. Chunks are not held back
behind each other: a chunk that arrives while an earlier one waits leaves DELAY after its
own arrival, as on a real link (latency, not bandwidth).
"""

import argparse
import asyncio
import os


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk delay seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, chunk or None))
            if not chunk:
                break
        await delivery
    finally:
        delivery.cancel()


async def serve(upstream, delay):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                pump(client_reader, server_writer, delay),
                pump(server_reader, client_writer, delay),
            )
        except (ConnectionError, OSError):
            pass  # one side reset: closing both below ends the other direction too
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    server = await serve(args.upstream, args.delay_ms / 1000)
    port = server.sockets[0].getsockname()[1]
    # Written whole under another name, then renamed: a reader never sees half a port.
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
