#!/usr/bin/python3
"""A capturing SMTP server built on aiosmtpd (an independent SMTP server library).

Usage:
    /usr/bin/python3 capture.py --port-file PORTFILE --dir DIR [--host ADDR]
        [--refuse SUBSTR] [--pipelining] [--no-8bitmime]
        [--cert CERT --key KEY (--starttls [--require-starttls] | --implicit)
         [--client-ca CAFILE]]
        [--auth USER:PASSWORD ...] [--oauth USER:TOKEN ...]
        [--auth-mechs LIST] [--auth-plaintext] [--auth-fail-mech MECH ...]
        [--auth-required] [--scram-iterations N] [--scram-fault KIND]

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
              auth_user: the user name the session authenticated as (AUTH), or null;
              auth_mech: the mechanism it authenticated with, or null.
The .eml is written first and the .json last (both via rename), so a reader that polls
for N.json always finds a complete message.

--refuse SUBSTR   RCPT of any address containing SUBSTR is answered
                  "550 5.1.1 <addr>: Recipient address rejected: User unknown".
--pipelining      advertise PIPELINING in the EHLO reply (aiosmtpd reads commands
                  strictly in order, so pipelined clients work either way).
--no-8bitmime     leave 8BITMIME out of the EHLO reply, and SMTPUTF8 with it (RFC 6531
                  section 3.1: a server offering SMTPUTF8 must offer 8BITMIME too): a
                  server that takes only 7-bit messages and ASCII addresses. Only the
                  reply changes (aiosmtpd itself would still accept BODY=8BITMIME and
                  store 8-bit bytes as they come, which shows a client that ignores it).

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
--oauth USER:TOKEN  accept this OAuth 2.0 bearer token for this user (split at the
                  first ":"; repeatable) with OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's),
                  offered by default when --oauth is given (see "Bearer tokens" below).
--auth-mechs LIST  offer only these mechanisms (comma or space separated, from PLAIN,
                  LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256 (need --auth), OAUTHBEARER,
                  XOAUTH2 (need --oauth)); the EHLO line lists them sorted. Default: PLAIN
                  and LOGIN with --auth, OAUTHBEARER and XOAUTH2 with --oauth.
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
--scram-iterations N  the iteration count of the SCRAM server-first message (default 4096).
--scram-fault KIND  make every SCRAM exchange go wrong on purpose, after checking the
                  client's proof as usual: "signature" sends a server-final message
                  whose v= is wrong (one bit flipped); "no-final" answers the client-final
                  message with 235 at once, without a server-final message; "nonce" sends
                  a server-first nonce that does not start with the client's; "error"
                  sends the server-final message "e=invalid-proof" (RFC 5802's server
                  error) instead of v=.
Without --auth or --oauth no AUTH is offered and AUTH is answered
"502 5.5.1 AUTH not available (capture.py without --auth)".

SCRAM (RFC 5802, RFC 7677), server side, for the users of --auth: SCRAM-SHA-1 and
SCRAM-SHA-256 without channel binding (a client-first message with "p=" gets 535; "y" and
"n" are accepted). A fresh 18-byte server nonce and 16-byte salt per exchange; the stored
password is used as it is (no SASLprep here: give the prepared form). The user name is
the client-first message's n= with =2C and =3D decoded. Dialogue: client-first (initial
response or after an empty 334), "334 server-first", client-final (its c= must be base64
of the gs2 header, its r= the combined nonce, its proof right: else 535 5.7.8), "334
server-final" (v=ServerSignature), then the client's empty line gets 235 2.7.0.

Bearer tokens: OAUTHBEARER takes "n,a=USER,^Aauth=Bearer TOKEN^A^A" (^A = 0x01; the
user is the gs2 authzid), XOAUTH2 "user=USER^Aauth=Bearer TOKEN^A^A"; either as an
initial response or after an empty 334. A right token gets 235 2.7.0; a wrong one (or
unknown user) gets the mechanism's JSON error in a 334: OAUTHBEARER
{"status":"invalid_token","scope":"https://mail.capture.test/","openid-configuration":
"https://capture.test/.well-known/openid-configuration"}, XOAUTH2 {"status":"401",
"schemes":"bearer","scope":"https://mail.capture.test/"}; the client's answer to it
(OAUTHBEARER: ^A, XOAUTH2: an empty line) then gets 535 5.7.8 Authentication
credentials invalid.

AUTH log: DIR/auth.log gets one JSON line per AUTH exchange: of PLAIN, LOGIN and
CRAM-MD5 those whose credentials were checked, of the others every one:
{"mech", "user", "outcome", ...}: outcome "ok", "refused" (wrong credentials),
"aborted" (the client sent "*" or bad base64 instead of the next response; "at" says
after which server message: "server-first", "server-final", "error" or "challenge"),
"malformed" (a message that cannot be parsed; "why"). SCRAM entries also have
"iterations"; bearer entries "initial" (true: the token came in the AUTH line) and, after
a JSON error, "ack" (the client's answer to it, as a Python bytes repr).

A failed handshake drops that connection without a TLS alert (asyncio closes the socket
at once): the client sees EOF ("unexpected eof while reading", "Connection unexpectedly
closed"); with TLS 1.3 and --client-ca only on its first read, its own side of the
handshake having completed. Nothing is stored; a failed STARTTLS handshake also prints
aiosmtpd's "SMTP session exception" traceback (TLSSetupException) on stderr.
"""

