"""IMAP with real clients other than imaplib: imapflow (Node), and every
BODYSTRUCTURE we serve parsing back for the generated mbox and the broken
messages of tests/fixtures/mime."""
import json
import re
import subprocess

import pytest

from conftest import PASSWORD, ROOT

ALICE = "alice@example.test"
NODE_DIR = ROOT / "tests" / "node"
FIXTURES = ROOT / "tests" / "fixtures" / "mime"
GEN_MBOX = ROOT / "tests" / "data" / "gen_mbox.py"

ATTACHMENT = (
    b"From: Dana <dana@remote.test>\r\nSubject: Attachment for imapflow\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n'
    b'--b1\r\nContent-Type: application/pdf; name="cv.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago=\r\n--b1--\r\n"
)


def load_corpus(satchel):
    """The generated mbox (the messages the Dovecot fixture recorded) and every
    broken message of the MIME corpus, into Alice's INBOX."""
    mbox = satchel.dir / "gen.mbox"
    subprocess.run(
        ["python3", str(GEN_MBOX), str(mbox), "100"],
        check=True, capture_output=True,
    )
    satchel.cli("import", ALICE, "--mailbox", "INBOX", str(mbox))
    emls = sorted(FIXTURES.glob("*.eml"))
    for eml in emls:
        satchel.deliver(ALICE, eml.read_bytes())
    return 100 + len(emls)


def test_imapflow(satchel):
    total = load_corpus(satchel)
    satchel.deliver(ALICE, ATTACHMENT)
    out = subprocess.run(
        ["node", str(NODE_DIR / "imapflow-check.mjs"), str(satchel.ports["imap"]), ALICE, PASSWORD],
        capture_output=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()
    r = json.loads(out.stdout)
    assert r["secure"], "imapflow upgraded with STARTTLS"
    special = {m["path"]: m["specialUse"] for m in r["mailboxes"]}
    assert special == {"INBOX": "\\Inbox", "Drafts": "\\Drafts", "Junk": "\\Junk", "Possible Junk": None,
                       "Sent": "\\Sent", "Trash": "\\Trash"}
    assert r["structureErrors"] == []
    assert r["structures"] == total + 1
    assert r["attachmentType"] == "application/pdf" and r["attachmentPart"] == "2"
    assert r["partial"] == "JVBERi0x"
    assert r["download"].startswith("%PDF-1.4"), "download decodes the base64"
    assert r["appendedUid"] == total + 2
    assert r["moved"]["destination"] == "Junk"
    assert r["moved"]["uidMap"] == [[total + 2, 1]]


def parse_imap(data, i=0, depth=0):
    """A strict parser for one IMAP value (list, string, literal, NIL,
    number): raises on anything malformed. Returns (value, next index)."""
    assert depth < 200
    c = data[i:i + 1]
    if c == b"(":
        items, i = [], i + 1
        while data[i:i + 1] != b")":
            if items and data[i:i + 1] == b" ":
                i += 1
            v, i = parse_imap(data, i, depth + 1)
            items.append(v)
        return items, i + 1
    if c == b'"':
        m = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"').match(data, i)
        assert m, data[i:i + 40]
        return m.group(1), m.end()
    if c == b"{":
        m = re.compile(rb"\{(\d+)\}\r\n").match(data, i)
        assert m, data[i:i + 40]
        n = int(m.group(1))
        return data[m.end():m.end() + n], m.end() + n
    m = re.compile(rb"NIL|\d+|[A-Z0-9.]+").match(data, i)
    assert m, data[i:i + 40]
    word = m.group()
    return (None if word == b"NIL" else int(word) if word.isdigit() else word), m.end()


def test_every_bodystructure_parses_back_in_imaplib(satchel):
    total = load_corpus(satchel)
    c = satchel.imap(ALICE)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(BODYSTRUCTURE ENVELOPE BODY)")
    assert typ == "OK"
    # imaplib splits literals out; join each response back into IMAP text.
    responses, current = [], b""
    for item in data:
        if isinstance(item, tuple):
            current += item[0] + b"\r\n" + item[1]
        else:
            current += item
            responses.append(current)
            current = b""
    assert len(responses) == total
    for text in responses:
        m = re.match(rb"(\d+) ", text)
        value, end = parse_imap(text, m.end())
        assert end == len(text), text[end:end + 40]
        fields = dict(zip(value[::2], value[1::2]))
        assert set(fields) == {b"BODYSTRUCTURE", b"ENVELOPE", b"BODY"}, fields.keys()
        assert isinstance(fields[b"BODYSTRUCTURE"], list) and isinstance(fields[b"ENVELOPE"], list)
    c.logout()


def test_imapflow_resyncs_with_qresync(satchel):
    """imapflow with `qresync: true` after another client flagged one
    message and expunged another: reopening INBOX with the UIDVALIDITY and
    HIGHESTMODSEQ it remembered tells it the expunged UID (VANISHED
    (EARLIER)) and the flag change, a CHANGEDSINCE fetch brings only the
    changed message, and a later expunge arrives as VANISHED."""
    for n in range(1, 6):
        satchel.deliver(ALICE, f"Subject: q{n}\r\n\r\nbody {n}\r\n".encode())
    out = subprocess.run(
        ["node", str(NODE_DIR / "imapflow-qresync.mjs"), str(satchel.ports["imap"]), ALICE, PASSWORD],
        capture_output=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()
    r = json.loads(out.stdout)
    assert "QRESYNC" in r["enabled"], r
    assert r["uids"] == [1, 2, 3, 4, 5]
    assert r["qresync"], "imapflow accepted the server's QRESYNC answer"
    assert r["atOpen"]["vanishedEarlier"] == [r["deleted"]], r
    assert [f["uid"] for f in r["atOpen"]["flags"]] == [r["flagged"]], r
    assert "\\Flagged" in r["atOpen"]["flags"][0]["flags"]
    assert [c["uid"] for c in r["changed"]] == [r["flagged"]], r
    assert r["afterFetch"]["vanishedEarlier"] == [r["deleted"]] * 2, "the fetch's VANISHED (EARLIER)"
    assert r["live"] == [1], r
    assert r["exists"] == 3
