"""Offline reading in the webmail, in a real browser
(tests/node/web-offline.mjs): the service worker keeps the list's recent
messages without marking them read; with the network cut, a kept message
opens and one never kept says so; a reply and a delete made offline wait
on the device and are done when the network is back; a logout clears what
was kept."""
import tempfile

import pytest

from conftest import Satchel
from webclient import browser_run, steps

ALICE = "alice@example.test"
SUBJECTS = ["Newest", "Middle", "Oldest"]


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        for n, subject in enumerate(reversed(SUBJECTS)):
            s.put(ALICE, (
                f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
                f"Date: Tue, 02 Jan 2024 1{n}:00:00 +0000\r\n\r\nOffline text {subject}.\r\n"
            ).encode())
        s.start()
        try:
            run = browser_run(s, "web-offline.mjs", ALICE, {"deleted": "Oldest"})
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def test_recent_messages_are_kept_without_being_read(web):
    (kept,) = steps(web, "kept")
    assert len(kept["wanted"]) == 3 and set(kept["wanted"]) <= set(kept["have"]), kept
    assert kept["unreadAfter"] == 3, kept


def test_a_kept_message_opens_with_the_network_cut(web):
    (off,) = steps(web, "offline")
    assert off["fromServiceWorker"] is True, off
    assert off["subject"] == "Middle" and "Offline text Middle." in off["body"], off
    assert off["missing"]["status"] == 503 and "offline" in off["missing"]["text"], off


def test_a_reply_and_a_delete_made_offline_are_done_when_back(web):
    (off,) = steps(web, "offlineChanges")
    assert off["replyKept"], off
    assert off["replyTo"].endswith("carol@remote.test"), off
    assert "sent when the network is back" in off["replyNote"], off
    assert "2 changes made offline" in off["banner"], off
    # Gone from the list at once, on the device.
    assert "Oldest" not in off["listOffline"] and "Middle" in off["listOffline"], off
    assert off["waitingAfter"] == 0, off
    s = web["satchel"]
    c = s.imap(ALICE)
    sent = {}
    for box in ("Sent", "Trash", "INBOX"):
        c.select(f'"{box}"', readonly=True)
        _, data = c.search(None, "ALL")
        subjects = []
        for n in data[0].split():
            _, parts = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(parts[0][1].decode().strip())
        sent[box] = subjects
    c.logout()
    assert sent["Sent"] == ["Subject: Re: Middle"], sent
    assert "Subject: Oldest" in sent["Trash"] and "Subject: Oldest" not in sent["INBOX"], sent


def test_a_logout_clears_what_was_kept(web):
    (out,) = steps(web, "logout")
    assert out["path"] == "/login" and out["kept"] == [], out
