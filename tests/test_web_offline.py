"""Offline reading in the webmail, in a real browser
(tests/node/web-offline.mjs): the service worker keeps the list's recent
messages without marking them read; with the network cut, a kept message
opens and one never kept says so; a logout clears what was kept."""
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
            run = browser_run(s, "web-offline.mjs", ALICE)
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


def test_a_logout_clears_what_was_kept(web):
    (out,) = steps(web, "logout")
    assert out["path"] == "/login" and out["kept"] == [], out
