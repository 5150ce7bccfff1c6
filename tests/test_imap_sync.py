"""IMAP: several sessions on one mailbox stay in step (RFC 9051 7.5), and
IDLE (RFC 2177) hears about new mail from any door or process."""
import socket
import threading
import time

from conftest import PASSWORD, message

ALICE = "alice@example.test"


class Raw:
    """A line-level IMAP client, for what imaplib cannot do (IDLE)."""

    def __init__(self, satchel):
        self.s = socket.create_connection(("127.0.0.1", satchel.ports["imap"]), timeout=10)
        self.f = self.s.makefile("rb")
        self.f.readline()
        self.n = 0

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def cmd(self, line):
        """Sends a tagged command; returns (untagged lines, tagged line)."""
        return self.cmd_parts([line])

    def cmd_parts(self, parts):
        """cmd for a command given in str and bytes pieces (literals,
        sent as non-synchronizing ones, inside)."""
        self.n += 1
        tag = f"r{self.n}"
        body = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
        self.s.sendall(tag.encode() + b" " + body + b"\r\n")
        untagged = []
        while True:
            l = self.f.readline()
            assert l, "connection closed"
            if l.startswith(tag.encode() + b" "):
                return untagged, l
            untagged.append(l)

    def readline(self, timeout):
        """The next line, passing over RECENT counts (IMAP4rev1 sessions
        get one after each EXISTS)."""
        self.s.settimeout(timeout)
        try:
            while True:
                line = self.f.readline()
                if not line.endswith(b" RECENT\r\n"):
                    return line
        finally:
            self.s.settimeout(10)


def login_select(satchel):
    r = Raw(satchel)
    _, ok = r.cmd(f"LOGIN {ALICE} {PASSWORD}")
    assert ok.startswith(b"r1 OK")
    r.cmd("SELECT INBOX")
    return r


def test_flags_and_expunges_reach_the_other_session(satchel):
    for i in range(3):
        satchel.deliver(ALICE, message(f"m{i}"))
    a, b = login_select(satchel), login_select(satchel)
    a.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    untagged, ok = b.cmd("NOOP")
    assert b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n" in untagged, untagged
    a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.cmd("EXPUNGE")
    # No EXPUNGE during FETCH: sequence numbers must not shift under it.
    untagged, ok = b.cmd("FETCH 1:3 (UID)")
    assert not any(b"EXPUNGE" in l for l in untagged), untagged
    assert ok.startswith(b"r") and b"OK" in ok
    untagged, ok = b.cmd("NOOP")
    assert b"* 2 EXPUNGE\r\n" in untagged, untagged
    untagged, _ = b.cmd("FETCH 1:* (UID)")
    assert untagged == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"]
    # UID commands may carry expunges at once.
    a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.cmd("EXPUNGE")
    untagged, _ = b.cmd("UID FETCH 1:* (FLAGS)")
    assert b"* 1 EXPUNGE\r\n" in untagged, untagged


def test_new_mail_shows_in_other_sessions(satchel):
    a, b = login_select(satchel), login_select(satchel)
    a.cmd("APPEND INBOX {18+}\r\nSubject: x\r\n\r\nx\r\n".replace("\r\n", "\r\n", 1))
    untagged, _ = b.cmd("NOOP")
    assert b"* 1 EXISTS\r\n" in untagged, untagged
    # \Recent belongs to exactly one of the two sessions.
    recent = [l for l in untagged if l.endswith(b"RECENT\r\n")]
    _, _ = a.cmd("NOOP")
    untagged_a, _ = a.cmd("FETCH 1 (FLAGS)")
    untagged_b, _ = b.cmd("FETCH 1 (FLAGS)")
    flags = [b"\\Recent" in u[0] for u in (untagged_a, untagged_b)]
    assert flags.count(True) == 1, (untagged_a, untagged_b, recent)


def idle_until_exists(r, timeout):
    """In IDLE, waits for an EXISTS line; returns it and how long it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        line = r.readline(timeout)
        if b"EXISTS" in line:
            return line, time.monotonic() - start
    return None, timeout


def test_idle_hears_a_delivery_by_another_process_within_a_second(satchel):
    r = login_select(satchel)
    r.send("i1 IDLE")
    assert r.readline(5) == b"+ idling\r\n"
    start = time.monotonic()
    threading.Thread(target=lambda: satchel.deliver(ALICE, message("ping"))).start()
    line, _ = idle_until_exists(r, 5)
    assert line == b"* 1 EXISTS\r\n", line
    # The guarantee is counted from the moment `deliver` acknowledged; the
    # whole process (start, store, fsync, exit) took part of this already.
    assert time.monotonic() - start < 5
    r.send("DONE")
    assert r.readline(5) == b"i1 OK IDLE terminated.\r\n"


def test_idle_hears_an_imap_append_and_expunge(satchel):
    satchel.deliver(ALICE, message("first"))
    r = login_select(satchel)
    other = login_select(satchel)
    r.send("i1 IDLE")
    assert r.readline(5) == b"+ idling\r\n"
    other.cmd("APPEND INBOX {9+}\r\nSubject:\r")
    line, _ = idle_until_exists(r, 5)
    assert line == b"* 2 EXISTS\r\n"
    other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert r.readline(5) == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))\r\n"
    other.cmd("EXPUNGE")
    assert r.readline(5) == b"* 1 EXPUNGE\r\n"
    r.send("DONE")
    assert r.readline(5).endswith(b"OK IDLE terminated.\r\n")
    untagged, _ = r.cmd("FETCH 1:* (UID)")
    assert untagged == [b"* 1 FETCH (UID 2)\r\n"]


def test_idle_wants_done(satchel):
    r = login_select(satchel)
    r.send("i1 IDLE")
    r.readline(5)
    r.send("NOOP")
    assert r.readline(5) == b"i1 BAD Expected DONE.\r\n"
