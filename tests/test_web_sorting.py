"""Sorting in the webmail, in a real browser (tests/node/web-sort.mjs): Junk
and back (each move trains the filter, as an IMAP move does), releasing a
message from Possible Junk, an attachment downloaded with its bytes, flags,
the spam score, delete and empty Trash; and what a forged or foreign form
gets. Screenshots go to tests/artifacts/web/."""
import base64
import http.client
import re
import tempfile
import time

import pytest

from conftest import Satchel
from webclient import WebSession, browser_run, steps

ALICE = "alice@example.test"
BOB = "bob@example.test"

JUNKY = "Your parcel is waiting"
POSSIBLE = "Invoice from a new supplier"
ATTACHED = "Holiday photo"
SCORED = "Scored on arrival"
DELETABLE = "Old newsletter"
DRAGGED = ["Dragged to Trash", "Picked along"]
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def mail(subject, body="Hello.", sender="Carol <carol@remote.test>", n=1, extra=""):
    return (
        f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 02 Jan 2024 1{n}:00:00 +0000\r\nMessage-ID: <sort-{n}@remote.test>\r\n"
        f"MIME-Version: 1.0\r\n{extra or 'Content-Type: text/plain; charset=utf-8'}\r\n\r\n{body}\r\n"
    ).encode()


def with_attachments():
    png = base64.encodebytes(PNG).decode().replace("\n", "\r\n")
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nThe beach, see attached.\r\n"
        "--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=beach.png\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{png}"
        "--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n"
        "<script>alert(1)</script>\r\n--b--"
    )
    return mail(ATTACHED, body, n=3, extra="Content-Type: multipart/mixed; boundary=b")


def trained(s):
    """The filter's trained-message counts, per model: {scope: (spam, ham)}
    (a move trains the server's model and the account's own)."""
    rows = s.sql("SELECT scope, spam, ham FROM bayes_totals")
    return {scope: (spam, ham) for scope, spam, ham in rows}


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.add_user(BOB)
        s.put(ALICE, mail(JUNKY, n=1))
        s.put(ALICE, mail(POSSIBLE, n=2), mailbox="Possible Junk")
        s.put(ALICE, with_attachments())
        s.put(ALICE, mail(DELETABLE, n=5))
        s.put(ALICE, mail(DRAGGED[0], n=6))
        s.put(ALICE, mail(DRAGGED[1], n=7))
        s.deliver(ALICE, mail(SCORED, n=4))
        before = trained(s)
        s.start()
        try:
            want = {"junky": JUNKY, "possible": POSSIBLE, "attached": ATTACHED, "scored": SCORED, "deletable": DELETABLE,
                    "dragged": DRAGGED}
            run = browser_run(s, "web-sort.mjs", ALICE, want)
            yield {"run": run, "satchel": s, "port": s.ports["http"], "before": before}
        finally:
            s.stop()


def has(subjects, text):
    return sum(1 for s in subjects if text in s)


def wait_trained(s, check):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = trained(s)
        if check(got):
            return got
        time.sleep(0.3)
    return trained(s)


def request(web, method, path, cookie, body=None):
    c = http.client.HTTPConnection("127.0.0.1", web["port"], timeout=30)
    headers = {"Cookie": f"satchel_session={cookie}"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def test_junk_and_back_moves_the_message_and_trains_the_filter(web):
    to_junk, not_junk = steps(web, "toJunk", "notJunk")
    assert has(to_junk["junk"], JUNKY) == 1 and has(to_junk["inbox"], JUNKY) == 0, to_junk
    assert has(not_junk["junk"], JUNKY) == 0 and has(not_junk["inbox"], JUNKY) == 1, not_junk
    before = web["before"]

    def delta(now):
        return {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in now.items()}

    # Into Junk: spam once; out of Junk and out of Possible Junk: ham twice;
    # the same in every model the moves train.
    now = wait_trained(web["satchel"], lambda t: any(d[1] >= 2 for d in delta(t).values()))
    changed = {k: d for k, d in delta(now).items() if d != (0, 0)}
    assert changed and all(d == (1, 2) for d in changed.values()), (before, now)


def test_a_message_is_released_from_possible_junk(web):
    (release,) = steps(web, "release")
    assert release["review"] and "Not junk" in release["review"], release
    assert has(release["possible"], POSSIBLE) == 0, release
    assert has(release["inbox"], POSSIBLE) == 1, release
    # Posted by the page's script: the list changed without a reload.
    assert release["stayed"] is True, release


def test_an_attachment_downloads_with_its_bytes_and_html_never_renders(web):
    (a,) = steps(web, "attachment")
    assert [l["text"] for l in a["links"]] == ["beach.png", "page.html"], a["links"]
    assert a["name"] == "beach.png"
    assert base64.b64decode(a["base64"]) == PNG
    assert a["preview"] == {"loaded": True, "width": 1}, a["preview"]
    # The HTML attachment comes as a download of opaque bytes, never a page.
    status, headers, body = request(web, "GET", a["links"][1]["href"], web["run"]["cookie"])
    assert status == 200
    assert headers["content-type"] == "application/octet-stream", headers
    assert headers["content-disposition"].startswith("attachment;"), headers
    assert b"<script>" in body


def test_flag_and_mark_unread(web):
    (f,) = steps(web, "flags")
    assert re.fullmatch(r"/mail/\d+/\d+", f["path"]), f
    assert f["unflagOffered"], f
    assert re.fullmatch(r"/mail/\d+", f["unreadPath"]), f
    assert "unread" in f["classes"] and "flagged" in f["classes"], f


def test_the_spam_score_and_reasons_are_shown(web):
    (s,) = steps(web, "scored")
    assert s["spam"] and re.match(r"-?\d+ \S", s["spam"]), s


def test_delete_goes_to_trash_and_empty_trash_removes_it(web):
    (d,) = steps(web, "delete")
    assert has(d["inbox"], DELETABLE) == 0 and has(d["trash"], DELETABLE) == 1, d
    assert d["stayed"] is True, d
    assert d["trashAfterEmpty"] == [] and d["emptyText"], d


def test_forms_without_the_token_or_for_another_account_are_refused(web):
    steps(web, "login", "csrf")
    alice = web["run"]["cookie"]
    inbox = web["run"]["login"]["boxes"]["INBOX"]
    status, _, body = request(web, "POST", f"{inbox}/act", alice, body="action=delete&uid=1")
    assert status == 403 and b"security token" in body, (status, body)
    status, _, _ = request(web, "POST", f"{inbox}/act", alice, body="action=delete&uid=1&csrf=forged")
    assert status == 403
    # Bob, with his own valid token, names Alice's mailbox.
    bob = WebSession(web["port"], BOB)
    status, _, _ = bob.post(f"{inbox}/act", {"action": "delete", "uid": "1"})
    assert status == 404, status
    status, _, _ = bob.post(f"{inbox}/empty", {})
    assert status == 404, status


def test_messages_dragged_onto_a_mailbox_move_there(web):
    (d,) = steps(web, "drag")
    assert d["stayed"] is True, d
    for subject in DRAGGED:
        assert has(d["inbox"], subject) == 0 and has(d["trash"], subject) == 1, d
