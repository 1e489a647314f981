#!/usr/bin/python3
"""A capturing SMTP server built on aiosmtpd (an independent SMTP server library).

Usage:
    /usr/bin/python3 capture.py --port-file PORTFILE --dir DIR [--host ADDR]
        [--refuse SUBSTR] [--pipelining]
        [--cert CERT --key KEY (--starttls [--require-starttls] | --implicit)
         [--client-ca CAFILE]]
        [--auth USER:PASSWORD ... [--auth-mechs LIST] [--auth-plaintext]
         [--auth-fail-mech MECH ...] [--auth-required]]

Listens on ADDR (default 127.0.0.1; inside a test network namespace its address) with an
OS-chosen port, writes the port number to PORTFILE (atomically), and runs until
SIGTERM/SIGINT. SMTPUTF8 is enabled.

Every accepted message N (1, 2, ... across all connections) is stored as:
  DIR/N.eml   the exact message bytes as aiosmtpd received them (dot-stuffing undone)
  DIR/N.json  {"mail_from", "rcpt_tos", "mail_options", "rcpt_options",
               "tls", "sni", "client_cert", "auth_user"}
              tls: true if the message arrived over TLS (STARTTLS or implicit);
              sni: the server name the client sent in its TLS ClientHello (SNI), or
              null (no TLS, or no SNI sent: clients send none for IP addresses);
              client_cert: true if the client presented a certificate that verified
              against --client-ca;
              auth_user: the user name the session authenticated as (AUTH), or null.
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
AUTH:
--auth USER:PASSWORD  accept exactly this user name and password (split at the first
                  ":"; repeat for several users). Offered mechanisms: PLAIN and LOGIN
                  (aiosmtpd's own; its LOGIN challenges are "User Name\0" and
                  "Password\0"); CRAM-MD5 too when named in --auth-mechs. Success:
                  "235 2.7.0 Authentication successful"; wrong credentials:
                  "535 5.7.8 Authentication credentials invalid"; unknown mechanism:
                  "504 5.5.4 Unrecognized authentication type".
--auth-mechs LIST  offer only these mechanisms (comma or space separated, from PLAIN,
                  LOGIN, CRAM-MD5); the EHLO line lists them sorted.
--auth-plaintext  with --starttls: offer (and accept) AUTH before TLS too. By default a
                  --starttls server offers AUTH only after STARTTLS and answers AUTH
                  before it with "538 5.7.11 Encryption required for requested
                  authentication mechanism". Without TLS options, and with --implicit,
                  AUTH is always offered.
--auth-fail-mech MECH  that mechanism always ends in 535 (the whole exchange runs, the
                  credentials are ignored); repeatable. For testing a client's fallback
                  to its next mechanism.
--auth-required   MAIL (and other transaction commands) before a successful AUTH get
                  "530 5.7.0 Authentication required".
Without --auth no AUTH is offered and AUTH is answered
"502 5.5.1 AUTH not available (capture.py without --auth)".

A failed handshake drops that connection without a TLS alert (asyncio closes the socket
at once): the client sees EOF ("unexpected eof while reading", "Connection unexpectedly
closed"); with TLS 1.3 and --client-ca only on its first read, its own side of the
handshake having completed. Nothing is stored; a failed STARTTLS handshake also prints
aiosmtpd's "SMTP session exception" traceback (TLSSetupException) on stderr.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import logging
import signal
import ssl
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax

MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.rename(tmp, path)


class Handler:
    def __init__(self, directory, refuse, pipelining=False):
        self.directory = directory
        self.refuse = refuse
        self.pipelining = pipelining
        self.count = 0

    # aiosmtpd 1.4 calls a 5-argument handle_EHLO with the reply lines built so far and
    # sends whatever it returns. With this hook aiosmtpd no longer records the client's
    # host name itself, so do that here (otherwise MAIL gets "503 send HELO first").
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # aiosmtpd prints "250-AUTH " even when every mechanism is excluded.
        responses = [r for r in responses if r != "250-AUTH "]
        if self.pipelining:
            responses = responses[:-1] + ["250-PIPELINING"] + responses[-1:]
        return responses

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
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "tls": tls,
            "sni": sni,
            "client_cert": client_cert,
            "auth_user": auth_user,
        }
        write_atomic(base + ".json", json.dumps(meta, ensure_ascii=True).encode("ascii"))
        return "250 Message accepted for delivery"


class Authenticator:
    """aiosmtpd 1.4 `authenticator=` callable: (server, session, envelope, mechanism,
    auth_data) -> AuthResult. auth_data is a LoginPassword (bytes) for PLAIN and LOGIN;
    for CRAM-MD5 (AuthSMTP.auth_CRAM__MD5 below) a CramMD5 tuple."""

    def __init__(self, users, fail_mechs):
        self.users = users            # {bytes user: bytes password}
        self.fail_mechs = fail_mechs  # set of mechanism names that always fail

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if mechanism in self.fail_mechs:
            return AuthResult(success=False, handled=False)
        if isinstance(auth_data, CramMD5):
            password = self.users.get(auth_data.login)
            ok = password is not None and hmac.compare_digest(
                hmac.new(password, auth_data.challenge, hashlib.md5).hexdigest().encode(),
                auth_data.digest.lower())
        else:
            ok = self.users.get(auth_data.login) == auth_data.password
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True,
                          auth_data=LoginPassword(auth_data.login, b""))


class CramMD5(tuple):
    """(login, challenge, digest) of a CRAM-MD5 exchange."""

    def __new__(cls, login, challenge, digest):
        return tuple.__new__(cls, (login, challenge, digest))

    login = property(lambda self: self[0])
    challenge = property(lambda self: self[1])
    digest = property(lambda self: self[2])


class AuthSMTP(SMTP):
    """aiosmtpd's SMTP with a CRAM-MD5 mechanism (offered only when asked for: the
    server excludes it otherwise), and AUTH answered 502 when --auth is not given."""

    def __init__(self, *args, auth_enabled=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._auth_enabled = auth_enabled

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg):
        if not self._auth_enabled:
            return await self.push(
                "502 5.5.1 AUTH not available (capture.py without --auth)")
        return await super().smtp_AUTH(arg)

    async def auth_CRAM__MD5(self, _, args):
        if len(args) > 1:
            await self.push("501 5.5.4 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = ("<%d.%s@capture.test>" % (os.getpid(), os.urandom(6).hex())).encode()
        response = await self.challenge_auth(challenge)
        if not isinstance(response, bytes):
            return AuthResult(success=False)  # aborted with "*": already answered
        login, _, digest = response.rpartition(b" ")
        if not login or len(digest) != 32:
            await self.push("501 5.5.2 Can't parse CRAM-MD5 response")
            return AuthResult(success=False, handled=True)
        return self._authenticate("CRAM-MD5", CramMD5(login, challenge, digest))


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
    handler = Handler(args.dir, args.refuse, pipelining=args.pipelining)
    loop = asyncio.get_running_loop()
    ctx = make_tls_context(args) if args.cert else None
    starttls_ctx = ctx if args.starttls else None
    if args.auth:
        users = {}
        for spec in args.auth:
            user, _, password = spec.partition(":")
            users[user.encode("utf-8")] = password.encode("utf-8")
        offered = set(args.auth_mechs) if args.auth_mechs else {"PLAIN", "LOGIN"}
        auth = dict(
            authenticator=Authenticator(users, set(args.auth_fail_mech)),
            # aiosmtpd only counts STARTTLS as TLS here: an implicit-TLS connection
            # would never be offered AUTH with auth_require_tls=True.
            auth_require_tls=bool(args.starttls and not args.auth_plaintext),
            auth_exclude_mechanism=[m for m in MECHANISMS if m not in offered],
            auth_required=bool(args.auth_required),
        )
    else:
        # No AUTH: every mechanism excluded (handle_EHLO drops the empty AUTH line) and
        # AUTH answered 502 by AuthSMTP.smtp_AUTH.
        auth = dict(auth_exclude_mechanism=list(MECHANISMS), auth_require_tls=False)
    server = await loop.create_server(
        lambda: AuthSMTP(handler, enable_SMTPUTF8=True, hostname="capture.test", loop=loop,
                         tls_context=starttls_ctx,
                         require_starttls=bool(args.require_starttls),
                         auth_enabled=bool(args.auth), **auth),
        args.host,
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


def mech_name(s):
    m = s.strip().upper()
    if m not in MECHANISMS:
        raise argparse.ArgumentTypeError(
            "unknown mechanism %r (known: %s)" % (s, ", ".join(MECHANISMS)))
    return m


def mech_list(s):
    mechs = [mech_name(m) for m in s.replace(",", " ").split()]
    if not mechs:
        raise argparse.ArgumentTypeError("empty mechanism list")
    return mechs


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
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD")
    ap.add_argument("--auth-mechs", default=None, type=mech_list)
    ap.add_argument("--auth-plaintext", action="store_true")
    ap.add_argument("--auth-fail-mech", action="append", default=[], type=mech_name)
    ap.add_argument("--auth-required", action="store_true")
    args = ap.parse_args()
    tls = args.starttls or args.implicit
    if tls and not (args.cert and args.key):
        ap.error("--starttls/--implicit need --cert and --key")
    if not tls and (args.cert or args.key or args.client_ca):
        ap.error("--cert/--key/--client-ca need --starttls or --implicit")
    if args.require_starttls and not args.starttls:
        ap.error("--require-starttls needs --starttls")
    for spec in args.auth:
        if ":" not in spec:
            ap.error("--auth needs USER:PASSWORD, got %r" % spec)
    if not args.auth and (args.auth_mechs or args.auth_plaintext or args.auth_fail_mech
                          or args.auth_required):
        ap.error("--auth-mechs/--auth-plaintext/--auth-fail-mech/--auth-required need --auth")
    if args.auth_plaintext and not args.starttls:
        ap.error("--auth-plaintext needs --starttls")
    if args.client_ca or args.auth_required:
        # aiosmtpd warns (on stderr) about any verify_mode other than CERT_NONE/OPTIONAL,
        # and about auth_required without auth_require_tls.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
