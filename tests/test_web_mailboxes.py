"""The webmail's mailboxes page over HTTP: create, rename and delete
(confirmed) what IMAP then lists; the store's refusals (a default mailbox,
a name taken, a bad name) said on the page; hostile names shown as text."""
import tempfile

import pytest

from conftest import Satchel
from webclient import WebSession

ALICE = "alice@example.test"


@pytest.fixture
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            yield s, WebSession(s.ports["http"], ALICE)
        finally:
            s.stop()


def imap_names(s):
    c = s.imap(ALICE)
    _, data = c.list()
    c.logout()
    return {line.decode().rsplit(' "/" ', 1)[1].strip('"') for line in data}


def test_create_rename_delete(web):
    s, w = web
    status, headers, _ = w.post("/mailboxes", {"action": "create", "name": "Clients/ACME"})
    assert status == 303 and headers["location"] == "/mailboxes?done=create"
    assert {"Clients", "Clients/ACME"} <= imap_names(s)
    status, _, _ = w.post("/mailboxes", {"action": "rename", "name": "Clients/ACME", "to": "Clients/Acme Corp"})
    assert status == 303
    names = imap_names(s)
    assert "Clients/Acme Corp" in names and "Clients/ACME" not in names
    status, _, page = w.post("/mailboxes", {"action": "delete", "name": "Clients/Acme Corp"})
    assert status == 400 and "Tick the box" in page
    assert "Clients/Acme Corp" in imap_names(s)
    status, _, _ = w.post("/mailboxes", {"action": "delete", "name": "Clients/Acme Corp", "confirm": "1"})
    assert status == 303
    assert "Clients/Acme Corp" not in imap_names(s)


def test_refusals_are_said_on_the_page(web):
    s, w = web
    status, _, page = w.post("/mailboxes", {"action": "rename", "name": "Sent", "to": "Outbox"})
    assert status == 400 and "default mailboxes" in page, page[:500]
    status, _, page = w.post("/mailboxes", {"action": "delete", "name": "INBOX", "confirm": "1"})
    assert status == 400 and "INBOX cannot be deleted" in page
    w.post("/mailboxes", {"action": "create", "name": "Taken"})
    status, _, page = w.post("/mailboxes", {"action": "create", "name": "Taken"})
    assert status == 400 and "already exists" in page
    status, _, page = w.post("/mailboxes", {"action": "create", "name": "bad\x01name"})
    assert status == 400 and "invalid mailbox name" in page.lower()
    status, _, _ = w.post("/mailboxes", {"action": "create", "name": "x"}, csrf=False)
    assert status == 403
    assert "Outbox" not in imap_names(s) and "x" not in imap_names(s)


def test_a_hostile_name_is_shown_as_text(web):
    s, w = web
    c = s.imap(ALICE)
    typ, _ = c.create('"<img src=x onerror=alert(1)>"')
    c.logout()
    assert typ == "OK"
    for path in ("/mailboxes", w.inbox):
        status, _, page = w.get(path)
        assert status == 200
        assert "<img src=x" not in page and "&#60;img src=x onerror=alert(1)&#62;" in page, path
