"""The spam allow and block lists from the webmail, over HTTP: "Always junk
from" on a message page puts the sender on the block list the scorer uses
(the next message from them lands in Junk, and `satchel spam lists` shows
the entry), "Never junk" on the allow list; the settings page lists both
and takes entries off; going back stays on this site."""
import re
import tempfile

import pytest

from conftest import Satchel
from webclient import WebSession

ALICE = "alice@example.test"


def mail(sender, subject):
    return (f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@x.test>\r\n\r\nHello there, a plain note.\r\n")


@pytest.fixture
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.deliver(ALICE, mail("pest@pester.test", "first pest"))
        s.start()
        try:
            w = WebSession(s.ports["http"], ALICE)
            w.satchel = s
            yield w
        finally:
            s.stop()


def mailbox_of(web, subject):
    """The name of the mailbox a message with `subject` is in, over the web's list pages."""
    _, _, page = web.get("/mailboxes")
    for mid, name in re.findall(r'href="/mail/(\d+)"[^>]*>([^<]+)<', page):
        _, _, listing = web.get(f"/mail/{mid}")
        if subject in listing:
            return name.strip()
    return None


def test_block_from_a_message_page_files_the_next_one_in_junk(web):
    status, _, page = web.get(f"{web.inbox}/1")
    assert "Always junk from pest@pester.test" in page and "Never junk from pest@pester.test" in page
    status, headers, _ = web.post("/senders", {
        "list": "block", "op": "add", "pattern": "pest@pester.test", "back": f"{web.inbox}/1"})
    assert status == 303 and headers["location"] == f"{web.inbox}/1"
    _, _, page = web.get(f"{web.inbox}/1")
    assert "pest@pester.test is on your block list" in page, page
    out = web.satchel.cli("spam", "lists", ALICE).stdout.decode()
    assert "block pest@pester.test" in out, out

    web.satchel.deliver(ALICE, mail("pest@pester.test", "second pest"))
    assert mailbox_of(web, "second pest") == "Junk"

    # Off the list from the settings page: the next one is scored as usual.
    _, _, settings = web.get("/settings")
    assert '<span class="pattern">pest@pester.test</span>' in settings
    status, headers, _ = web.post("/senders", {
        "list": "block", "op": "remove", "pattern": "pest@pester.test", "back": "/settings?done=senders"})
    assert status == 303 and headers["location"] == "/settings?done=senders"
    assert "block" not in web.satchel.cli("spam", "lists", ALICE).stdout.decode()
    web.satchel.deliver(ALICE, mail("pest@pester.test", "third pest"))
    assert mailbox_of(web, "third pest") == "INBOX"


def test_allow_a_domain_from_settings(web):
    status, _, _ = web.post("/senders", {"list": "allow", "op": "add", "pattern": "@Pester.test",
                                         "back": "/settings?done=senders"})
    assert status == 303
    assert "allow @pester.test" in web.satchel.cli("spam", "lists", ALICE).stdout.decode()
    _, _, page = web.get(f"{web.inbox}/1")
    assert "@pester.test is on your allow list" in page and "Take off the allow list" in page, page


def test_back_goes_only_to_this_site_and_bad_lists_are_refused(web):
    for evil in ["//evil.test/x", "https://evil.test/", "/\\evil.test"]:
        status, headers, _ = web.post("/senders", {"list": "allow", "op": "add", "pattern": "a@b.test", "back": evil})
        assert status == 303 and headers["location"] == "/settings?done=senders", (evil, headers)
    status, _, body = web.post("/senders", {"list": "friends", "op": "add", "pattern": "a@b.test"})
    assert status == 400 and "no such list" in body
    status, _, body = web.post("/senders", {"list": "block", "op": "add", "pattern": "<a@b.test>"})
    assert status == 400 and "cannot go on a list" in body
