#!/usr/bin/env python3
"""Python's email parser as an independent oracle for what a server received.

Reads one message (bytes) on stdin and prints JSON:
  {"defects": ["<part>: <DefectClass>", ...],
   "parts": [{"part": "1.2", "type": "text/plain", "boundary": null or "...",
              "headers": [["Name", "value"], ...], "payload": "...",
              "filename": null or "...", "disposition": null or "inline"/"attachment"}, ...]}
Parts are numbered as IMAP numbers sections ("" for the message itself).

With --decoded (policy.default, as a mail client reads a message), header values are
decoded (RFC 2047 encoded words, RFC 2231 parameters) and a text part's payload is its
text (line ends as the parser gives them); other payloads are the decoded bytes, one
character per byte (latin-1); parts with From, To or Cc fields also have keys "from",
"to", "cc": lists of [display name, address]. Without it (policy.compat32), header values are as
received and every payload is the transfer-decoded bytes (latin-1); defects are those
the parser records (for example MissingHeaderBodySeparatorDefect for a header line that
is neither a field nor a fold). A multipart's payload is "".
"""
import json
import sys
from email import message_from_bytes, policy


def walk(msg, number, out, defects, decoded):
    for defect in msg.defects:
        defects.append(f"{number}: {type(defect).__name__}")
    entry = {
        "part": number,
        "type": msg.get_content_type(),
        "boundary": msg.get_boundary(),
        "headers": [[k, str(v)] for k, v in msg.items()],
        "filename": msg.get_filename(),
        "disposition": msg.get_content_disposition(),
        "payload": "",
    }
    if decoded:
        # Address fields as a mail client reads them: (display name, address) pairs.
        for field in ("from", "to", "cc"):
            if msg[field] is not None:
                entry[field] = [[a.display_name, a.addr_spec] for a in msg[field].addresses]
    out.append(entry)
    if msg.is_multipart():
        for i, sub in enumerate(msg.get_payload(), 1):
            walk(sub, f"{number}.{i}" if number else str(i), out, defects, decoded)
    elif decoded and msg.get_content_maintype() == "text":
        entry["payload"] = msg.get_content()
    else:
        body = msg.get_payload(decode=True) or b""
        entry["payload"] = body.decode("latin-1")


def main():
    decoded = "--decoded" in sys.argv[1:]
    msg = message_from_bytes(sys.stdin.buffer.read(), policy=policy.default if decoded else policy.compat32)
    parts, defects = [], []
    walk(msg, "", parts, defects, decoded)
    json.dump({"defects": defects, "parts": parts}, sys.stdout)


if __name__ == "__main__":
    main()
