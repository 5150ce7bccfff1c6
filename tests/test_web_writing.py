"""Writing in the webmail, in a real browser (tests/node/web-write.mjs): a
reply with a file from the picker arrives at the recipient with its
threading fields and the file, lands in Sent once, and marks the original
answered; a forward as attachment carries the original; a draft saved twice
is one message in Drafts over IMAP, and sending it empties Drafts; a wrong
address is refused with the form kept."""
import email
import email.utils
import http.client
import re
import tempfile

import pytest

from conftest import Satchel
from webclient import WebSession, browser_run, steps

ALICE = "alice@example.test"
BOB = "bob@example.test"
ORIGINAL = "Plans for Friday"
FILE_BYTES = b"agenda: lunch, then the park\n"
AUTOSAVED = "Typed, never saved by hand"


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.add_user(BOB)
        s.put(ALICE, (
            f"From: Bob <{BOB}>\r\nTo: {ALICE}\r\nSubject: {ORIGINAL}\r\n"
            "Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <plans-1@example.test>\r\n"
            "\r\nShall we meet at noon?\r\n"
        ).encode())
        attach = s.dir / "agenda.txt"
        attach.write_bytes(FILE_BYTES)
        s.start()
        try:
            want = {"original": ORIGINAL, "other": BOB, "file": str(attach), "autosaved": AUTOSAVED}
            run = browser_run(s, "web-write.mjs", ALICE, want)
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def addr(field):
    return email.utils.parseaddr(field)[1]


def messages(s, user, mailbox):
    """(flags, parsed message) of every message in the mailbox."""
    c = s.imap(user)
    typ, _ = c.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK", mailbox
    _, data = c.search(None, "ALL")
    out = []
    for n in data[0].split():
        _, parts = c.fetch(n, "(FLAGS BODY.PEEK[])")
        out.append((parts[0][0].decode(), email.message_from_bytes(parts[0][1])))
    c.logout()
    return out


def test_a_reply_with_an_attachment_arrives_threaded_and_is_in_sent_once(web):
    (reply,) = steps(web, "reply")
    assert reply["prefilled"]["to"] == BOB, reply["prefilled"]
    assert reply["prefilled"]["subject"] == f"Re: {ORIGINAL}"
    assert "> Shall we meet at noon?" in reply["prefilled"]["body"], reply["prefilled"]
    assert reply["status"] == 200 and re.fullmatch(r"/mail/\d+", reply["path"]), reply
    assert f"Re: {ORIGINAL}" in reply["list"], reply  # the Sent list
    s = web["satchel"]
    got = [m for _, m in messages(s, BOB, "INBOX") if m["Subject"] == f"Re: {ORIGINAL}"]
    assert len(got) == 1, [m["Subject"] for _, m in messages(s, BOB, "INBOX")]
    m = got[0]
    assert addr(m["From"]) == ALICE and addr(m["To"]) == BOB
    assert m["In-Reply-To"] == "<plans-1@example.test>"
    assert "<plans-1@example.test>" in m["References"]
    parts = {p.get_filename(): p for p in m.walk() if p.get_filename()}
    assert parts["agenda.txt"].get_payload(decode=True) == FILE_BYTES, parts
    body = next(p for p in m.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert "Noon suits me." in body.get_payload(decode=True).decode()
    sent = [m for _, m in messages(s, ALICE, "Sent") if m["Subject"] == f"Re: {ORIGINAL}"]
    assert len(sent) == 1
    [(flags, _)] = [(f, m) for f, m in messages(s, ALICE, "INBOX") if m["Subject"] == ORIGINAL]
    assert "\\Answered" in flags, flags


def test_a_forward_as_attachment_carries_the_original(web):
    (fwd,) = steps(web, "forward")
    assert fwd["prefilled"]["subject"] == f"Fwd: {ORIGINAL}", fwd
    assert fwd["note"] and "attachment" in fwd["note"], fwd
    got = [m for _, m in messages(web["satchel"], BOB, "INBOX") if m["Subject"] == f"Fwd: {ORIGINAL}"]
    assert len(got) == 1
    inner = [p for p in got[0].walk() if p.get_content_type() == "message/rfc822"]
    assert len(inner) == 1, [p.get_content_type() for p in got[0].walk()]
    assert inner[0].get_payload()[0]["Message-ID"] == "<plans-1@example.test>"


def test_a_draft_saved_twice_is_one_draft_and_sending_it_empties_drafts(web):
    draft, sent = steps(web, "draft", "draftSent")
    # Bob was written to before (the reply): offered for completion.
    assert BOB in draft["people"], draft["people"]
    assert draft["first"]["saved"], draft
    assert re.fullmatch(r"/compose\?draft=\d+&saved=1", draft["first"]["path"]), draft
    assert draft["second"]["form"]["body"].startswith("First words. Second thoughts."), draft
    assert draft["second"]["form"]["to"] == BOB and draft["second"]["form"]["subject"] == "Draft in progress"
    assert sent["status"] == 200, sent
    s = web["satchel"]
    assert messages(s, ALICE, "Drafts") == []
    sent_copies = [m for _, m in messages(s, ALICE, "Sent") if m["Subject"] == "Draft in progress"]
    assert len(sent_copies) == 1
    arrived = [m for _, m in messages(s, BOB, "INBOX") if m["Subject"] == "Draft in progress"]
    assert len(arrived) == 1 and "Second thoughts." in arrived[0].get_payload(decode=True).decode()


def test_a_draft_is_in_drafts_over_imap_while_it_is_one():
    """Saved from the web, read by an IMAP client: \\Draft, the text, once."""
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            w = WebSession(s.ports["http"], ALICE)
            csrf = w.csrf
            cookie = w.cookie
            c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
            boundary = "xyzzy"
            fields = {"csrf": csrf, "to": BOB, "subject": "Half written", "body": "To be continued", "action": "draft"}
            body = "".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()
            ) + f"--{boundary}--\r\n"
            c.request("POST", "/compose", body=body.encode(), headers={
                "Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"})
            r = c.getresponse()
            r.read()
            assert r.status == 303, r.status
            [(flags, m)] = messages(s, ALICE, "Drafts")
            assert "\\Draft" in flags and "\\Seen" in flags, flags
            assert m["Subject"] == "Half written" and addr(m["To"]) == BOB
            assert "To be continued" in m.get_payload(decode=True).decode()
        finally:
            s.stop()


