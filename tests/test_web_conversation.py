"""The webmail's conversation view over HTTP: a message with the others of
its thread (by Message-ID, In-Reply-To and References), from its mailbox
and from Sent, oldest first; mail of other threads left out."""
import re
import tempfile

import pytest

from conftest import Satchel
from webclient import WebSession

ALICE = "alice@example.test"


def mail(subject, mid, date, refs="", sender="Bob <bob@remote.test>", to=ALICE, body="Text."):
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}>\r\n"
    if refs:
        ids = " ".join(f"<{r}>" for r in refs)
        head += f"In-Reply-To: <{refs[-1]}>\r\nReferences: {ids}\r\n"
    return (head + f"\r\n{body}\r\n").encode()


@pytest.fixture
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.put(ALICE, mail("Picnic", "a@remote.test", "Mon, 01 Jan 2024 10:00:00 +0000", body="Picnic on Sunday?"))
        s.put(ALICE, mail("Re: Picnic", "b@example.test", "Mon, 01 Jan 2024 11:00:00 +0000", ["a@remote.test"],
                          sender=f"Alice <{ALICE}>", to="bob@remote.test", body="Yes, I bring bread."), mailbox="Sent")
        s.put(ALICE, mail("Unrelated", "u@remote.test", "Mon, 01 Jan 2024 11:30:00 +0000", body="Other things."))
        s.put(ALICE, mail("Re: Picnic", "c@remote.test", "Mon, 01 Jan 2024 12:00:00 +0000",
                          ["a@remote.test", "b@example.test"], body="Great, see you."))
        s.start()
        try:
            yield WebSession(s.ports["http"], ALICE)
        finally:
            s.stop()


def conversation(web, uid):
    status, _, page = web.get(f"{web.inbox}/{uid}/conversation")
    assert status == 200, page[:300]
    return re.findall(r'<pre class="body-text">([^<]*)</pre>', page), page


def test_a_thread_across_inbox_and_sent_in_order(web):
    bodies, page = conversation(web, 1)
    assert [b.strip() for b in bodies] == ["Picnic on Sunday?", "Yes, I bring bread.", "Great, see you."], bodies
    assert "open in Sent" in page and "Other things." not in page
    # From the last message, the same thread.
    bodies, _ = conversation(web, 3)
    assert len(bodies) == 3


def test_a_message_alone_is_its_own_conversation(web):
    bodies, _ = conversation(web, 2)
    assert [b.strip() for b in bodies] == ["Other things."]
    status, _, _ = web.get(f"{web.inbox}/99/conversation")
    assert status == 404
