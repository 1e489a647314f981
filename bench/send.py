"""The Python smtplib side of the benchmark (bench/run.sh runs it), the same work as send.tcl.

    python3 bench/send.py rate PORT SECONDS RECIPIENTS   -> prints "MESSAGES ELAPSED_SECONDS"
    python3 bench/send.py session PORT SECONDS RECIPIENTS
        -> the same messages over one connection (one smtplib.SMTP, send_message in a
        loop, quit at the end); prints "MESSAGES ELAPSED_SECONDS"
    python3 bench/send.py big PORT FILE                  -> prints the seconds the send took
    python3 bench/send.py attach PORT FILE ACTION SENDS  -> ACTION "send": one warm-up send,
        then SENDS sends of a text and FILE as an attachment (read, add_attachment,
        send_message, each time); prints the mean seconds per send. ACTION "none" only
        imports the modules (the memory baseline).

Each message is built (email.message.EmailMessage) and sent over a new connection
(smtplib.SMTP, send_message, quit), as a script would do it; in "session" mode over the
one connection the process opened first.
"""

import os
import smtplib
import sys
import time
from email.message import EmailMessage


def body():
    """The 1 KiB body send.tcl uses: 72-character lines, cut to 1023 bytes plus LF."""
    line = "abcdefghi" * 8 + "\n"
    text = ""
    while len(text) < 1024:
        text += line
    return text[:1023] + "\n"


def send(port, message):
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.send_message(message)


def build(text, recipients):
    message = EmailMessage()
    message["Subject"] = "benchmark message"
    message["From"] = "sender@example.com"
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    return message


def send_one(port, text, recipients):
    send(port, build(text, recipients))


def rate(port, seconds, nrecipients):
    text = body()
    recipients = [f"rcpt{i}@example.com" for i in range(1, nrecipients + 1)]
    for _ in range(3):
        send_one(port, text, recipients)
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        send_one(port, text, recipients)
        count += 1
    print(count, time.monotonic() - start)


def session(port, seconds, nrecipients):
    text = body()
    recipients = [f"rcpt{i}@example.com" for i in range(1, nrecipients + 1)]
    with smtplib.SMTP("127.0.0.1", port) as client:
        for _ in range(3):
            client.send_message(build(text, recipients))
        count = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            client.send_message(build(text, recipients))
            count += 1
        elapsed = time.monotonic() - start
    print(count, elapsed)


def big(port, path):
    message = EmailMessage()
    message["Subject"] = "benchmark attachment"
    message["From"] = "sender@example.com"
    message["To"] = "rcpt@example.com"
    message.set_content("The file is attached.\n")
    start = time.monotonic()
    with open(path, "rb") as f:
        message.add_attachment(f.read(), maintype="application", subtype="octet-stream")
    send(port, message)
    print(time.monotonic() - start)


def attach_one(port, path):
    message = EmailMessage()
    message["Subject"] = "benchmark attachment"
    message["From"] = "sender@example.com"
    message["To"] = "rcpt@example.com"
    message.set_content("The file is attached.\n")
    with open(path, "rb") as f:
        data = f.read()
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=os.path.basename(path))
    send(port, message)


def attach(port, path, action, sends):
    if action == "none":
        print(0)
        return
    if action != "send":
        sys.exit(f"unknown action {action!r}: must be send or none")
    attach_one(port, path)
    start = time.monotonic()
    for _ in range(sends):
        attach_one(port, path)
    print((time.monotonic() - start) / sends)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "rate":
        rate(port, float(sys.argv[3]), int(sys.argv[4]))
    elif mode == "session":
        session(port, float(sys.argv[3]), int(sys.argv[4]))
    elif mode == "big":
        big(port, sys.argv[3])
    elif mode == "attach":
        attach(port, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"unknown mode {mode!r}: must be rate, session, big or attach")


if __name__ == "__main__":
    main()
