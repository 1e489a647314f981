#!/usr/bin/python3
"""A scriptable, logging, possibly hostile SMTP server for the tclsmtp tests.

Usage:
    /usr/bin/python3 scripted.py --script SCRIPT.json --port-file PORTFILE --log LOGFILE

Binds 127.0.0.1 on an OS-chosen port, writes the port number to PORTFILE (atomically:
temp name, then rename), and serves any number of connections, each in its own thread,
all with the same script, until killed (SIGTERM/SIGINT exit cleanly with status 0).

The script is a JSON object mapping events to behaviours:
  "greeting"     what the server does when a client connects
  "EHLO", "MAIL", ... (upper case)  the reply to that command verb
  "DOT"          the reply after the end-of-data line
  "BODY"         what the server does in the middle of a data section, right after its
                 first line has arrived (no default: without this key nothing happens
                 there). Some values mean something else here; see "In a data section"
  "AUTHDATA"     the reply to a line sent right after a 334 reply (a SASL response)
  "*"            fallback for verbs without an entry or a default

A behaviour is one value used every time, or a list: the n-th occurrence of the event on
a connection (0-based) uses element n, and the last element repeats after the end. For
"greeting" (once per connection) a list is indexed by connection instead: connection N
(1-based, per server process) gets element N-1.

A value is a string. Plain text is the reply: lines separated by "\\n", each sent
followed by CRLF, all in one write. Special prefixes:
  @close                 close the connection without replying (every server-side close
                         sends FIN first, then reads and logs the client's input for up
                         to 0.5 s or until the client closes: unread input would
                         otherwise make the kernel send a RST)
  @reset                 close with a TCP RST (SO_LINGER on, timeout 0)
  @hang                  never reply; keep reading and logging input until the client closes
  @delay:SECONDS:REST    sleep SECONDS (float), then behave as REST
  @raw:TEXT              send TEXT exactly, Python escapes (\\r \\n \\x00 ...) interpreted,
                         no CRLF added
  @trickle:SECONDS:REST  send REST's bytes one byte at a time, SECONDS between bytes
  @trickle-wire:SECONDS:REST
                         behave as REST, but send every byte that goes on the wire SECONDS
                         after the previous one: under TLS the bytes of the encrypted
                         records, so one record takes many seconds to arrive; after 4 s
                         of that the server gives up and closes the connection
  @big:N:PREFIX          send PREFIX then N 'x' bytes and no line ending, then as @hang
  @endless[:SECONDS]     send "250-more" lines forever, one every SECONDS (default 0.001;
                         0: as fast as the client takes them, in batches) until the client
                         closes
  @silent                send nothing and go on with the dialogue (e.g. "DOT" after a
                         "BODY" reply: the server has answered already)
  @then-close:REST       behave as REST, then close the connection
  @stay:REST             behave as REST and do not close afterwards (useful for QUIT,
                         which otherwise always closes the connection after its reply)
  @starttls:CERTFILE:KEYFILE[:INJECT]
                         send "220 2.0.0 Ready to start TLS\r\n" followed, in the same
                         write, by INJECT (Python escapes interpreted, no CRLF added;
                         may contain ":") if given, then run a server-side TLS handshake
                         with that certificate (PEM, may hold a chain) and key, and
                         continue the dialogue over TLS (occurrence counts go on: a list
                         for "EHLO" can give a different reply after TLS). Client bytes
                         already buffered after the STARTTLS line, or sent in plaintext
                         after the reply (e.g. a buggy client answering INJECT), are fed
                         to the handshake, which then fails (logged, see below). Nothing
                         offers TLS by default: the default EHLO does not announce
                         STARTTLS and STARTTLS gets the "*" reply; script e.g. "EHLO":
                         "250-x\\n250 STARTTLS" and "STARTTLS": "@starttls:C:K".
  @handshake-fault:REST  send "220 2.0.0 Ready to start TLS", read the client's first TLS
                         record (its ClientHello; logged as "tls-hello" with its length n),
                         then, instead of a TLS handshake, behave as REST in plaintext
                         (e.g. @close, @reset, @hang, @raw:..., @big:..., a reply)
  @handshake-trickle:SECONDS:CERTFILE:KEYFILE
                         as @starttls (no INJECT), but every byte the server sends during
                         the handshake goes SECONDS after the previous one; after 4 s of
                         that the server gives up and closes the connection

In a data section ("BODY"), after the first line of data has arrived:
  @close                 send FIN, then read and discard the client's input until it closes
  @reset                 close with a TCP RST at once
  @hang                  stop reading (the client's writes fill the buffers and block) for
                         up to 60 s, then close
  @slowread:SECONDS      read the rest one byte every SECONDS until the client closes
  anything else          sent (as a reply, @raw, @big, @endless, @trickle...) by a second
                         thread while the data section goes on being read; @big and
                         @endless then do not read input themselves. The data section
                         ends as usual and "DOT" is acted after it: script "DOT": "@silent"
                         when the BODY reply is the only answer the server gives.

Script keys that are not events:
  "implicit_tls": "CERTFILE:KEYFILE"   every connection is TLS from the first byte: the
                         handshake runs before the greeting (a failed handshake is logged
                         and closes the connection without a greeting).
  "rcvbuf": "BYTES"      the receive buffer of every connection (SO_RCVBUF, which also stops
                         the kernel from growing it): with a small one and a "BODY" that
                         stops reading, a large message cannot all be buffered, so the
                         client is still writing when the server acts.

After a DATA reply starting with "3", the server reads the message data up to the line
"." (".\\r\\n"; a bare ".\\n" is also accepted and noted as "term": "lf") and answers DOT.

Log (LOGFILE, one JSON object per line, appended and flushed after every entry):
  {"conn": N, "ev": "open"}
  {"conn": N, "ev": "C", "line": L, "crlf": true|false}      (L = raw bytes as latin-1;
                                   "eof": true marks an unterminated last fragment;
                                   "queued": true marks a line that had already arrived
                                   with earlier input when the server came to read it,
                                   i.e. the client sent it without waiting for the
                                   reply to the line before: pipelining)
  {"conn": N, "ev": "S", "line": L}        one per reply line sent (@raw: one entry holding
                                   the raw text as latin-1, with "raw": true; @big: "big": N
                                   and a shortened line; @endless: only the first line,
                                   with "endless": true; @starttls: the 220 line, then
                                   INJECT as one raw entry with "injected": true)
  {"conn": N, "ev": "data", "n": K, "file": F, "term": "crlf"|"lf"}   after a data section;
                                   F = LOGFILE.data.N.K holds the exact bytes between the
                                   DATA reply and the terminating "." line (dot-stuffing kept)
  {"conn": N, "ev": "data-partial", "n": K, "file": F}   the client went away mid-data
  {"conn": N, "ev": "close", "why": "client"|"server"|"error: ..."}
  {"conn": N, "ev": "tls", "sni": NAME|null, "version": "TLSv1.3", "cipher": C}
                                   after a successful handshake (@starttls, implicit_tls);
                                   sni is the server name the client sent (null: none).
                                   C/S lines afterwards are the decrypted dialogue.
  {"conn": N, "ev": "tls-closed"}          the client ended its TLS session cleanly: its
                                   close_notify alert arrived (a client that just closes
                                   the socket logs none)
  {"conn": N, "ev": "tls-hello", "n": K}    @handshake-fault read the client's first TLS
                                   record (K bytes)
  {"conn": N, "ev": "tls-failed", "error": E [, "plaintext": P]}
                                   the handshake failed (E: OpenSSL's reason, or "EOF
                                   during handshake"); then the server closes (why
                                   "server"). When the client's first bytes were not a TLS
                                   handshake record, P holds the bytes received (latin-1,
                                   at most 1024) and their complete lines are also logged
                                   as C entries with "plaintext_in_tls": true; input that
                                   arrives while closing is logged as usual then (and
                                   discarded unlogged after a real TLS handshake failure).
"""

