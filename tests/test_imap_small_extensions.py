"""The small IMAP extensions of issue 18, over a raw socket: WITHIN (RFC
5032: SEARCH OLDER/YOUNGER by seconds against the internal date),
STATUS=SIZE (RFC 8438) and STATUS DELETED-STORAGE (RFC 9208: what an
EXPUNGE would free, in KiB, rounded up)."""
import datetime
import tempfile

import pytest

from conftest import Satchel
from test_imap_qresync import session
from test_imap_sort import one

ALICE = "alice@example.test"


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def append(r, body, when=None):
    data = body.encode()
    date = f' "{when.strftime("%d-%b-%Y %H:%M:%S +0000")}"' if when else ""
    r.send(f"a APPEND INBOX (){date} {{{len(data)}+}}")
    r.s.sendall(data + b"\r\n")
    line = r.f.readline()
    assert line.startswith(b"a OK"), line


def test_within_and_status_sizes(server):
    r = session(server, enable=False)
    _, caps = r.cmd("CAPABILITY")
    untagged, _ = r.cmd("CAPABILITY")
    assert b" WITHIN" in untagged[0] and b" STATUS=SIZE" in untagged[0], untagged
    two_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    old = "Subject: old\r\n\r\n" + "x" * 3000 + "\r\n"
    new = "Subject: new\r\n\r\nhello\r\n"
    append(r, old, two_days_ago)
    append(r, new)
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID SEARCH YOUNGER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 2", untagged
    untagged, _ = r.cmd("UID SEARCH OLDER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 1", untagged
    untagged, _ = r.cmd("UID SEARCH OLDER 259200")
    assert one(untagged, "* SEARCH") == "* SEARCH", untagged
    untagged, _ = r.cmd("UID SEARCH NOT YOUNGER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 1", untagged
    _, ok = r.cmd("SEARCH YOUNGER 0")
    assert b" BAD " in ok, ok

    untagged, _ = r.cmd("STATUS INBOX (SIZE DELETED-STORAGE)")
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (SIZE {len(old) + len(new)} DELETED-STORAGE 0)"
    r.cmd("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = r.cmd("STATUS INBOX (DELETED-STORAGE DELETED)")
    kib = -(-len(old) // 1024)
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (DELETED-STORAGE {kib} DELETED 1)", untagged
    r.cmd("EXPUNGE")
    untagged, _ = r.cmd("STATUS INBOX (SIZE DELETED-STORAGE)")
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (SIZE {len(new)} DELETED-STORAGE 0)"
