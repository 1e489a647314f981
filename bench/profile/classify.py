"""Sorts the samples of `perf record -g` of bench/profile/loop.tcl into the parts of a send.

    perf script -i perf.data | python3 bench/profile/classify.py SENDS PERIOD_US

Each sample's call chain is matched against the rules of its thread (the worker threads
are named smtp-send, the interpreter's thread is tclsh8.6); the first rule with a frame
that matches wins. Prints the CPU time per send of each part (samples x PERIOD_US /
SENDS), largest first. libtcl8.6 has no symbols for its static functions, so Tcl's own
work (bytecode, the mime procs) is told apart only by the smtp frames above it.
"""

import collections
import re
import sys

WORKER = [
    ("connect (socket, SYN handshake, smtp-sink's accept on loopback)", r"transport::tcp::connect|TcpStream>::connect"),
    ("TLS", r"libssl|openssl::ssl|transport::tls"),
    ("writing commands and the message (send, loopback delivery to smtp-sink)", r"Connection::write_all|__libc_send\b|__send\b"),
    ("reading replies (recv; switching to smtp-sink and back)", r"Connection::read_some|__libc_recv\b"),
    ("closing the connection", r"__close\b|__libc_close|drop_in_place<tclsmtp::transport"),
    ("Tcl's per-thread state (the wake-up event's Tcl_Alloc sets up the thread's allocator cache, "
     "Tcl_FinalizeThread at exit frees it)", r"TclpAlloc|Tcl_Alloc\b|Tcl_FinalizeThread|TclpFreeAllocCache|TclFinalizeThread"),
    ("waking the interpreter (Tcl_ThreadQueueEvent, Tcl_ThreadAlert)", r"Waker>::wake|Tcl_ThreadAlert|Tcl_ThreadQueueEvent"),
    ("protocol engine (Session, replies, DataEncoder, Spool chunks)", r"tclsmtp::smtp::|tclsmtp::client::|tclsmtp::spool::"),
    ("thread start and exit (stack, TLS, Tcl's thread exit handlers)", r"."),
]

MAIN = [
    ("thread spawn (clone3)", r"Builder>::spawn|spawn_unchecked|pthread_create|clone3|kernel_clone|ret_from_fork"),
    ("TLS configuration (TlsConfig::shared)", r"TlsConfig>::shared|TlsConfig::shared"),
    ("Date (chrono)", r"chrono::"),
    ("Message-ID and boundary randomness (OpenSSL RAND)", r"random_hex|openssl::rand|RAND_bytes"),
    ("smtp::mail: building the message (compose)", r"tclsmtp::compose::"),
    ("Spool (sizing, reading and checking the rendered message)", r"tclsmtp::spool::"),
    ("sendmessage: mime bridge, rendering the token (bridge::message: temp file, copymessage)", r"Bridge>::render|Bridge::render"),
    ("sendmessage: mime bridge, parsing addresses (mime::parseaddress)", r"AddressParser|bridge::Bridge.*parse|message::envelope"),
    ("sendmessage: mime bridge, context (host, user, mime Date)", r"Bridge>::context|Bridge::context"),
    ("sendmessage: header rewrite and checks", r"tclsmtp::message::"),
    ("smtp::mail: options", r"command::mail::parse|command::options::"),
    ("smtp::mail: info hostname", r"command::mail.*\n.*eval_global|Interp>::eval_global"),
    ("waiting for the worker (Sends::wait, Tcl_DoOneEvent, futex)", r"Sends>::wait|Sends::wait|Tcl_DoOneEvent|poll_thread"),
    ("the rest of the commands (result, registry, words)", r"libtclsmtp"),
    ("Tcl outside the commands (the loop; for sendmessage the mime token's making and finalize)", r"."),
]


def classify(comm, frames):
    text = "\n".join(frames)
    rules = WORKER if comm.startswith("smtp-send") else MAIN
    who = "worker" if comm.startswith("smtp-send") else "interp"
    for name, pattern in rules:
        if re.search(pattern, text):
            return f"{who}: {name}"
    return f"{who}: ?"


def main():
    sends, period_us = int(sys.argv[1]), float(sys.argv[2])
    counts = collections.Counter()
    comm, frames = None, []

    def flush():
        if comm is not None:
            counts[classify(comm, frames)] += 1

    for line in sys.stdin:
        if not line.strip():
            continue
        if not line[0].isspace():
            flush()
            comm, frames = line.split()[0], []
        else:
            frames.append(line.strip())
    flush()
    total = sum(counts.values())
    print(f"{total} samples = {total * period_us / 1000:.0f} ms of CPU for {sends} sends: "
          f"{total * period_us / sends:.0f} us of CPU per send")
    by_thread = collections.Counter()
    for name, n in counts.items():
        by_thread[name.split(":")[0]] += n
    for who, n in by_thread.most_common():
        print(f"  {who}: {n * period_us / sends:.0f} us per send")
    for name, n in counts.most_common():
        print(f"{n * period_us / sends:8.1f} us {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
