"""The webmail live and by keyboard, in a real browser
(tests/node/web-live.mjs): an IMAP client's APPEND appears in the open
list without a navigation (server-sent events from the change feed), and
the Gmail-like keys move, open, go back, show their list and stay out of
the way while typing."""
import tempfile

import pytest

from conftest import Satchel
from webclient import browser_run, steps

ALICE = "alice@example.test"
SUBJECTS = ["Third", "Second", "First"]  # newest first, as the list shows them


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        for n, subject in enumerate(reversed(SUBJECTS)):
            s.put(ALICE, (
                f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
                f"Date: Tue, 02 Jan 2024 1{n}:00:00 +0000\r\n\r\nText {n}.\r\n"
            ).encode())
        s.start()
        try:
            want = {"imap": s.ports["imap"], "subjects": SUBJECTS}
            run = browser_run(s, "web-live.mjs", ALICE, want)
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def test_an_imap_append_appears_in_the_open_list_without_a_reload(web):
    (live,) = steps(web, "live")
    assert live["before"] == SUBJECTS, live
    assert live["after"] == ["Appended elsewhere"] + SUBJECTS, live
    assert live["navigations"] == 0, live
    assert live["unread"] == "4", live
    assert web["run"]["pageErrors"] == []


def test_keyboard_navigation(web):
    (keys,) = steps(web, "keys")
    # The list is the appended message, then SUBJECTS: j j puts the cursor
    # on the second row, k back on the first... of the two moves.
    assert keys["cursor"] == 1 and keys["cursorAfterK"] == 0, keys
    assert keys["opened"] == "Appended elsewhere", keys
    assert keys["back"].startswith("/mail/") and keys["back"].count("/") == 2, keys
    assert keys["help"] and "Keyboard shortcuts" in keys["help"] and "reply all" in keys["help"], keys
    assert keys["helpGone"], keys
    assert keys["compose"] == "/compose", keys
    assert keys["typed"] == "jk?" and keys["stillCompose"] == "/compose", keys
    assert keys["inbox"].startswith("/mail/"), keys
    # e: to Archive, made on first use; v then Enter: to the mailbox chosen.
    archived, moved = keys["archived"], keys["moved"]
    assert archived and moved and archived != moved, keys
    assert keys["archive"]["stayed"] and archived not in keys["archive"]["inbox"], keys
    assert "Archive" in keys["archive"]["boxes"], keys
    assert keys["moveFocus"] == "to", keys
    assert keys["move"]["stayed"] and moved not in keys["move"]["inbox"], keys
    assert archived in keys["archiveList"] and moved in keys["trashList"], keys
