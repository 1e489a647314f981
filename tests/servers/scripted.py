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
  @big:N:PREFIX          send PREFIX then N 'x' bytes and no line ending, then as @hang
  @endless               send "250-more" lines forever (one per ms) until the client closes
  @then-close:REST       behave as REST, then close the connection
  @stay:REST             behave as REST and do not close afterwards (useful for QUIT,
                         which otherwise always closes the connection after its reply)

After a DATA reply starting with "3", the server reads the message data up to the line
"." (".\\r\\n"; a bare ".\\n" is also accepted and noted as "term": "lf") and answers DOT.

Log (LOGFILE, one JSON object per line, appended and flushed after every entry):
  {"conn": N, "ev": "open"}
  {"conn": N, "ev": "C", "line": L, "crlf": true|false}      (L = raw bytes as latin-1;
                                   "eof": true marks an unterminated last fragment)
  {"conn": N, "ev": "S", "line": L}        one per reply line sent (@raw: one entry holding
                                   the raw text as latin-1, with "raw": true; @big: "big": N
                                   and a shortened line; @endless: only the first line,
                                   with "endless": true)
  {"conn": N, "ev": "data", "n": K, "file": F, "term": "crlf"|"lf"}   after a data section;
                                   F = LOGFILE.data.N.K holds the exact bytes between the
                                   DATA reply and the terminating "." line (dot-stuffing kept)
  {"conn": N, "ev": "data-partial", "n": K, "file": F}   the client went away mid-data
  {"conn": N, "ev": "close", "why": "client"|"server"|"error: ..."}
"""

import argparse
import json
import os
import select
import signal
import socket
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

    # ---- logging -------------------------------------------------------------------
    def log(self, ev, **kw):
        self.server.logger.log(conn=self.id, ev=ev, **kw)

    # ---- input -----------------------------------------------------------------------
    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

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
        raw = self.readline()
        crlf = raw.endswith(b"\r\n")
        text = raw[:-2] if crlf else raw[:-1]
        line = text.decode("latin-1")
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
    def send_all(self, data):
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            raise ConnectionDone("client")

    def close_server(self, reset=False):
        if reset:
            self.reset = True
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise ConnectionDone("server")

    def linger(self, seconds=0.5):
        """Graceful server-side close: send FIN first, then read (and log) what the
        client still sends for up to `seconds` or until it closes, so that unread
        input does not turn the close into a RST."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + seconds
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
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

    def act(self, value, send=None):
        """Carry out one behaviour. Returns the bytes sent (b"" if nothing was sent).
        Raises ConnectionDone when the connection ends."""
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
        if value == "@endless":
            self.endless()
        if value.startswith("@delay:"):
            _, secs, rest = value.split(":", 2)
            time.sleep(float(secs))
            return self.act(rest, send)
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

            return self.act(rest, trickle)
        if value.startswith("@big:"):
            _, count, prefix = value.split(":", 2)
            count = int(count)
            head = prefix.encode("utf-8")
            send(head + b"x" * count)
            self.log("S", line=prefix + "x" * min(count, 20) + "...", big=count)
            self.hang()
        if value.startswith("@then-close:"):
            self.act(value[len("@then-close:"):], send)
            self.close_server()
        if value.startswith("@stay:"):
            self.stay = True
            return self.act(value[len("@stay:"):], send)
        raise ValueError("unknown behaviour %r" % value)

    def hang(self):
        """Never reply again; log whatever the client sends until it closes."""
        while True:
            self.read_command()

    def endless(self):
        """An endless multi-line reply; ends when the client goes away."""
        self.log("S", line="250-more", endless=True)
        while True:
            self.send_all(b"250-more\r\n")
            self.drain_nonblocking()
            time.sleep(0.001)

    # ---- the dialog ------------------------------------------------------------------
    def read_data(self):
        """Read a data section; write its exact bytes to a file and log it."""
        self.data_sections += 1
        k = self.data_sections
        path = "%s.data.%d.%d" % (self.server.logger.path, self.id, k)
        chunks = []
        term = None
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
        finally:
            with open(path, "wb") as fh:
                fh.write(b"".join(chunks))
            if term is None:
                self.log("data-partial", n=k, file=path)
        self.log("data", n=k, file=path, term=term)

    def run(self):
        self.log("open")
        why = "server"
        try:
            try:
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
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = Server(script, Logger(args.log))
    write_atomic(args.port_file, "%d\n" % listener.getsockname()[1])
    server.serve(listener)


if __name__ == "__main__":
    main()