import argparse
import asyncio
import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import logging
import signal
import ssl
import warnings

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, syntax

PASSWORD_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")
BEARER_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")
MECHANISMS = PASSWORD_MECHANISMS + BEARER_MECHANISMS
SCRAM_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}
OAUTH_SCOPE = "https://mail.capture.test/"

# What a successful AUTH leaves in session.auth_data.
Authed = collections.namedtuple("Authed", "login mechanism")


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.rename(tmp, path)


class Handler:
    def __init__(self, directory, refuse, pipelining=False, no_8bitmime=False):
        self.directory = directory
        self.refuse = refuse
        self.pipelining = pipelining
        self.no_8bitmime = no_8bitmime
        self.count = 0

    # aiosmtpd 1.4 calls a 5-argument handle_EHLO with the reply lines built so far and
    # sends whatever it returns. With this hook aiosmtpd no longer records the client's
    # host name itself, so do that here (otherwise MAIL gets "503 send HELO first").
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # aiosmtpd prints "250-AUTH " even when every mechanism is excluded.
        responses = [r for r in responses if r != "250-AUTH "]
        if self.no_8bitmime:
            # Never the last line ("250 HELP"), so the reply stays well formed.
            responses = [r for r in responses if r[4:].upper() not in ("8BITMIME", "SMTPUTF8")]
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
        auth_user = auth_mech = None
        if session.authenticated and isinstance(session.auth_data, Authed):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
            auth_mech = session.auth_data.mechanism
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "tls": tls,
            "sni": sni,
            "client_cert": client_cert,
            "auth_user": auth_user,
            "auth_mech": auth_mech,
        }
        write_atomic(base + ".json", json.dumps(meta, ensure_ascii=True).encode("ascii"))
        return "250 Message accepted for delivery"


class Authenticator:
    """aiosmtpd 1.4 `authenticator=` callable: (server, session, envelope, mechanism,
    auth_data) -> AuthResult. auth_data is a LoginPassword (bytes) for PLAIN and LOGIN;
    for CRAM-MD5 (AuthSMTP.auth_CRAM__MD5 below) a CramMD5 tuple."""

    def __init__(self, users, fail_mechs, auth_log):
        self.users = users            # {bytes user: bytes password}
        self.fail_mechs = fail_mechs  # set of mechanism names that always fail
        self.auth_log = auth_log      # AuthLog

    def __call__(self, server, session, envelope, mechanism, auth_data):
        result = self.check(mechanism, auth_data)
        self.auth_log.write(mechanism, auth_data.login,
                            "ok" if result.success else "refused")
        return result

    def check(self, mechanism, auth_data):
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
        return AuthResult(success=True, auth_data=Authed(auth_data.login, mechanism))


