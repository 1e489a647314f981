"""Turns the raw measurements of bench/run.sh into the markdown of bench/RESULTS.md.

    python3 bench/report.py RAW MACHINE BIG_MIB ATTACH_KIB ATTACH_SENDS TEXT_MIB QP_KIB SESSION_WINDOW
    python3 bench/report.py --sessions RAW SESSION_WINDOW
        (only the session rows, from a run.sh run with BENCH_ONLY=sessions)

RAW has one measurement a line (run.sh writes it):
    direct CLIENT MESSAGES SECONDS        1 KiB, one recipient, on loopback
    proxy CLIENT MESSAGES SECONDS         1 KiB, ten recipients, 20 ms round trip
    session CLIENT MESSAGES SECONDS       1 KiB, one recipient, on loopback, over one
                                          session (or a pool, or smtp-source -d)
    sessionproxy CLIENT MESSAGES SECONDS  1 KiB, ten recipients, 20 ms round trip, over
                                          one session
    big CLIENT-ACTION SECONDS WALL KIB    the attachment: the timed step, the whole
                                          process (time -v) and its peak RSS
    attach CLIENT-ACTION SECONDS WALL KIB the smtp::mail attachment: seconds per send
    text CLIENT-ACTION-SIZE SECONDS WALL KIB
                                          the non-ASCII text (SIZE big, small, double)
    textlimit CLIENT-ACTION-SIZE LIMIT    that send did not finish in LIMIT seconds
    encoder SHAPE GBPS                    bench/encoder.rs
MACHINE has "key value" lines (date, cpu, cores, kernel, load, versions).
"""

import statistics
import sys
from collections import defaultdict


def read_raw(path):
    rows = defaultdict(list)
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields:
                rows[(fields[0], fields[1])].append([float(x) for x in fields[2:]])
    return rows


def read_machine(path):
    machine = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            machine[key] = value
    return machine


class Stat:
    """The median of one measurement over the rounds, and its range."""

    def __init__(self, values):
        self.values = sorted(values)
        self.median = statistics.median(self.values)

    def show(self, fmt):
        if len(self.values) == 1 or self.values[0] == self.values[-1]:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} ({fmt.format(self.values[0])}–{fmt.format(self.values[-1])})"


def ratio(a, b):
    return a.median / b.median if b.median else float("inf")


def verdict(ok):
    return "**met**" if ok else "**missed**"


def rate(raw, row, client):  # messages per second
    return Stat([m / s for m, s in raw[(row, client)]])


def latency(raw, row, client):  # milliseconds per message
    return Stat([1000 * s / m for m, s in raw[(row, client)]])


