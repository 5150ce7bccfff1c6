"""QRESYNC (RFC 7162 3.2) over a raw socket: ENABLE QRESYNC (CONDSTORE with
it), SELECT (QRESYNC ...) telling a returning client what went (VANISHED
(EARLIER)) and what changed (FETCH with MODSEQ), within its known UIDs and
only for its UIDVALIDITY; UID FETCH (CHANGEDSINCE n VANISHED); VANISHED
instead of EXPUNGE once enabled (other sessions', EXPUNGE's, MOVE's); the
HIGHESTMODSEQ of errata 1810 while expunges wait; and the pruning of old
expunge records, after which a resync gets every missing UID, never a
wrong answer. imapflow's own QRESYNC use is in test_imap_clients.py."""
import re
import tempfile
import time

import pytest

from conftest import PASSWORD, Satchel
from test_imap_sync import Raw

ALICE = "alice@example.test"


def start(tmp, extra=""):
    s = Satchel(tmp, extra)
    s.add_user(ALICE)
    for n in range(1, 6):
        s.put(ALICE, f"Subject: m{n}\r\n\r\nbody {n}\r\n")
    s.start()
    return s


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = start(tmp)
        try:
            yield s
        finally:
            s.stop()


def session(s, enable=True):
    r = Raw(s)
    _, ok = r.cmd(f"LOGIN {ALICE} {PASSWORD}")
    assert b"OK" in ok
    if enable:
        untagged, ok = r.cmd("ENABLE QRESYNC")
        assert untagged == [b"* ENABLED QRESYNC\r\n"], untagged
    return r


def code(untagged, name):
    for l in untagged:
        m = re.search(rb"\[" + name.encode() + rb" (\d+)\]", l)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name} in {untagged}")


def vanished(untagged, earlier=True):
    prefix = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    lines = [l[len(prefix):].strip().decode() for l in untagged if l.startswith(prefix)]
    assert len(lines) <= 1, untagged
    return lines[0] if lines else None


def fetched(untagged):
    """{uid: (flags, modseq)} of the FETCH lines."""
    out = {}
    for l in untagged:
        m = re.match(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)", l)
        if m:
            out[int(m.group(1))] = (m.group(2).decode(), int(m.group(3)))
    return out


def test_needs_enable_and_implies_condstore(server):
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" QRESYNC" in untagged[0], untagged
    _, ok = r.cmd("SELECT INBOX (QRESYNC (1 1))")
    assert b" BAD " in ok and b"ENABLE QRESYNC" in ok, ok
    r.cmd("SELECT INBOX")
    _, ok = r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert b" BAD " in ok, ok
    r.cmd("CLOSE")
    untagged, _ = r.cmd("ENABLE QRESYNC")
    assert untagged == [b"* ENABLED QRESYNC\r\n"]
    # CONDSTORE came with it: SELECT says HIGHESTMODSEQ, FETCHes of flags
    # carry MODSEQ.
    untagged, _ = r.cmd("SELECT INBOX")
    assert code(untagged, "HIGHESTMODSEQ") >= 1
    untagged, _ = r.cmd("STORE 1 +FLAGS (\\Flagged)")
    assert re.search(rb"MODSEQ \(\d+\)", b"".join(untagged)), untagged


def test_a_returning_client_hears_only_what_it_missed(server):
    s = server
    a = session(s)
    untagged, _ = a.cmd("SELECT INBOX")
    uidvalidity = code(untagged, "UIDVALIDITY")
    seen = code(untagged, "HIGHESTMODSEQ")
    a.cmd("LOGOUT")

    # Another client, without QRESYNC: flags on 2, 3 expunged, a new one.
    b = s.imap(ALICE)
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", "(\\Flagged)")
    b.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.append("INBOX", None, None, b"Subject: m6\r\n\r\nbody 6\r\n")
    b.logout()

    c = session(s)
    untagged, ok = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {seen}))")
    assert b"OK [READ-WRITE]" in ok, ok
    assert vanished(untagged) == "3", untagged
    changes = fetched(untagged)
    assert sorted(changes) == [2, 6], untagged
    assert "\\Flagged" in changes[2][0] and changes[2][1] > seen
    # VANISHED (EARLIER) comes before the FETCHes (RFC 7162 3.2.5.1).
    order = [l.split()[1] for l in untagged if l.startswith(b"* VANISHED") or b" FETCH " in l]
    assert order[0] == b"VANISHED", untagged
    now = code(untagged, "HIGHESTMODSEQ")
    assert now >= max(m for _, m in changes.values())

    # Known UIDs limit both answers.
    untagged, _ = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {seen} 1:2))")
    assert b"* OK [CLOSED]" in untagged[0], untagged
    assert vanished(untagged) is None and sorted(fetched(untagged)) == [2], untagged
    untagged, _ = c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {seen} 3:* (1:2 1:2)))")
    assert vanished(untagged) == "3" and sorted(fetched(untagged)) == [6], untagged
    # A client whose UIDVALIDITY is stale gets no resync at all.
    untagged, _ = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {seen}))")
    assert vanished(untagged) is None and fetched(untagged) == {}, untagged
    # Nothing changed since now: nothing to say.
    untagged, _ = c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {now}))")
    assert vanished(untagged) is None and fetched(untagged) == {}, untagged

    # The same answers from UID FETCH (CHANGEDSINCE n VANISHED).
    untagged, ok = c.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {seen} VANISHED)")
    assert b"OK" in ok and vanished(untagged) == "3", untagged
    assert sorted(fetched(untagged)) == [2, 6], untagged
    untagged, _ = c.cmd(f"UID FETCH 4:* (FLAGS) (CHANGEDSINCE {seen} VANISHED)")
    assert vanished(untagged) is None and sorted(fetched(untagged)) == [6], untagged