import argparse
import contextlib
import json
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

DEFAULTS = {
    "greeting": "220 fake.test ESMTP ready",
    "EHLO": "250-fake.test greets CLIENT\n250-SIZE 10240000\n250 8BITMIME",
    "HELO": "250 fake.test",
    "MAIL": "250 2.1.0 OK",
    "RCPT": "250 2.1.5 OK",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    "DOT": "250 2.0.0 Ok: queued as 12345",
    "RSET": "250 2.0.0 OK",
    "QUIT": "221 2.0.0 Bye",
    "NOOP": "250 OK",
    "AUTHDATA": "535 5.7.8 Authentication credentials invalid",
    "*": "500 5.5.2 command not recognized",
}


class TLSFailed(Exception):
    """A server-side TLS handshake failed (already logged)."""


def sni_callback(ssl_object, server_name, context):
    # ssl_object is the connection's ssl.SSLObject (the `owner` of the C-level object);
    # remember the name the client asked for on it. None: the client sent no SNI.
    try:
        ssl_object.tclsmtp_sni = server_name
    except Exception:  # noqa: BLE001 - never fail a handshake here
        pass
    return None


class ConnectionDone(Exception):
    """Raised to unwind a connection handler; `why` goes into the close log entry."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class Logger:
    """Appends JSON lines to the log file, one complete line per write, flushed."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.fh = open(path, "a", encoding="ascii")

    def log(self, **entry):
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        with self.lock:
            self.fh.write(line)
            self.fh.flush()