def test_a_draft_is_saved_as_it_is_typed_with_a_dropped_file(web):
    (a,) = steps(web, "autosave")
    assert a["picked"] == ["dropped.txt"], a
    assert a["stayed"] and a["firstUid"] != "0", a
    # The file went into the draft, listed with its Remove box, and stayed
    # through the second save.
    assert "Remove dropped.txt" in a["attached"], a
    assert "Draft saved" in a["banner"], a
    assert a["sent"]["status"] == 200, a
    s = web["satchel"]
    assert not [m for _, m in messages(s, ALICE, "Drafts") if m["Subject"] == AUTOSAVED]
    [m] = [m for _, m in messages(s, BOB, "INBOX") if m["Subject"] == AUTOSAVED]
    files = {p.get_filename(): p.get_payload(decode=True) for p in m.walk() if p.get_filename()}
    assert files == {"dropped.txt": b"dropped bytes\n"}, files
    body = next(p for p in m.walk() if p.get_content_type() == "text/plain" and not p.get_filename())
    assert "Saved as I typed, twice." in body.get_payload(decode=True).decode()


def test_a_wrong_address_is_refused_and_the_form_kept(web):
    (bad,) = steps(web, "badAddress")
    assert bad["status"] == 400, bad
    assert bad["error"] and "not an email address" in bad["error"], bad
    assert bad["form"]["subject"] == "Kept subject" and bad["form"]["to"] == "bob at example", bad


def test_a_taken_up_draft_keeps_its_attachments_until_one_is_removed():
    """A draft saved with files and opened again keeps them when saved or
    sent again without picking them anew; a ticked "Remove" drops one."""
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.add_user(BOB)
        s.start()
        try:
            w = WebSession(s.ports["http"], ALICE)
            head = [("to", BOB), ("subject", "With files"), ("draft_uid", "0")]
            status, headers, _ = w.post_multipart("/compose", head + [("body", "v1"), ("action", "draft")], [
                ("attachment", "plan.txt", b"the plan\n", "text/plain"),
                ("attachment", "photo.png", b"\x89PNG\r\n\x1a\nfake", "image/png")])
            assert status == 303, status
            uid = re.fullmatch(r"/compose\?draft=(\d+)&saved=1", headers["location"]).group(1)
            _, _, page = w.get(headers["location"])
            assert "Remove plan.txt" in page and "Remove photo.png" in page, page

            # Saved again with new words and no file picked: both stay.
            status, headers, _ = w.post_multipart("/compose", [
                ("to", BOB), ("subject", "With files"), ("draft_uid", uid), ("body", "v2"), ("action", "draft")])
            assert status == 303
            uid = re.fullmatch(r"/compose\?draft=(\d+)&saved=1", headers["location"]).group(1)
            [(_, m)] = messages(s, ALICE, "Drafts")
            files = {p.get_filename(): p.get_payload(decode=True) for p in m.walk() if p.get_filename()}
            assert files == {"plan.txt": b"the plan\n", "photo.png": b"\x89PNG\r\n\x1a\nfake"}, files

            # Sent with the photo ticked off and one more file: plan and notes go.
            status, _, _ = w.post_multipart("/compose", [
                ("to", BOB), ("subject", "With files"), ("draft_uid", uid), ("body", "v3"), ("drop", "1"),
                ("action", "send")], [("attachment", "notes.txt", b"notes\n", "text/plain")])
            assert status == 303
            assert messages(s, ALICE, "Drafts") == []
            [m] = [m for _, m in messages(s, BOB, "INBOX") if m["Subject"] == "With files"]
            names = [p.get_filename() for p in m.walk() if p.get_filename()]
            assert names == ["plan.txt", "notes.txt"], names
        finally:
            s.stop()
