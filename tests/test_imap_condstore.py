"""CONDSTORE (RFC 7162 3.1) with imaplib: HIGHESTMODSEQ on SELECT, MODSEQ
in FETCH (asked for, and in every FETCH of flags once enabled), FETCH
CHANGEDSINCE returning only what changed, STORE UNCHANGEDSINCE refusing
what changed meanwhile with [MODIFIED], SEARCH MODSEQ with the highest
MODSEQ of its hits, and another session's change seen with its MODSEQ."""
import re
import tempfile

import pytest

from conftest import Satchel

ALICE = "alice@example.test"


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        for n in range(1, 4):
            s.put(ALICE, f"Subject: m{n}\r\n\r\nbody {n}\r\n")
        s.start()
        try:
            yield s
        finally:
            s.stop()


def modseqs(data):
    """{seq: modseq} of FETCH responses."""
    out = {}
    for d in data:
        line = d[0] if isinstance(d, tuple) else d
        if not line:
            continue
        m = re.match(rb"(\d+) \(.*MODSEQ \((\d+)\)", line)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    return out


def test_condstore(server):
    s = server
    c = s.imap(ALICE)
    assert "CONDSTORE" in c.capabilities
    # Without CONDSTORE on, SELECT says nothing of MODSEQs (as Dovecot).
    c.select("INBOX")
    assert not any(b"HIGHESTMODSEQ" in x for x in c.untagged_responses.get("OK", []))
    c.close()
    c._simple_command("ENABLE", "CONDSTORE")
    typ, _ = c.select("INBOX")
    highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(
        x for x in c.untagged_responses.get("OK", []))).group(1))
    assert highest >= 1
    typ, data = c.fetch("1:*", "(MODSEQ)")
    first = modseqs(data)
    assert sorted(first) == [1, 2, 3] and max(first.values()) <= highest, data

    # A change: its FETCH carries the new MODSEQ (CONDSTORE is on now).
    typ, data = c.store("2", "+FLAGS", "(\\Flagged)")
    after = modseqs(data)
    assert after[2] > first[2], data
    # CHANGEDSINCE: only what changed after the old value.
    typ, data = c._simple_command("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {max(first.values())})")
    changed = modseqs(c._untagged_response(typ, data, "FETCH")[1])
    assert list(changed) == [2], changed

    # UNCHANGEDSINCE older than message 2's MODSEQ: 2 is refused, 1 done.
    typ, data = c._simple_command("STORE", "1:2", f"(UNCHANGEDSINCE {first[2]})", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and b"[MODIFIED 2]" in data[0], (typ, data)

    # SEARCH MODSEQ: the hits, then the highest MODSEQ among them.
    typ, data = c._simple_command("SEARCH", "MODSEQ", str(after[2]))
    hits = c._untagged_response(typ, data, "SEARCH")[1][0]
    m = re.match(rb"([\d ]+) \(MODSEQ (\d+)\)", hits)
    assert m and 2 in [int(x) for x in m.group(1).split()], hits

    # Another session's change comes with its MODSEQ.
    other = s.imap(ALICE)
    other.select("INBOX")
    other.store("3", "+FLAGS", "(\\Answered)")
    other.logout()
    typ, data = c.noop()
    pushed = modseqs(c.untagged_responses.get("FETCH", []))
    assert 3 in pushed and pushed[3] > first[3], c.untagged_responses
    c.logout()


def test_enable_and_status(server):
    c = server.imap(ALICE)
    typ, data = c._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK" and c.untagged_responses["ENABLED"] == [b"CONDSTORE"], c.untagged_responses
    typ, data = c.status("Trash", "(HIGHESTMODSEQ)")
    assert typ == "OK" and re.search(rb"HIGHESTMODSEQ [1-9]", data[0]), data
    c.logout()