def unescape(text):
    """Interpret Python escape sequences; non-ASCII characters become their UTF-8 bytes."""
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


class Connection:
    def __init__(self, server, sock, conn_id):
        self.server = server
        self.sock = sock
        self.id = conn_id
        self.buf = bytearray()
        self.counts = {}
        self.data_sections = 0
        self.stay = False
        self.reset = False
        # TLS state: an ssl.SSLObject over two memory BIOs once TLS is on.
        self.tls = None
        self.tls_in = None
        self.tls_out = None
        self.tls_eof = False
        # @handshake-trickle, @trickle-wire: seconds between bytes sent, and when to
        # give up (see trickling()).
        self.trickle_delay = None
        self.trickle_until = 0.0

    # ---- logging -------------------------------------------------------------------
    def log(self, ev, **kw):
        self.server.logger.log(conn=self.id, ev=ev, **kw)

    # ---- input -----------------------------------------------------------------------
    def _recv_raw(self):
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return b""

    def _fill(self):
        """Read more input into self.buf (decrypted under TLS). False at EOF."""
        if self.tls is None:
            chunk = self._recv_raw()
            if not chunk:
                return False
            self.buf += chunk
            return True
        if self.tls_eof:
            return False
        chunk = self._recv_raw()
        if not chunk:
            return False
        self.tls_in.write(chunk)
        self._drain_tls()
        return True

    def _drain_tls(self):
        """Decrypt whatever TLS input is buffered into self.buf."""
        try:
            while True:
                try:
                    data = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:  # close_notify, after ours went out
                    self.tls_closed_by_client()
                    break
                if not data:  # close_notify, before ours
                    self.tls_closed_by_client()
                    break
                self.buf += data
        except ssl.SSLError as e:
            self.flush_tls()
            raise ConnectionDone("error: %s: %s" % (type(e).__name__, e))
        self.flush_tls()

    def tls_closed_by_client(self):
        """The client's close_notify arrived: no more TLS input. Logged once."""
        if not self.tls_eof:
            self.tls_eof = True
            self.log("tls-closed")

    def readline(self):
        """One raw line including its LF; raises ConnectionDone('client') at EOF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if not self._fill():
                if self.buf:
                    rest = bytes(self.buf)
                    self.buf.clear()
                    self.log("C", line=rest.decode("latin-1"), crlf=False, eof=True)
                raise ConnectionDone("client")

    def read_command(self):
        queued = b"\n" in self.buf
        raw = self.readline()
        crlf = raw.endswith(b"\r\n")
        text = raw[:-2] if crlf else raw[:-1]
        line = text.decode("latin-1")
        if queued:
            self.log("C", line=line, crlf=crlf, queued=True)
        else:
            self.log("C", line=line, crlf=crlf)
        return line

    def drain_nonblocking(self):
        """Log any complete lines that arrived, without waiting; EOF raises."""
        while True:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                break
            if not self._fill():
                raise ConnectionDone("client")
        while b"\n" in self.buf:
            self.read_command()

    # ---- output ----------------------------------------------------------------------
    def send_raw(self, data):
        try:
            if self.trickle_delay is None:
                self.sock.sendall(data)
                return
            for b in data:
                if time.monotonic() > self.trickle_until:
                    self.close_server()
                self.sock.sendall(bytes([b]))
                time.sleep(self.trickle_delay)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            raise ConnectionDone("client")

    def flush_tls(self):
        """Send whatever TLS records the SSLObject has produced."""
        if self.tls_out is not None and self.tls_out.pending:
            self.send_raw(self.tls_out.read())

    def send_all(self, data):
        if self.tls is None:
            self.send_raw(data)
            return
        try:
            self.tls.write(data)
        except ssl.SSLError as e:
            raise ConnectionDone("error: %s: %s" % (type(e).__name__, e))
        self.flush_tls()

    # ---- TLS -------------------------------------------------------------------------
    def start_tls(self, certfile, keyfile):
        """Server-side TLS handshake on this connection. Input already buffered (sent
        by the client after the STARTTLS line) goes to the handshake first. On success
        logs "tls"; on failure logs "tls-failed" and raises TLSFailed."""
        if self.tls is not None:
            raise ValueError("TLS is already on")
        ctx = self.server.tls_context(certfile, keyfile)
        self.tls_in = ssl.MemoryBIO()
        self.tls_out = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.tls_in, self.tls_out, server_side=True)
        received = bytearray(self.buf)
        self.buf.clear()
        self.tls_in.write(bytes(received))
        error = None
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                # "[SSL: WRONG_VERSION_NUMBER] wrong version number", without the
                # " (_ssl.c:NNN)" location.
                error = re.sub(r" \(_ssl\.c:\d+\)$", "", str(e))
                break
            self.flush_tls()
            chunk = self._recv_raw()
            if not chunk:
                error = "EOF during handshake"
                break
            received += chunk
            self.tls_in.write(chunk)
        try:
            self.flush_tls()  # the final flight, or the alert on failure
        except ConnectionDone:
            if error is None:
                error = "connection lost after handshake"
        if error is None:
            self.log("tls", sni=getattr(self.tls, "tclsmtp_sni", None),
                     version=self.tls.version(), cipher=(self.tls.cipher() or [None])[0])
            # With TLS 1.3 the client's first command may arrive in the same read as
            # its Finished message: decrypt it now, or it would wait for more input.
            self._drain_tls()
            return
        # Failed: back to the raw socket for the close.
        self.tls = self.tls_in = self.tls_out = None
        entry = {"error": error}
        plaintext = bool(received) and received[0] != 0x16  # 0x16: handshake record
        if plaintext:
            entry["plaintext"] = bytes(received[:1024]).decode("latin-1")
        self.log("tls-failed", **entry)
        if plaintext:
            self.buf += received
            while b"\n" in self.buf:
                raw = self.readline()
                crlf = raw.endswith(b"\r\n")
                text = raw[:-2] if crlf else raw[:-1]
                self.log("C", line=text.decode("latin-1"), crlf=crlf, plaintext_in_tls=True)
        self.linger_log = plaintext
        raise TLSFailed(error)

    def close_server(self, reset=False):
        if reset:
            self.reset = True
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise ConnectionDone("server")

    def linger(self, seconds=0.5, log_input=True):
        """Graceful server-side close: send FIN first (under TLS: close_notify, then
        FIN), then read (and log, unless log_input is false) what the client still
        sends for up to `seconds` or until it closes, so that unread input does not
        turn the close into a RST."""
        try:
            if self.tls is not None:
                try:
                    # Writes close_notify; returns (instead of raising SSLWantReadError)
                    # only when the client's close_notify has arrived too.
                    self.tls.unwrap()
                    self.tls_closed_by_client()
                except (ssl.SSLError, ValueError):
                    pass
                self.flush_tls()
            self.sock.shutdown(socket.SHUT_WR)
        except (OSError, ConnectionDone):
            pass  # the client has closed already; what it sent before is still read
        try:
            deadline = time.monotonic() + seconds
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                if not self._fill():
                    break
                if not log_input:
                    self.buf.clear()
                while b"\n" in self.buf:
                    self.read_command()
        except (OSError, ConnectionDone):
            pass

    # ---- behaviours --------------------------------------------------------------------
    def pick(self, key, client_arg=""):
        """The value for the next occurrence of event `key` on this connection."""
        script = self.server.script
        if key in script:
            source_key, value = key, script[key]
            is_default = False
        elif key in DEFAULTS:
            source_key, value = key, DEFAULTS[key]
            is_default = True
        else:
            source_key = "*"
            value = script.get("*", DEFAULTS["*"])
            is_default = "*" not in script
        n = self.counts.get(source_key, 0)
        self.counts[source_key] = n + 1
        if key == "greeting":
            # One greeting per connection: a list is indexed by connection instead.
            n = self.id - 1
        if isinstance(value, list):
            if not value:
                raise ValueError("empty behaviour list for %r" % source_key)
            value = value[min(n, len(value) - 1)]
        if not isinstance(value, str):
            raise ValueError("behaviour for %r must be a string, got %r" % (source_key, value))
        if is_default and key == "EHLO":
            value = value.replace("CLIENT", client_arg)
        return value

    def act(self, value, send=None, listen=True):
        """Carry out one behaviour. Returns the bytes sent (b"" if nothing was sent).
        Raises ConnectionDone when the connection ends. listen=False (a "BODY" reply sent
        by a second thread): @big and @endless never read input, another thread does."""
        if send is None:
            send = self.send_all
        if not value.startswith("@"):
            lines = value.split("\n")
            if len(lines) > 1 and lines[-1] == "":
                lines.pop()
            data = b"".join(l.encode("utf-8") + b"\r\n" for l in lines)
            send(data)
            for l in lines:
                self.log("S", line=l)
            return data
        if value == "@close":
            self.close_server()
        if value == "@reset":
            self.close_server(reset=True)
        if value == "@hang":
            self.hang()
        if value == "@endless" or value.startswith("@endless:"):
            interval = float(value.split(":", 1)[1]) if ":" in value else 0.001
            self.endless(interval, drain=listen)
        if value == "@silent":
            return b""
        if value.startswith("@delay:"):
            _, secs, rest = value.split(":", 2)
            time.sleep(float(secs))
            return self.act(rest, send, listen)
        if value.startswith("@raw:"):
            data = unescape(value[len("@raw:"):])
            send(data)
            self.log("S", line=data.decode("latin-1"), raw=True)
            return data
        if value.startswith("@trickle:"):
            _, secs, rest = value.split(":", 2)
            delay = float(secs)

            def trickle(data):
                for b in data:
                    self.send_all(bytes([b]))
                    time.sleep(delay)

            return self.act(rest, trickle, listen)
        if value.startswith("@trickle-wire:"):
            _, secs, rest = value.split(":", 2)
            with self.trickling(float(secs)):
                return self.act(rest, send, listen)
        if value.startswith("@big:"):
            _, count, prefix = value.split(":", 2)
            count = int(count)
            head = prefix.encode("utf-8")
            send(head + b"x" * count)
            self.log("S", line=prefix + "x" * min(count, 20) + "...", big=count)
            if not listen:
                return head
            self.hang()
        if value.startswith("@then-close:"):
            self.act(value[len("@then-close:"):], send)
            self.close_server()
        if value.startswith("@stay:"):
            self.stay = True
            return self.act(value[len("@stay:"):], send)
        if value.startswith("@starttls:"):
            parts = value.split(":", 3)
            if len(parts) < 3 or not parts[1] or not parts[2]:
                raise ValueError("bad behaviour %r: want @starttls:CERT:KEY[:INJECT]" % value)
            line = "220 2.0.0 Ready to start TLS"
            inject = unescape(parts[3]) if len(parts) > 3 else b""
            data = line.encode("ascii") + b"\r\n" + inject
            send(data)
            self.log("S", line=line)
            if inject:
                self.log("S", line=inject.decode("latin-1"), raw=True, injected=True)
            self.start_tls(parts[1], parts[2])
            return data
        if value.startswith("@handshake-fault:"):
            data = self.send_ready(send)
            self.log("tls-hello", n=len(self.read_tls_record()))
            return self.act(value[len("@handshake-fault:"):], send, listen)
        if value.startswith("@handshake-trickle:"):
            parts = value.split(":", 3)
            if len(parts) < 4 or not parts[2] or not parts[3]:
                raise ValueError("bad behaviour %r: want @handshake-trickle:S:CERT:KEY" % value)
            data = self.send_ready(send)
            with self.trickling(float(parts[1])):
                self.start_tls(parts[2], parts[3])
            return data
        raise ValueError("unknown behaviour %r" % value)

    @contextlib.contextmanager
    def trickling(self, delay):
        """Within: every byte sent on the socket goes `delay` seconds after the previous
        one, for at most 4 s, after which the server closes the connection."""
        self.trickle_delay = delay
        self.trickle_until = time.monotonic() + 4
        try:
            yield
        finally:
            self.trickle_delay = None

    def send_ready(self, send):
        """The 220 reply to STARTTLS."""
        line = "220 2.0.0 Ready to start TLS"
        data = line.encode("ascii") + b"\r\n"
        send(data)
        self.log("S", line=line)
        return data

    def read_tls_record(self):
        """Read one TLS record (5-byte header, then its length) from the plaintext input."""
        while len(self.buf) < 5:
            if not self._fill():
                raise ConnectionDone("client")
        end = 5 + struct.unpack("!H", bytes(self.buf[3:5]))[0]
        while len(self.buf) < end:
            if not self._fill():
                raise ConnectionDone("client")
        record = bytes(self.buf[:end])
        del self.buf[:end]
        return record

    def hang(self):
        """Never reply again; log whatever the client sends until it closes."""
        while True:
            self.read_command()

    def endless(self, interval=0.001, drain=True):
        """An endless multi-line reply; ends when the client goes away. interval 0: in
        batches, as fast as the client reads. drain: read (and log) input meanwhile."""
        self.log("S", line="250-more", endless=True)
        lines = b"250-more\r\n" * (1 if interval > 0 else 100)
        while True:
            self.send_all(lines)
            if drain:
                self.drain_nonblocking()
            if interval > 0:
                time.sleep(interval)

    # ---- the dialog ------------------------------------------------------------------
    def read_data(self):
        """Read a data section; write its exact bytes to a file and log it."""
        self.data_sections += 1
        k = self.data_sections
        path = "%s.data.%d.%d" % (self.server.logger.path, self.id, k)
        chunks = []
        term = None
        body = "BODY" in self.server.script
        try:
            while True:
                line = self.readline()
                if line == b".\r\n":
                    term = "crlf"
                    break
                if line == b".\n":
                    term = "lf"
                    break
                chunks.append(line)
                if body:
                    body = False
                    self.body_fault(self.pick("BODY"))
        finally:
            with open(path, "wb") as fh:
                fh.write(b"".join(chunks))
            if term is None:
                self.log("data-partial", n=k, file=path)
        self.log("data", n=k, file=path, term=term)

    def body_fault(self, value):
        """The "BODY" behaviour, in the middle of a data section (see the module doc)."""
        if value == "@close":
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(30)
            try:
                while self._recv_raw():
                    pass
            except OSError:
                pass
            raise ConnectionDone("server")
        if value == "@reset":
            self.close_server(reset=True)
        if value == "@hang":
            time.sleep(60)
            raise ConnectionDone("server")
        if value.startswith("@slowread:"):
            delay = float(value.split(":", 1)[1])
            try:
                while self.sock.recv(1):
                    time.sleep(delay)
            except OSError:
                pass
            raise ConnectionDone("client")

        def reply():
            try:
                self.act(value, listen=False)
            except Exception:  # noqa: BLE001 - the client went away; the reader sees it
                pass

        threading.Thread(target=reply, daemon=True).start()

    def run(self):
        self.log("open")
        why = "server"
        self.linger_log = True
        try:
            try:
                implicit = self.server.script.get("implicit_tls")
                if implicit:
                    cert, _, key = implicit.partition(":")
                    if not cert or not key:
                        raise ValueError("implicit_tls must be \"CERTFILE:KEYFILE\"")
                    self.start_tls(cert, key)
                sent = self.act(self.pick("greeting"))
                expect_authdata = sent.rstrip(b"\r\n").split(b"\n")[-1].startswith(b"334")
                while True:
                    line = self.read_command()
                    if expect_authdata:
                        verb, arg = "AUTHDATA", ""
                    else:
                        parts = line.split(None, 1)
                        verb = parts[0].upper() if parts else ""
                        arg = parts[1] if len(parts) > 1 else ""
                    self.stay = False
                    sent = self.act(self.pick(verb, arg))
                    if verb == "DATA" and sent[:1] == b"3":
                        self.read_data()
                        sent = self.act(self.pick("DOT"))
                    expect_authdata = sent.rstrip(b"\r\n").split(b"\n")[-1].startswith(b"334")
                    if verb == "QUIT" and not self.stay:
                        self.close_server()
            except TLSFailed:
                why = "server"
                self.linger(log_input=self.linger_log)
            except ConnectionDone as done:
                why = done.why
                if why == "server" and not self.reset:
                    self.linger()
            except Exception as e:  # noqa: BLE001 - any failure is logged, never fatal
                why = "error: %s: %s" % (type(e).__name__, e)
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.log("close", why=why)


class Server:
    def __init__(self, script, logger):
        self.script = script
        self.logger = logger
        self.lock = threading.Lock()
        self.next_id = 0
        self.tls_contexts = {}

    def tls_context(self, certfile, keyfile):
        """A server SSLContext for a certificate/key pair (cached); records SNI."""
        with self.lock:
            ctx = self.tls_contexts.get((certfile, keyfile))
            if ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(certfile, keyfile)
                ctx.sni_callback = sni_callback
                self.tls_contexts[(certfile, keyfile)] = ctx
            return ctx

    def serve(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except OSError as e:  # e.g. EMFILE: keep serving
                self.logger.log(conn=0, ev="accept-error", why=str(e))
                time.sleep(0.05)
                continue
            with self.lock:
                self.next_id += 1
                conn_id = self.next_id
            conn = Connection(self, sock, conn_id)
            threading.Thread(target=conn.run, daemon=True).start()


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as fh:
        fh.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()

    with open(args.script, encoding="utf-8") as fh:
        script = json.load(fh)
    if not isinstance(script, dict):
        sys.exit("script must be a JSON object")

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if "rcvbuf" in script:
        # Set before listen(): accepted sockets inherit it, and the window is sized by it.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(script["rcvbuf"]))
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = Server(script, Logger(args.log))
    write_atomic(args.port_file, "%d\n" % listener.getsockname()[1])
    server.serve(listener)


if __name__ == "__main__":
    main()
