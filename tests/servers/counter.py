#!/usr/bin/python3
"""A counting SMTP server for load tests, built on aiosmtpd (an independent SMTP server
library): it speaks real SMTP like capture.py but stores only one line per message.

Usage:
    /usr/bin/python3 counter.py --port-file PORTFILE --ids IDSFILE [--conns CONNSFILE]

Listens on 127.0.0.1 with an OS-chosen port, writes the port number to PORTFILE
(atomically), and runs until SIGTERM/SIGINT.

For every accepted message it appends one line to IDSFILE before answering 250:

    <Message-ID value or "-"> TAB <Subject value or "-"> TAB <rcpt count> TAB <bytes>

so the line count is the number of messages the server accepted, and a message
counted was acknowledged only after it was written (and flushed). Writing per message
(rather than capture.py's two files) keeps 10,000 messages cheap. Only the header block
is looked at; the body is counted in <bytes> (as received, dot-stuffing undone).

With --conns, connection events are appended to CONNSFILE too (for session tests: how
many connections carried the messages), one line each, flushed:

    <event> TAB <conn> TAB <open> TAB <seconds>

event: open, ehlo, mail, rset, quit, close; conn: the connection number (1, 2, ... in
accept order); open: how many connections are open after the event (so the largest
value is the most connections the server had at once); seconds: time.monotonic().
"""

import argparse
import asyncio
import os
import signal
import time

from aiosmtpd.smtp import SMTP


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.rename(tmp, path)


def header_value(head, name):
    """The unfolded value of the first field called name (bytes, case-insensitive) in
    the header block head (bytes, CRLF line ends), or b"-"."""
    prefix = name.lower() + b":"
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(prefix):
            value = line[len(prefix):]
            for cont in lines[i + 1:]:
                if cont[:1] not in (b" ", b"\t"):
                    break
                value += cont
            return value.strip() or b"-"
    return b"-"


class Handler:
    def __init__(self, ids):
        self.ids = ids

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        head = data.split(b"\r\n\r\n", 1)[0]
        line = b"\t".join([
            header_value(head, b"message-id"),
            header_value(head, b"subject"),
            str(len(envelope.rcpt_tos)).encode(),
            str(len(data)).encode(),
        ])
        self.ids.write(line.replace(b"\n", b" ") + b"\n")
        self.ids.flush()
        return "250 Message accepted for delivery"


class Conns:
    """The --conns log: connection numbers, the open count, one line per event."""

    def __init__(self, path):
        self.fh = open(path, "a", encoding="ascii")
        self.serial = 0
        self.open = 0

    def log(self, event, conn):
        self.fh.write("%s\t%d\t%d\t%.6f\n" % (event, conn, self.open, time.monotonic()))
        self.fh.flush()


class LoggingSMTP(SMTP):
    """aiosmtpd's SMTP, logging connection events to a Conns."""

    def __init__(self, *args, conns, **kwargs):
        super().__init__(*args, **kwargs)
        self.conns = conns
        conns.serial += 1
        self.conn_id = conns.serial

    def connection_made(self, transport):
        self.conns.open += 1
        self.conns.log("open", self.conn_id)
        super().connection_made(transport)

    def connection_lost(self, exc):
        self.conns.open -= 1
        self.conns.log("close", self.conn_id)
        super().connection_lost(exc)

    async def smtp_EHLO(self, arg):
        self.conns.log("ehlo", self.conn_id)
        await super().smtp_EHLO(arg)

    async def smtp_MAIL(self, arg):
        self.conns.log("mail", self.conn_id)
        await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg):
        self.conns.log("rset", self.conn_id)
        await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg):
        self.conns.log("quit", self.conn_id)
        await super().smtp_QUIT(arg)


async def serve(args):
    ids = open(args.ids, "ab")
    loop = asyncio.get_running_loop()
    if args.conns:
        conns = Conns(args.conns)

        def factory():
            return LoggingSMTP(Handler(ids), hostname="counter.test", enable_SMTPUTF8=True,
                               loop=loop, conns=conns)
    else:
        def factory():
            return SMTP(Handler(ids), hostname="counter.test", enable_SMTPUTF8=True,
                        loop=loop)
    server = await loop.create_server(factory, "127.0.0.1", 0)
    write_atomic(args.port_file,
                 ("%d\n" % server.sockets[0].getsockname()[1]).encode("ascii"))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    ids.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--conns")
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