def session_rows(raw, window):
    """The rows of sessions and pools (smtp::open), from the rows "session" and "sessionproxy";
    compared with ours over a new connection each when RAW has those rows too."""
    out = []
    one, py, src = (rate(raw, "session", c) for c in ("ours-session", "python-session", "smtp-source-d"))
    fresh = ""
    if ("direct", "ours-mail") in raw:
        fresh = f", {ratio(one, rate(raw, 'direct', 'ours-mail')):.2f}× ours `smtp::mail` with a new connection each"
    out.append(
        "| 1 KiB message, 1 recipient, all over one session (`smtp::open`, then `smtp::mail -session` "
        "in a loop): **messages/s** "
        f"| {one.show('{:.0f}')} | | {py.show('{:.0f}')} | `smtp-source -d -s 1`: {src.show('{:.0f}')} "
        f"| {ratio(one, src):.2f}× smtp-source -d, {ratio(one, py):.2f}× Python{fresh} "
        f"| ≥ 1.2× smtp-source -d {verdict(ratio(one, src) >= 1.2)} |"
    )

    queued = rate(raw, "session", "ours-queue1")
    out.append(
        f"| the same queued (`smtp::mail -session ... -command`, {window} kept queued; one connection): "
        f"**messages/s** | {queued.show('{:.0f}')} | | | `smtp-source -d -s 1`: {src.show('{:.0f}')} "
        f"| {ratio(queued, src):.2f}× smtp-source -d, {ratio(queued, one):.2f}× the synchronous loop | |"
    )

    pool, src4 = rate(raw, "session", "ours-pool4"), rate(raw, "session", "smtp-source-d4")
    out.append(
        "| the same queued sends on a pool of 4 (`smtp::open -connections 4`): **messages/s** "
        f"| {pool.show('{:.0f}')} | | | `smtp-source -d -s 4`: {src4.show('{:.0f}')} "
        f"| {ratio(pool, queued):.2f}× one connection, {ratio(pool, src4):.2f}× smtp-source -d -s 4 | |"
    )

    apart, aq, asy, apy = (
        latency(raw, "sessionproxy", c) for c in ("ours-queue1-atleastone", "ours-queue1", "ours-session", "python-session")
    )
    fresh = ""
    if ("proxy", "ours") in raw:
        fresh = f", {ratio(apart, latency(raw, 'proxy', 'ours')):.2f}× ours with a new connection each"
    out.append(
        "| 1 KiB message, 10 recipients, 20 ms round trip (proxy), over one session, queued "
        f"(`-command`, {window} kept queued) with `-atleastone 1` (DATA goes with the RCPTs: partial "
        "delivery, as smtplib's; Python: `send_message` in a loop over one connection): "
        f"**ms per message** | {apart.show('{:.1f}')} | | {apy.show('{:.0f}')} "
        "| one round trip: 20 "
        f"| {ratio(apart, apy):.2f}× Python's time{fresh} | |"
    )
    out.append(
        "| the same queued, default `-atleastone 0` (all or nothing: DATA waits for the 10 RCPT "
        f"replies): **ms per message** | {aq.show('{:.1f}')} | | {apy.show('{:.0f}')} | two round trips: 40 "
        f"| {ratio(aq, apy):.2f}× Python's time, {ratio(aq, apart):.2f}× with `-atleastone 1` | |"
    )
    out.append(
        "| the same synchronous (`smtp::mail -session` in a loop, `-atleastone 0`): **ms per message** "
        f"| {asy.show('{:.1f}')} | | {apy.show('{:.0f}')} | three round trips: 60 "
        f"| {ratio(asy, apy):.2f}× Python's time, {ratio(asy, aq):.2f}× queued | |"
    )
    return out


def session_note(window):
    """The "How each row is measured" item of the session rows."""
    return (
        "- Sessions: the `smtp::mail` loop and body over one session opened once, outside the timed "
        "part, with `smtp::open -servers 127.0.0.1 -ports P` (defaults otherwise: a connection is "
        "replaced after 100 messages) and closed after it; 3 warm-up messages. Synchronous: one "
        "`smtp::mail -session $s -from ... -rcpt ... -subject ... -body` call per message. Queued: "
        f"the same call with `-command`; {window} sends are kept queued, each callback queues the next "
        "until the time is up, and the time ends at the last callback (a first batch, waited for, "
        "warms up and opens the pool's connections). Pool: the same queued sends on "
        "`smtp::open ... -connections 4`. Through the proxy, 10 recipients: `-atleastone 0` (the "
        "default, tcllib's all or nothing) makes DATA wait for every RCPT reply, `-atleastone 1` "
        "lets it go in the same write (RFC 2920), and a queued message's MAIL, RCPTs (and DATA) go "
        "with the previous message's end of data. Python: one `smtplib.SMTP` and `send_message` of a "
        "new `EmailMessage` per message (each command waits for its reply; it delivers to the "
        "recipients accepted, as `-atleastone 1`). `smtp-source -d -l 1024` sends all its messages over one "
        "connection (`-s 1`) or four (`-s 4`), one command at a time (no pipelining). Measured in "
        "rounds of their own, clients interleaved the same way."
    )


