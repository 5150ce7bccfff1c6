"""SORT and THREAD over a raw socket, beyond what the Dovecot differential
(test_imap_sort_vs_dovecot.py) covers: ESORT's RETURN options (RFC 5267
3.2: MIN and MAX in sort order, ALL in sort order, COUNT, SAVE for a later
command), refused charsets, a hostile References chain, messages stored
before sort keys were kept (keyed at the first sort, then kept), and
expunges another session made meanwhile."""
import tempfile

import pytest

from conftest import Satchel
from test_imap_qresync import session

ALICE = "alice@example.test"


def msg(subject, date, frm="Ana <ana@example.org>", extra=""):
    return (f"From: {frm}\r\nTo: bob@example.net\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\n{extra}\r\nbody\r\n")


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.put(ALICE, msg("Charlie", "Tue, 05 Mar 2024 10:00:00 +0000"))
        s.put(ALICE, msg("alpha", "Mon, 04 Mar 2024 10:00:00 +0000", "Zoe <zoe@example.org>"))
        s.put(ALICE, msg("Re: Bravo", "Wed, 06 Mar 2024 10:00:00 +0000"))
        s.put(ALICE, msg("bravo", "Sun, 03 Mar 2024 10:00:00 +0000", "Bea <bea@example.org>"))
        s.start()
        try:
            yield s
        finally:
            s.stop()


def one(untagged, prefix):
    lines = [l.decode().strip() for l in untagged if l.startswith(prefix.encode())]
    assert len(lines) == 1, untagged
    return lines[0]


def test_sort_and_esort(server):
    r = session(server, enable=False)
    r.cmd("SELECT INBOX")
    untagged, ok = r.cmd("UID SORT (SUBJECT) UTF-8 ALL")
    # "Re: Bravo" and "bravo" share a base subject: sequence order decides.
    assert one(untagged, "* SORT") == "* SORT 2 3 4 1", untagged
    untagged, _ = r.cmd("SORT (REVERSE DATE) UTF-8 ALL")
    assert one(untagged, "* SORT") == "* SORT 3 1 2 4"
    untagged, _ = r.cmd("UID SORT (FROM REVERSE DATE) UTF-8 NOT FROM zoe")
    assert one(untagged, "* SORT") == "* SORT 3 1 4"
    # ESORT: MIN/MAX are the first and last in sort order, not the
    # smallest and largest numbers; ALL keeps the order.
    untagged, ok = r.cmd("UID SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    line = one(untagged, "* ESEARCH")
    assert line.startswith("* ESEARCH (TAG \"r"), line
    assert line.endswith(" UID MIN 4 MAX 3 COUNT 4 ALL 4,2,1,3"), line
    untagged, _ = r.cmd("SORT RETURN () (SUBJECT) UTF-8 ALL")
    assert one(untagged, "* ESEARCH").endswith(") ALL 2,3,4,1")
    untagged, _ = r.cmd("SORT RETURN (COUNT) (SUBJECT) UTF-8 SUBJECT nothing")
    assert one(untagged, "* ESEARCH").endswith(") COUNT 0")
    # SAVE: the result is $ for the next command (RFC 5182).
    untagged, ok = r.cmd("UID SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT bravo")
    assert not any(l.startswith(b"* ESEARCH") for l in untagged) and b"OK" in ok
    untagged, _ = r.cmd("UID FETCH $ (UID)")
    assert sorted(l.split()[4].rstrip(b")") for l in untagged) == [b"3", b"4"], untagged
    # A charset nobody decodes: NO [BADCHARSET] naming the ones we do.
    _, ok = r.cmd("SORT (DATE) KOI8-R ALL")
    assert b"NO [BADCHARSET (UTF-8 US-ASCII)]" in ok, ok
    _, ok = r.cmd("SORT (WEIGHT) UTF-8 ALL")
    assert b" BAD " in ok


def test_thread_answers_and_sees_expunges(server):
    r = session(server, enable=False)
    r.cmd("SELECT INBOX")
    # Threads in the order of their first message's date: bravo (3 Mar,
    # with its reply), alpha (4 Mar), Charlie (5 Mar).
    untagged, _ = r.cmd("UID THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert one(untagged, "* THREAD") == "* THREAD (4 3)(2)(1)"
    untagged, _ = r.cmd("UID THREAD REFERENCES UTF-8 ALL")
    assert one(untagged, "* THREAD") == "* THREAD (4 3)(2)(1)"
    other = server.imap(ALICE)
    other.select("INBOX")
    other.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    # Not a UID command: the expunge waits, but message 4 is not threaded.
    untagged, _ = r.cmd("THREAD REFERENCES UTF-8 ALL")
    assert one(untagged, "* THREAD") == "* THREAD (2)(1)(3)", untagged
    assert not any(b"EXPUNGE" in l for l in untagged)


def test_a_hostile_reference_chain_is_answered(server):
    refs = " ".join(f"<r{i}@x>" for i in range(3000))
    server.deliver(ALICE, msg("Chain", "Mon, 04 Mar 2024 11:00:00 +0000",
                              extra=f"Message-ID: <c@x>\r\nReferences: {refs}\r\n"))
    for i in range(300):
        parent = "<c@x>" if i == 0 else f"<c{i - 1}@x>"
        server.put(ALICE, msg("Re: Chain", f"Mon, 04 Mar 2024 12:{i % 60:02d}:00 +0000",
                              extra=f"Message-ID: <c{i}@x>\r\nIn-Reply-To: {parent}\r\n"))
    r = session(server, enable=False)
    r.cmd("SELECT INBOX")
    untagged, ok = r.cmd("UID THREAD REFERENCES UTF-8 SUBJECT chain")
    assert b"OK" in ok, ok
    line = one(untagged, "* THREAD")
    # 301 messages, one thread: 200 levels deep, the rest beneath.
    assert line.startswith("* THREAD (5 6 7") and line.count("(") == 1 + 301 - 200, line[:200]
    untagged, ok = r.cmd("NOOP")
    assert b"OK" in ok


def test_keys_of_mail_stored_before_they_were_kept():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.put(ALICE, msg("Zulu", "Tue, 05 Mar 2024 10:00:00 +0000"))
        s.put(ALICE, msg("Yankee", "Mon, 04 Mar 2024 10:00:00 +0000"))
        # As an older store left them: no keys.
        s.sql("DELETE FROM message_keys")
        s.start()
        try:
            r = session(s, enable=False)
            r.cmd("SELECT INBOX")
            untagged, _ = r.cmd("UID SORT (SUBJECT) UTF-8 ALL")
            assert one(untagged, "* SORT") == "* SORT 2 1"
            r.cmd("LOGOUT")
        finally:
            s.stop()
        kept = s.sql("SELECT subject FROM message_keys ORDER BY subject")
        assert kept == [("YANKEE",), ("ZULU",)], kept