def test_expunges_are_told_as_vanished_once_enabled(server):
    s = server
    a = session(s)
    a.cmd("SELECT INBOX")
    b = s.imap(ALICE)
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    b.expunge()
    untagged, _ = a.cmd("NOOP")
    assert vanished(untagged, earlier=False) == "2", untagged
    assert not any(b"EXPUNGE" in l for l in untagged), untagged
    # Its own EXPUNGE and MOVE, too.
    a.cmd("UID STORE 4:5 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = a.cmd("EXPUNGE")
    assert vanished(untagged, earlier=False) == "4:5", untagged
    untagged, _ = a.cmd("UID MOVE 1 Trash")
    assert vanished(untagged, earlier=False) == "1", untagged
    assert not any(b"EXPUNGE" in l for l in untagged), untagged
    untagged, _ = a.cmd("FETCH 1:* (UID)")
    assert untagged == [b"* 1 FETCH (UID 3)\r\n"], untagged
    # A session without QRESYNC still gets EXPUNGE.
    b.noop()
    assert b.untagged_responses.get("EXPUNGE"), b.untagged_responses
    b.logout()


def test_flag_changes_told_while_expunges_wait_say_how_far_it_is_safe(server):
    """RFC 7162 errata 1810: a FETCH may not carry expunges, but may carry
    other sessions' flag changes with MODSEQs past those expunges; the
    server then says a HIGHESTMODSEQ from before them."""
    s = server
    a = session(s)
    untagged, _ = a.cmd("SELECT INBOX")
    before = code(untagged, "HIGHESTMODSEQ")
    b = s.imap(ALICE)
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.uid("STORE", "4", "+FLAGS", "(\\Flagged)")
    untagged, _ = a.cmd("FETCH 1 (FLAGS)")
    assert vanished(untagged, earlier=False) is None, untagged
    assert any(re.match(rb"\* 4 FETCH \(UID 4 FLAGS \(\\Flagged[^)]*\) MODSEQ", l)
               for l in untagged), untagged
    safe = code(untagged, "HIGHESTMODSEQ")
    assert safe == before, untagged
    untagged, _ = a.cmd("NOOP")
    assert vanished(untagged, earlier=False) == "2", untagged
    b.logout()


def test_pruned_expunge_records_give_the_longer_answer():
    with tempfile.TemporaryDirectory() as tmp:
        s = start(tmp, "[imap]\nexpunged_kept = 1\n")
        try:
            a = session(s)
            a.cmd("SELECT INBOX")
            # UID 1 goes before the client's last look; 2 and 4 after it.
            a.cmd("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
            a.cmd("EXPUNGE")
            untagged, _ = a.cmd("SELECT INBOX")
            uidvalidity = code(untagged, "UIDVALIDITY")
            start_modseq = code(untagged, "HIGHESTMODSEQ")
            a.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
            a.cmd("EXPUNGE")
            untagged, _ = a.cmd("UID STORE 5 +FLAGS (\\Seen)")
            between = max(m for _, m in fetched(untagged).values())
            a.cmd("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
            a.cmd("EXPUNGE")
            a.cmd("LOGOUT")
            # Before any pruning both answers are exact.
            c = session(s)
            untagged, _ = c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {start_modseq}))")
            assert vanished(untagged) == "2,4", untagged
            c.cmd("LOGOUT")
        finally:
            s.stop()
        # Housekeeping runs when the server starts: one record is kept
        # (UID 4's), so the question from before UID 2 went is answered
        # with every UID the mailbox lacks, UID 1 included.
        s.start()
        try:
            deadline = time.time() + 10
            while True:
                c = session(s)
                untagged, _ = c.cmd(
                    f"EXAMINE INBOX (QRESYNC ({uidvalidity} {start_modseq}))")
                answer = vanished(untagged)
                c.cmd("LOGOUT")
                if answer != "2,4" or time.time() > deadline:
                    break
                time.sleep(0.2)
            assert answer == "1:2,4", answer
            assert sorted(fetched(untagged)) == [5], untagged
            # From after the pruned record, still exact.
            c = session(s)
            untagged, _ = c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {between}))")
            assert vanished(untagged) == "4", untagged
            # UID FETCH gives the longer answer within the UIDs asked about.
            untagged, _ = c.cmd(f"UID FETCH 2:* (FLAGS) (CHANGEDSINCE {start_modseq} VANISHED)")
            assert vanished(untagged) == "2,4", untagged
            untagged, _ = c.cmd(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {between} VANISHED)")
            assert vanished(untagged) == "4", untagged
        finally:
            s.stop()
