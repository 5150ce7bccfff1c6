#!/usr/bin/env python3
"""Seeds each fuzz target's corpus from the test suite's own inputs, so
that fuzzing starts from real commands and messages rather than nothing:
the MIME fixtures, the IMAP commands of the recorded Dovecot session, the
Sieve scripts of the RFC tests, and SMTP/POP3 lines and replies as clients
and servers send them. Only empty corpus folders are seeded.

    fuzz/seed.py CORPUS_DIR TARGET...
"""
import hashlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def emls():
    for p in sorted((ROOT / "tests/fixtures/mime").glob("*.eml")):
        yield p.read_bytes()


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


def imap_commands():
    for line in open(ROOT / "tests/fixtures/dovecot/imap_session.jsonl", encoding="utf-8"):
        record = json.loads(line)
        if "tag" in record:
            yield f"{record['tag']} {record['command']}\r\n".encode()


def sieve_scripts():
    text = (ROOT / "crates/sieve/tests/rfc.rs").read_text()
    for script in re.findall(r'r#"(.*?)"#', text, re.S):
        if "require" in script or "if " in script:
            yield script.encode()


SMTP_LINES = [
    b"EHLO client.example.test", b"HELO x", b"MAIL FROM:<a@example.test> SIZE=1000 BODY=8BITMIME",
    b"MAIL FROM:<> SMTPUTF8", b"RCPT TO:<Postmaster>", b"RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE",
    b"DATA", b"BDAT 100 LAST", b"AUTH PLAIN AGFAYgBj", b"STARTTLS", b"RSET", b"NOOP", b"QUIT",
    b"VRFY b", b"MAIL FROM:<\"quoted local\"@[192.0.2.1]>",
]
POP3_LINES = [
    b"USER alice@example.test", b"PASS secret words", b"AUTH PLAIN AGFAYgBj", b"AUTH", b"STAT",
    b"LIST", b"LIST 1", b"UIDL 2", b"RETR 1", b"TOP 1 10", b"DELE 3", b"RSET", b"NOOP", b"QUIT",
    b"CAPA", b"STLS", b"UTF8", b"APOP a b",
]
SMTP_REPLIES = [
    b"220 mx.example.test ESMTP\r\n",
    b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n",
    b"550-5.1.1 No such user\r\n550 5.1.1 here\r\n",
    b"451 4.3.0 try later\r\n354 go ahead\r\n250 2.0.0 queued as X\r\n",
]


def seeds(target):
    if target in ("mime_message", "mime_search", "mime_decode"):
        yield from emls()
    elif target == "smtp_data":
        # The piece sizes first (four bytes), then a message as DATA sends it.
        for m in emls():
            body = crlf(m).replace(b"\r\n.", b"\r\n..")
            yield b"\x03\x07\x01\x10" + body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        yield b"\x01\x01\x01\x01Subject: a\r\n\r\nhi\n.\nMAIL FROM:<x@y>\r\n.\r\n"
    elif target == "imap_command":
        yield from imap_commands()
    elif target == "sieve_script":
        yield from sieve_scripts()
    elif target == "smtp_command":
        yield from SMTP_LINES
    elif target == "pop3_command":
        yield from POP3_LINES
    elif target == "smtp_reply":
        yield from SMTP_REPLIES


def main():
    corpus = pathlib.Path(sys.argv[1])
    for target in sys.argv[2:]:
        folder = corpus / target
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            continue
        n = 0
        for data in seeds(target):
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
            n += 1
        print(f"seeded {target} with {n} inputs")


if __name__ == "__main__":
    main()