class AuthLog:
    """DIR/auth.log: one JSON object per line, appended and flushed per AUTH exchange."""

    def __init__(self, path):
        self.path = path

    def write(self, mech, user, outcome, **extra):
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        entry = dict(mech=mech, user=user, outcome=outcome, **extra)
        with open(self.path, "a", encoding="ascii") as fh:
            fh.write(json.dumps(entry, ensure_ascii=True) + "\n")


def b64(data):
    return base64.b64encode(data).decode("ascii")


def saslname_decode(name):
    """RFC 5802 saslname: "=2C" is ",", "=3D" is "="; None if another "=" appears."""
    out = name.replace(b"=2C", b",").replace(b"=3D", b"=")
    if out.count(b"=") != name.count(b"=3D"):
        return None
    return out


def scram_keys(hname, password, salt, iterations):
    """(StoredKey, ServerKey, ClientKey) of RFC 5802 for a password (bytes)."""
    salted = hashlib.pbkdf2_hmac(hname, password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hname).digest()
    server_key = hmac.new(salted, b"Server Key", hname).digest()
    return hashlib.new(hname, client_key).digest(), server_key, client_key


class CramMD5(tuple):
    """(login, challenge, digest) of a CRAM-MD5 exchange."""

    def __new__(cls, login, challenge, digest):
        return tuple.__new__(cls, (login, challenge, digest))

    login = property(lambda self: self[0])
    challenge = property(lambda self: self[1])
    digest = property(lambda self: self[2])


