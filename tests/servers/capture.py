#!/usr/bin/python3
"""A capturing SMTP server built on aiosmtpd (an independent SMTP server library).

Usage:
    /usr/bin/python3 capture.py --port-file PORTFILE --dir DIR [--refuse SUBSTR] [--pipelining]
        [--cert CERT --key KEY (--starttls [--require-starttls] | --implicit)
         [--client-ca CAFILE]]

Listens on 127.0.0.1 with an OS-chosen port, writes the port number to PORTFILE
(atomically), and runs until SIGTERM/SIGINT. SMTPUTF8 is enabled.

Every accepted message N (1, 2, ... across all connections) is stored as:
  DIR/N.eml   the exact message bytes as aiosmtpd received them (dot-stuffing undone)
  DIR/N.json  {"mail_from", "rcpt_tos", "mail_options", "rcpt_options",
               "tls", "sni", "client_cert"}
              tls: true if the message arrived over TLS (STARTTLS or implicit);
              sni: the server name the client sent in its TLS ClientHello (SNI), or
              null (no TLS, or no SNI sent: clients send none for IP addresses);
              client_cert: true if the client presented a certificate that verified
              against --client-ca.
The .eml is written first and the .json last (both via rename), so a reader that polls
for N.json always finds a complete message.

--refuse SUBSTR   RCPT of any address containing SUBSTR is answered
                  "550 5.1.1 <addr>: Recipient address rejected: User unknown".
--pipelining      advertise PIPELINING in the EHLO reply (aiosmtpd reads commands
                  strictly in order, so pipelined clients work either way).

TLS (without these options the server is plain SMTP, STARTTLS not offered):
--cert F --key F  the server certificate (PEM, may include the chain) and its key;
                  required by, and only allowed with, --starttls or --implicit.
--starttls        offer STARTTLS (aiosmtpd's tls_context; advertised as "250-STARTTLS"
                  until TLS is on). Not with --implicit.
--require-starttls  with --starttls: commands other than EHLO/NOOP/QUIT/STARTTLS get
                  "530 Must issue a STARTTLS command first" before TLS.
--implicit        implicit TLS: the listening socket speaks TLS from the first byte
                  (the greeting comes after the handshake); STARTTLS is not offered.
--client-ca F     require a client certificate signed by a CA in F (CERT_REQUIRED):
                  a client without one (or with an untrusted one) fails the handshake.
A failed handshake drops that connection without a TLS alert (asyncio closes the socket
at once): the client sees EOF ("unexpected eof while reading", "Connection unexpectedly
closed"); with TLS 1.3 and --client-ca only on its first read, its own side of the
handshake having completed. Nothing is stored; a failed STARTTLS handshake also prints
aiosmtpd's "SMTP session exception" traceback (TLSSetupException) on stderr.
"""

import argparse
import asyncio
import json
import os
import logging
import signal
import ssl

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
        tls, sni, client_cert = tls_info(server.transport)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "tls": tls,
            "sni": sni,
            "client_cert": client_cert,
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


# Attribute set on each connection's ssl.SSLObject by the SNI callback.
SNI_ATTR = "_capture_sni"


def sni_callback(ssl_object, server_name, context):
    # Called during the handshake with the connection's SSLObject (the one asyncio
    # later exposes as transport.get_extra_info("ssl_object")); server_name is None
    # when the client sent no SNI. Returning None continues the handshake.
    try:
        setattr(ssl_object, SNI_ATTR, server_name)
    except Exception:  # noqa: BLE001 - never fail a handshake here
        pass
    return None


def tls_info(transport):
    """(tls, sni, client_cert) of the connection behind an aiosmtpd transport. Works for
    STARTTLS (aiosmtpd swaps in the SSL app transport) and implicit TLS alike
    (aiosmtpd's own session.ssl is only set after STARTTLS)."""
    sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
    if sslobj is None:
        return False, None, False
    return True, getattr(sslobj, SNI_ATTR, None), bool(sslobj.getpeercert())


def make_tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.sni_callback = sni_callback
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=args.client_ca)
    return ctx


async def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    cls = PipeliningHandler if args.pipelining else Handler
    handler = cls(args.dir, args.refuse)
    loop = asyncio.get_running_loop()
    ctx = make_tls_context(args) if args.cert else None
    starttls_ctx = ctx if args.starttls else None
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="capture.test", loop=loop,
                     tls_context=starttls_ctx,
                     require_starttls=bool(args.require_starttls)),
        "127.0.0.1",
        0,
        ssl=ctx if args.implicit else None,
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
    ap.add_argument("--cert", default=None)
    ap.add_argument("--key", default=None)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--starttls", action="store_true")
    mode.add_argument("--implicit", action="store_true")
    ap.add_argument("--require-starttls", action="store_true")
    ap.add_argument("--client-ca", default=None)
    args = ap.parse_args()
    tls = args.starttls or args.implicit
    if tls and not (args.cert and args.key):
        ap.error("--starttls/--implicit need --cert and --key")
    if not tls and (args.cert or args.key or args.client_ca):
        ap.error("--cert/--key/--client-ca need --starttls or --implicit")
    if args.require_starttls and not args.starttls:
        ap.error("--require-starttls needs --starttls")
    if args.client_ca:
        # aiosmtpd warns (on stderr) about any verify_mode other than CERT_NONE/OPTIONAL.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
