#!/usr/bin/env python3
"""Python's email parser as an independent oracle for what a server received.

Reads one message (bytes) on stdin and prints JSON:
  {"defects": ["<part>: <DefectClass>", ...],
   "parts": [{"part": "1.2", "type": "text/plain", "boundary": null or "...",
              "payload": "<decoded body, latin-1>", "headers": [["Name", "value"], ...]}, ...]}
Parts are numbered as IMAP numbers sections ("" for the message itself); the payload of a
multipart is "". Defects are those the parser records on any part (for example
MissingHeaderBodySeparatorDefect for a header line that is neither a field nor a fold).
"""
import json
import sys
from email import message_from_bytes, policy


def walk(msg, number, out, defects):
    for defect in msg.defects:
        defects.append(f"{number}: {type(defect).__name__}")
    entry = {
        "part": number,
        "type": msg.get_content_type(),
        "boundary": msg.get_boundary(),
        "headers": [[k, str(v)] for k, v in msg.items()],
        "payload": "",
    }
    out.append(entry)
    if msg.is_multipart():
        for i, sub in enumerate(msg.get_payload(), 1):
            walk(sub, f"{number}.{i}" if number else str(i), out, defects)
    else:
        body = msg.get_payload(decode=True) or b""
        entry["payload"] = body.decode("latin-1")


def main():
    msg = message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
    parts, defects = [], []
    walk(msg, "", parts, defects)
    json.dump({"defects": defects, "parts": parts}, sys.stdout)


if __name__ == "__main__":
    main()