class AuthSMTP(SMTP):
    """aiosmtpd's SMTP with the mechanisms CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256,
    OAUTHBEARER and XOAUTH2 (each offered only when asked for: the server excludes it
    otherwise), and AUTH answered 502 when neither --auth nor --oauth is given."""

    def __init__(self, *args, auth_enabled=False, users=None, tokens=None,
                 scram_iterations=4096, scram_fault=None, auth_log=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._auth_enabled = auth_enabled
        self._users = users or {}           # {bytes user: bytes password}
        self._tokens = tokens or {}         # {bytes user: bytes token}
        self._scram_iterations = scram_iterations
        self._scram_fault = scram_fault     # None, "signature", "no-final", "nonce", "error"
        self._auth_log = auth_log

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

    async def _first_response(self, args):
        """The client's first message: the initial response of the AUTH line ("=" is an
        empty one) or its answer to an empty 334. MISSING if it aborted (answered)."""
        if len(args) > 1:
            if args[1] == "=":
                return b""
            try:
                return base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Can't decode base64")
                return MISSING
        return await self.challenge_auth("")

    async def _malformed(self, mech, why):
        self._auth_log.write(mech, None, "malformed", why=why)
        await self.push("501 5.5.2 Malformed %s message: %s" % (mech, why))
        return AuthResult(success=False, handled=True)

    async def auth_SCRAM__SHA__1(self, _, args):
        return await self._scram("SCRAM-SHA-1", args)

    async def auth_SCRAM__SHA__256(self, _, args):
        return await self._scram("SCRAM-SHA-256", args)

    async def _scram(self, mech, args):
        hname = SCRAM_HASHES[mech]
        first = await self._first_response(args)
        if first is MISSING:
            self._auth_log.write(mech, None, "aborted", at="challenge")
            return AuthResult(success=False, handled=True)
        # gs2-header: cbind-flag "," [authzid] ","; then n=USER,r=NONCE[,ext...]
        parts = first.split(b",", 2)
        if len(parts) != 3 or (parts[0] not in (b"n", b"y")
                                and not parts[0].startswith(b"p=")):
            return await self._malformed(mech, "bad gs2 header")
        gs2_header = parts[0] + b"," + parts[1] + b","
        bare = parts[2]
        fields = bare.split(b",")
        if (len(fields) < 2 or not fields[0].startswith(b"n=")
                or not fields[1].startswith(b"r=") or len(fields[1]) < 3):
            return await self._malformed(mech, "bad client-first-message-bare")
        user = saslname_decode(fields[0][2:])
        if user is None:
            return await self._malformed(mech, "bad saslname")
        if parts[0].startswith(b"p="):
            self._auth_log.write(mech, user, "refused", why="channel binding")
            await self.push("535 5.7.8 Channel binding not supported")
            return AuthResult(success=False, handled=True)
        cnonce = fields[1][2:]
        snonce = cnonce + base64.b64encode(os.urandom(18))
        if self._scram_fault == "nonce":
            snonce = base64.b64encode(os.urandom(24))
        salt = os.urandom(16)
        iterations = self._scram_iterations
        server_first = b"r=%s,s=%s,i=%d" % (snonce, base64.b64encode(salt), iterations)
        final = await self.challenge_auth(server_first)
        if final is MISSING:
            self._auth_log.write(mech, user, "aborted", at="server-first",
                                 iterations=iterations)
            return AuthResult(success=False, handled=True)
        head, sep, proof = final.rpartition(b",p=")
        ffields = head.split(b",")
        if (not sep or len(ffields) < 2 or not ffields[0].startswith(b"c=")
                or not ffields[1].startswith(b"r=")):
            return await self._malformed(mech, "bad client-final-message")
        if ffields[0][2:] != base64.b64encode(gs2_header):
            return await self._malformed(mech, "c= is not the gs2 header")
        if ffields[1][2:] != snonce:
            return await self._malformed(mech, "r= is not the nonce")
        auth_message = bare + b"," + server_first + b"," + head
        password = self._users.get(user)
        if password is None:
            password = os.urandom(16)  # an unknown user fails like a wrong password
        stored_key, server_key, _ = scram_keys(hname, password, salt, iterations)
        try:
            proof = base64.b64decode(proof, validate=True)
        except binascii.Error:
            proof = b""
        client_sig = hmac.new(stored_key, auth_message, hname).digest()
        ok = len(proof) == len(client_sig) and hmac.compare_digest(
            hashlib.new(hname, bytes(a ^ b for a, b in zip(proof, client_sig))).digest(),
            stored_key)
        if not ok:
            self._auth_log.write(mech, user, "refused", iterations=iterations)
            await self.push("535 5.7.8 Authentication credentials invalid")
            return AuthResult(success=False, handled=True)
        if self._scram_fault == "no-final":
            self._auth_log.write(mech, user, "ok", iterations=iterations, fault="no-final")
            return AuthResult(success=True, auth_data=Authed(user, mech))
        signature = bytearray(hmac.new(server_key, auth_message, hname).digest())
        if self._scram_fault == "signature":
            signature[0] ^= 0x01
        server_final = b"v=" + base64.b64encode(bytes(signature))
        if self._scram_fault == "error":
            server_final = b"e=invalid-proof"
        ack = await self.challenge_auth(server_final)
        if ack is MISSING:
            self._auth_log.write(mech, user, "aborted", at="server-final",
                                 iterations=iterations)
            return AuthResult(success=False, handled=True)
        self._auth_log.write(mech, user, "ok", iterations=iterations)
        return AuthResult(success=True, auth_data=Authed(user, mech))

    async def auth_OAUTHBEARER(self, _, args):
        return await self._bearer("OAUTHBEARER", args)

    async def auth_XOAUTH2(self, _, args):
        return await self._bearer("XOAUTH2", args)

    async def _bearer(self, mech, args):
        initial = len(args) > 1
        message = await self._first_response(args)
        if message is MISSING:
            self._auth_log.write(mech, None, "aborted", at="challenge")
            return AuthResult(success=False, handled=True)
        parts = message.split(b"\x01")
        user = None
        if mech == "OAUTHBEARER":
            # gs2-header "n,a=USER," then key=value pairs, each ended by ^A, then ^A.
            gs2 = parts[0].split(b",")
            if len(gs2) != 3 or gs2[0] != b"n" or gs2[2] != b"":
                return await self._malformed(mech, "bad gs2 header")
            if gs2[1].startswith(b"a="):
                user = saslname_decode(gs2[1][2:])
            pairs = parts[1:]
        else:
            pairs = parts
        if len(pairs) < 3 or pairs[-2:] != [b"", b""]:
            return await self._malformed(mech, "not ended by ^A^A")
        kv = {}
        for pair in pairs[:-2]:
            k, eq, v = pair.partition(b"=")
            if not eq:
                return await self._malformed(mech, "bad key=value")
            kv[k] = v
        if mech == "XOAUTH2":
            user = kv.get(b"user")
        auth = kv.get(b"auth", b"")
        if not auth[:7].lower() == b"bearer ":
            return await self._malformed(mech, "no auth=Bearer")
        token = auth[7:]
        if user is not None and user in self._tokens and hmac.compare_digest(
                self._tokens[user], token):
            self._auth_log.write(mech, user, "ok", initial=initial)
            return AuthResult(success=True, auth_data=Authed(user, mech))
        if mech == "OAUTHBEARER":
            error = {"status": "invalid_token", "scope": OAUTH_SCOPE,
                     "openid-configuration":
                     "https://capture.test/.well-known/openid-configuration"}
        else:
            error = {"status": "401", "schemes": "bearer", "scope": OAUTH_SCOPE}
        ack = await self.challenge_auth(json.dumps(error))
        if ack is MISSING:
            self._auth_log.write(mech, user, "aborted", at="error", initial=initial)
            return AuthResult(success=False, handled=True)
        self._auth_log.write(mech, user, "refused", initial=initial, ack=repr(ack))
        await self.push("535 5.7.8 Authentication credentials invalid")
        return AuthResult(success=False, handled=True)


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
    handler = Handler(args.dir, args.refuse, pipelining=args.pipelining,
                      no_8bitmime=args.no_8bitmime)
    loop = asyncio.get_running_loop()
    ctx = make_tls_context(args) if args.cert else None
    starttls_ctx = ctx if args.starttls else None
    auth_log = AuthLog(os.path.join(args.dir, "auth.log"))
    users = {}
    for spec in args.auth:
        user, _, password = spec.partition(":")
        users[user.encode("utf-8")] = password.encode("utf-8")
    tokens = {}
    for spec in args.oauth:
        user, _, token = spec.partition(":")
        tokens[user.encode("utf-8")] = token.encode("utf-8")
    if args.auth or args.oauth:
        if args.auth_mechs:
            offered = set(args.auth_mechs)
        else:
            offered = ({"PLAIN", "LOGIN"} if args.auth else set()) | (
                set(BEARER_MECHANISMS) if args.oauth else set())
        auth = dict(
            authenticator=Authenticator(users, set(args.auth_fail_mech), auth_log),
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
                         auth_enabled=bool(args.auth or args.oauth), users=users,
                         tokens=tokens, scram_iterations=args.scram_iterations,
                         scram_fault=args.scram_fault, auth_log=auth_log, **auth),
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
    ap.add_argument("--no-8bitmime", action="store_true")
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
    ap.add_argument("--oauth", action="append", default=[], metavar="USER:TOKEN")
    ap.add_argument("--scram-iterations", type=int, default=4096)
    ap.add_argument("--scram-fault", default=None, choices=("signature", "no-final", "nonce", "error"))
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
    for spec in args.oauth:
        if ":" not in spec:
            ap.error("--oauth needs USER:TOKEN, got %r" % spec)
    if not (args.auth or args.oauth) and (args.auth_mechs or args.auth_plaintext
                                          or args.auth_fail_mech or args.auth_required):
        ap.error("--auth-mechs/--auth-plaintext/--auth-fail-mech/--auth-required need "
                 "--auth or --oauth")
    for m in args.auth_mechs or ():
        if m in PASSWORD_MECHANISMS and not args.auth:
            ap.error("%s needs --auth" % m)
        if m in BEARER_MECHANISMS and not args.oauth:
            ap.error("%s needs --oauth" % m)
    if [m for m in args.auth_fail_mech if m not in ("PLAIN", "LOGIN", "CRAM-MD5")]:
        ap.error("--auth-fail-mech takes PLAIN, LOGIN or CRAM-MD5")
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
