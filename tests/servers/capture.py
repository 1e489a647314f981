#!/usr/bin/python3
"""A capturing SMTP server built on aiosmtpd (an independent SMTP server library).

Usage:
    /usr/bin/python3 capture.py --port-file PORTFILE --dir DIR [--refuse SUBSTR] [--pipelining]

Listens on 127.0.0.1 with an OS-chosen port, writes the port number to PORTFILE
(atomically), and runs until SIGTERM/SIGINT. SMTPUTF8 is enabled.

Every accepted message N (1, 2, ... across all connections) is stored as:
  DIR/N.eml   the exact message bytes as aiosmtpd received them (dot-stuffing undone)
  DIR/N.json  {"mail_from", "rcpt_tos", "mail_options", "rcpt_options"}
The .eml is written first and the .json last (both via rename), so a reader that polls
for N.json always finds a complete message.

--refuse SUBSTR   RCPT of any address containing SUBSTR is answered
                  "550 5.1.1 <addr>: Recipient address rejected: User unknown".
--pipelining      advertise PIPELINING in the EHLO reply (aiosmtpd reads commands
                  strictly in order, so pipelined clients work either way).
"""

import argparse
import asyncio
import json
import os
import signal

from aiosmtpd.smtp import SMTP


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.rename(tmp, path)


class Handler:
    def __init__(self, directory, refuse):
        self.directory = directory
        self.refuse = refuse
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and self.refuse in address:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        base = os.path.join(self.directory, str(n))
        write_atomic(base + ".eml", envelope.original_content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
        }
        write_atomic(base + ".json", json.dumps(meta, ensure_ascii=True).encode("ascii"))
        return "250 Message accepted for delivery"


class PipeliningHandler(Handler):
    # aiosmtpd 1.4 calls a 5-argument handle_EHLO with the reply lines built so far and
    # sends whatever it returns. With this hook aiosmtpd no longer records the client's
    # host name itself, so do that here (otherwise MAIL gets "503 send HELO first").
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]


async def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    cls = PipeliningHandler if args.pipelining else Handler
    handler = cls(args.dir, args.refuse)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="capture.test", loop=loop),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    write_atomic(args.port_file, ("%d\n" % port).encode("ascii"))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--refuse", default=None)
    ap.add_argument("--pipelining", action="store_true")
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