def main():
    if sys.argv[1] == "--sessions":
        raw, window = read_raw(sys.argv[2]), int(sys.argv[3])
        print("| Measurement | ours | tcllib smtp 1.5.1 | Python smtplib | reference | ours compared | target |")
        print("|---|--:|--:|--:|--:|---|---|")
        print("\n".join(session_rows(raw, window)))
        print()
        print(session_note(window))
        return
    raw, machine, big_mib = read_raw(sys.argv[1]), read_machine(sys.argv[2]), sys.argv[3]
    attach_kib, attach_sends, text_mib, qp_kib, window = (int(x) for x in sys.argv[4:9])

    def big(name, index, row="big"):  # 0: timed step (s), 1: process wall (s), 2: peak RSS (MiB)
        return Stat([m[index] / (1024 if index == 2 else 1) for m in raw[(row, name)]])

    out = []
    out.append("# Benchmark results\n")
    out.append(
        f"Produced by `bench/run.sh` on {machine['date']}: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['kernel']}; load average {machine['load']} when the run ended (the machine may be shared "
        "with other work, which lowers every client alike: the clients take turns round by round).\n"
    )
    out.append(
        f"Versions: ours (tclsmtp) {machine['ours']}, tcllib {machine['tcllib']}, "
        f"Tcl {machine['tcl']}, Python {machine['python']}, Postfix {machine['postfix']} "
        f"(smtp-sink, smtp-source), rustc {machine['rustc']}.\n"
    )
    out.append(
        "Every client sends to Postfix's `smtp-sink` on 127.0.0.1. Each value is the median of the "
        f"{len(raw[('direct', 'ours')])} rounds, with the range in brackets (the 10 MiB text through mime: "
        "one try). \"Ours compared\" divides ours by the other value.\n"
    )
    out.append("| Measurement | ours | tcllib smtp 1.5.1 | Python smtplib | reference | ours compared | target (issues 7, 13) |")
    out.append("|---|--:|--:|--:|--:|---|---|")

    ours, tcl, py, src = (rate(raw, "direct", c) for c in ("ours", "tcllib", "python", "smtp-source"))
    out.append(
        "| 1 KiB message, 1 recipient, new connection each: **messages/s** "
        f"| {ours.show('{:.0f}')} | {tcl.show('{:.0f}')} | {py.show('{:.0f}')} "
        f"| `smtp-source -s 1`: {src.show('{:.0f}')} "
        f"| {ratio(ours, tcl):.2f}× tcllib, {ratio(ours, py):.2f}× Python, {ratio(ours, src):.2f}× smtp-source "
        f"| ≥ 30× tcllib {verdict(ratio(ours, tcl) >= 30)}; ≥ 0.6× smtp-source {verdict(ratio(ours, src) >= 0.6)} |"
    )

    ours7, tcl7 = (rate(raw, "direct", c) for c in ("ours-7bit", "tcllib-7bit"))
    out.append(
        "| the same, token made with `-encoding 7bit` (mime then skips its per-character scan "
        "for an encoding, 2.5 ms per message): **messages/s** "
        f"| {ours7.show('{:.0f}')} | {tcl7.show('{:.0f}')} | | `smtp-source -s 1`: {src.show('{:.0f}')} "
        f"| {ratio(ours7, tcl7):.2f}× tcllib, {ratio(ours7, src):.2f}× smtp-source | |"
    )

    mail, sm = rate(raw, "direct", "ours-mail"), rate(raw, "direct", "ours")
    tcl, py = rate(raw, "direct", "tcllib"), rate(raw, "direct", "python")
    out.append(
        "| the same with `smtp::mail` (no mime token: `-server -port -from -rcpt -subject -body`): "
        f"**messages/s** | {mail.show('{:.0f}')} | | | `smtp-source -s 1`: {src.show('{:.0f}')} "
        f"| {ratio(mail, src):.2f}× smtp-source, {ratio(mail, sm):.2f}× ours `sendmessage`, "
        f"{ratio(mail, ours7):.2f}× ours `sendmessage` 7bit, {ratio(mail, tcl):.0f}× tcllib, "
        f"{ratio(mail, py):.2f}× Python "
        f"| ≥ 1.0× smtp-source {verdict(ratio(mail, src) >= 1.0)} |"
    )

    ours, tcl, py = (latency(raw, "proxy", c) for c in ("ours", "tcllib", "python"))
    out.append(
        "| 1 KiB message, 10 recipients, 20 ms round trip (proxy): **ms per message** "
        f"| {ours.show('{:.0f}')} | {tcl.show('{:.0f}')} | {py.show('{:.0f}')} "
        "| five round trips: 100 "
        f"| {ratio(ours, tcl):.2f}× tcllib's time, {ratio(ours, py):.2f}× Python's "
        f"| ≤ 0.4× tcllib's time {verdict(ratio(ours, tcl) <= 0.4)} |"
    )
    out.extend(session_rows(raw, window))

    step = {
        name: big(name, 0)
        for name in ("ours-send", "tcllib-send", "python-send", "tcllib-copy", "smtp-source-send")
    }
    out.append(
        f"| {big_mib} MiB `-file` attachment in a multipart: **seconds in the send call** "
        f"| {step['ours-send'].show('{:.2f}')} | {step['tcllib-send'].show('{:.2f}')} "
        f"| {step['python-send'].show('{:.2f}')} "
        f"| `mime::copymessage` to /dev/null: {step['tcllib-copy'].show('{:.2f}')}; "
        f"`smtp-source` sending as many bytes: {step['smtp-source-send'].show('{:.2f}')} "
        f"| {ratio(step['ours-send'], step['tcllib-copy']):.2f}× copymessage, "
        f"{ratio(step['ours-send'], step['tcllib-send']):.2f}× tcllib "
        f"| ≤ 1.5× copymessage {verdict(ratio(step['ours-send'], step['tcllib-copy']) <= 1.5)} |"
    )

    wall = {name: big(name, 1) for name in ("ours-send", "tcllib-send", "python-send", "tcllib-none")}
    out.append(
        f"| {big_mib} MiB attachment: **process wall time, s** (`time -v`) "
        f"| {wall['ours-send'].show('{:.2f}')} | {wall['tcllib-send'].show('{:.2f}')} "
        f"| {wall['python-send'].show('{:.2f}')} "
        f"| tclsh that only builds the token: {wall['tcllib-none'].show('{:.2f}')} "
        f"| {ratio(wall['ours-send'], wall['tcllib-send']):.2f}× tcllib | |"
    )

    rss = {
        name: big(name, 2)
        for name in ("ours-send", "tcllib-send", "python-send", "ours-none", "tcllib-none", "tcllib-copy")
    }
    extra = rss["ours-send"].median - rss["ours-none"].median
    tcllib_extra = rss["tcllib-send"].median - rss["tcllib-none"].median
    out.append(
        f"| {big_mib} MiB attachment: **peak RSS, MiB** (`time -v`; in brackets, extra over a tclsh "
        "that loads the same package and only builds the token) "
        f"| {rss['ours-send'].median:.0f} (+{extra:.0f}) "
        f"| {rss['tcllib-send'].median:.0f} (+{tcllib_extra:.0f}) "
        f"| {rss['python-send'].median:.0f} "
        f"| token only: {rss['ours-none'].median:.0f} (ours), {rss['tcllib-none'].median:.0f} (tcllib); "
        f"copymessage: {rss['tcllib-copy'].median:.0f} "
        f"| {ratio(rss['ours-send'], rss['tcllib-send']):.2f}× tcllib "
        f"| ≤ +32 MiB {verdict(extra <= 32)} |"
    )

    attach_label = f"{attach_kib // 1024} MiB" if attach_kib % 1024 == 0 else f"{attach_kib} KiB"
    a_step = {name: big(name, 0, "attach") for name in ("ours-mail", "python-send")}
    out.append(
        f"| {attach_label} attachment from a file, `smtp::mail -attachments [list $path]` (Python: "
        "`add_attachment` of the file's bytes): **seconds per send** "
        f"| {a_step['ours-mail'].show('{:.4f}')} | | {a_step['python-send'].show('{:.4f}')} | "
        f"| {ratio(a_step['ours-mail'], a_step['python-send']):.2f}× Python's time | |"
    )
    a_rss = {name: big(name, 2, "attach") for name in ("ours-mail", "ours-none", "python-send", "python-none")}
    out.append(
        f"| {attach_label} attachment, {attach_sends + 1} sends in one process: **peak RSS, MiB** (`time -v`; in "
        "brackets, extra over the same process that only loads the package or modules) "
        f"| {a_rss['ours-mail'].median:.1f} (+{a_rss['ours-mail'].median - a_rss['ours-none'].median:.1f}) | "
        f"| {a_rss['python-send'].median:.1f} (+{a_rss['python-send'].median - a_rss['python-none'].median:.1f}) "
        f"| loaded only: {a_rss['ours-none'].median:.1f} (ours), {a_rss['python-none'].median:.1f} (Python) "
        f"| {ratio(a_rss['ours-mail'], a_rss['python-send']):.2f}× Python | |"
    )

    t_mail = big("ours-mail-big", 0, "text")
    limit = raw.get(("textlimit", "ours-qp-big"))
    if limit:
        qp_big = f"did not finish in {limit[0][0]:.0f} s (stopped)"
        qp_cmp = f"< {t_mail.median / limit[0][0]:.3f}× the mime path's time"
    else:
        qp_stat = big("ours-qp-big", 0, "text")
        qp_big = qp_stat.show("{:.1f}")
        qp_cmp = f"{ratio(t_mail, qp_stat):.3f}× the mime path's time"
    out.append(
        f"| {text_mib} MiB non-ASCII UTF-8 text (lines of ~70 characters): **seconds per send** "
        f"(ours: `smtp::mail -body`, quoted-printable) | {t_mail.show('{:.2f}')} | | "
        f"| mime quoted-printable token + ours `sendmessage`: {qp_big} | {qp_cmp} | |"
    )
    for size, kib in (("small", qp_kib), ("double", 2 * qp_kib)):
        m, o, t = (big(f"{c}-{size}", 0, "text") for c in ("ours-mail", "ours-qp", "tcllib-qp"))
        growth = ""
        if size == "double":
            grow = lambda c: ratio(big(f"{c}-double", 0, "text"), big(f"{c}-small", 0, "text"))
            growth = (
                f"; twice the text: ×{grow('ours-qp'):.1f} the time for the mime path, "
                f"×{grow('ours-mail'):.1f} for `smtp::mail`"
            )
        out.append(
            f"| {kib} KiB of the same text: **seconds per send** (ours: `smtp::mail -body`; tcllib: mime "
            f"quoted-printable token + tcllib `sendmessage`) | {m.show('{:.3f}')} | {t.show('{:.2f}')} | "
            f"| mime token + ours `sendmessage`: {o.show('{:.2f}')} "
            f"| {ratio(m, o):.3f}× the mime path's time{growth} | |"
        )
    r_mail, r_none = big("ours-mail-big", 2, "text"), big("ours-none-big", 2, "text")
    out.append(
        f"| {text_mib} MiB text with `smtp::mail -body`: **peak RSS, MiB** (`time -v`; in brackets, extra over "
        f"a tclsh that holds the text and loads the package) | {r_mail.median:.0f} "
        f"(+{r_mail.median - r_none.median:.0f}) | | | tclsh holding the text: {r_none.median:.0f} | | |"
    )

    shapes = {
        "base64-76-lf": "76-byte lines ending LF (a base64 part as mime renders it)",
        "text-72-crlf": "72-byte lines already ending CRLF",
        "text-20-lf": "20-byte lines ending LF",
    }
    for shape, label in shapes.items():
        if ("encoder", shape) in raw:
            gbps = Stat([m[0] for m in raw[("encoder", shape)]])
            out.append(
                f"| DATA encoder alone, {label}: **GB/s** of input | {gbps.show('{:.2f}')} | | | | "
                f"| ≥ 1 GB/s {verdict(gbps.median >= 1)} |"
            )

    out.append("")
    out.append("How each row is measured (`bench/send.tcl`, `bench/send.py`, `bench/delay_proxy.py`, `bench/encoder.rs`):")
    out.append("")
    out.append(
        "- Messages/s: each client runs in its own process and loops for a fixed time after 3 warm-up "
        "messages; one iteration builds the message (Tcl: `mime::initialize`, `smtp::sendmessage`, "
        "`mime::finalize`; Python: `EmailMessage`, `smtplib.SMTP`, `send_message`, `quit`) and sends it "
        "over a new connection. `smtp-source -s 1 -l 1024` sends the same way, one session at a time."
    )
    out.append(
        "- `-encoding 7bit`: the same loop, but `mime::initialize` is given the encoding, so "
        "`mime::copymessage` does not scan the body a character at a time (in Tcl) to choose one: "
        "that scan is the same for every Tcl client and bounds the first row."
    )
    out.append(
        "- 20 ms round trip: the same loop through `bench/delay_proxy.py`, which forwards every chunk "
        "10 ms after it arrived, in each direction."
    )
    out.append(
        f"- Attachment: a {big_mib} MiB file of random bytes as `mime::initialize -canonical "
        "application/octet-stream -file` (mime picks base64) next to a text part, in multipart/mixed, "
        "sent to one recipient (Python: `add_attachment` of the file's bytes). Seconds in the send call "
        "are timed inside the process (Python's include reading the file into the message); wall time "
        "and peak RSS are `/usr/bin/time -v` of the whole process. The `smtp-source` reference sends "
        "one message of the rendered size (base64 plus line ends) into the same smtp-sink: the time "
        "the receiving side needs for the transfer alone."
    )
    out.append(
        "- `smtp::mail` messages/s: the same loop and body, one `smtp::mail -server 127.0.0.1 -port P "
        "-from ... -rcpt ... -subject ... -body` call per message (the message is built in Rust); measured "
        "in the same rounds as the rows above."
    )
    out.append(
        f"- `smtp::mail` attachment: a {attach_label} file of random bytes, `-body` a line of text and "
        "`-attachments [list $path]` (base64, read and encoded while it is sent); each process sends it "
        "once to warm up, then times the sends that follow (the mean is shown). Python does the same with "
        "`EmailMessage()`, `set_content`, `add_attachment(data, maintype, subtype, filename=...)` of the "
        "file's bytes read for each send, and `smtplib.SMTP(...).send_message`. Peak RSS is that of the "
        "whole process."
    )
    out.append(
        f"- Non-ASCII text: UTF-8 lines of up to 70 characters mixing ASCII, accented Latin, Cyrillic, "
        "Hangul and CJK words, read by tclsh with `-encoding utf-8`, one send per process (its seconds). "
        "Ours: `smtp::mail -body $text` (quoted-printable). The mime path: `mime::initialize -canonical "
        "\"text/plain; charset=utf-8\" -encoding quoted-printable -string [encoding convertto utf-8 $text]` "
        "(the UTF-8 bytes, so that mime encodes every byte of a multi-byte character) and "
        "`smtp::sendmessage`, timed together. tcllib's `mime::qp_encode` substitutes a "
        "`[format ...]` command for each byte to encode and runs `subst` over the whole text, which "
        "takes time in the square of the text's size: the big text gets one try with a time limit, and "
        f"the {qp_kib} and {2 * qp_kib} KiB rows show the growth."
    )
    out.append(session_note(window))
    out.append(
        "- DATA encoder: `cargo bench --bench encoder`, 16 MiB messages fed in 64 KiB chunks, best of 5 "
        "rounds of 0.3 s."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
