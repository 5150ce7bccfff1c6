"""Floods and hostile sizes on every door (issue 21), each with a canary: a
logged-in client from another address whose commands keep being answered
while the flood goes on. Figures (connections refused, canary answers, the
server's RSS) are printed; no timing is asserted.

- 5,000 connections from one address to each door: the per-address limit
  refuses the rest cleanly and memory stays bounded;
- a 1 MB line on each door: refused, and the session goes on or ends
  cleanly;
- 10,000 RCPT in one SMTP transaction: refused past the limit, the
  message still delivered once;
- a 2 GB literal announced on IMAP: refused before a byte of it is read.
"""
import resource
import socket
import tempfile

import pytest

from conftest import PASSWORD, Satchel, message

ALICE = "alice@example.test"
FLOOD = 5_000


@pytest.fixture(scope="module")
def server():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def rss_kib(s):
    """The server's resident memory now, and at its peak (KiB)."""
    fields = {}
    for line in open(f"/proc/{s.proc.pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else "0"
    return int(fields["VmRSS"]), int(fields["VmHWM"])


class Canary:
    """A logged-in IMAP session from 127.0.0.2, another address than the
    flood's, that counts the answers it gets."""

    def __init__(self, s):
        self.sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=30,
                                             source_address=("127.0.0.2", 0))
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.answers = 0
        self.ask(f'LOGIN "{ALICE}" "{PASSWORD}"')

    def ask(self, command="NOOP"):
        self.sock.sendall(f"c {command}\r\n".encode())
        while True:
            line = self.file.readline()
            assert line, "the canary's connection was closed"
            if line.startswith(b"c "):
                assert line.startswith(b"c OK"), line
                self.answers += 1
                return


GREETING_OK = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220", "managesieve": b'"IMPLEMENTATION"'}


@pytest.mark.parametrize("door", ["imap", "pop3", "smtp", "managesieve"])
def test_five_thousand_connections_from_one_address(server, door):
    s = server
    canary = Canary(s)
    rss_before, _ = rss_kib(s)
    held, served, refused = [], 0, 0
    for batch in range(FLOOD // 500):
        for _ in range(500):
            c = socket.create_connection(("127.0.0.1", s.ports[door]), timeout=30)
            held.append(c)
        for c in held[-500:]:
            first = c.recv(512)
            if first.startswith(GREETING_OK[door]):
                served += 1
            else:
                # Refused with the protocol's own words, then closed.
                assert first == b"" or first[:4] in (b"* BY", b"-ERR", b"421 ", b"BYE ", b"NO \""), first
                refused += 1
        canary.ask()
    rss_after, peak = rss_kib(s)
    for c in held:
        c.close()
    canary.ask()
    print(f"{door}: {FLOOD} connections from one address: {served} served, {refused} refused; "
          f"canary answered {canary.answers} times; RSS {rss_before / 1024:.1f} MiB before, "
          f"{rss_after / 1024:.1f} after, peak {peak / 1024:.1f}")
    assert served + refused == FLOOD
    assert 0 < served <= 64, served
    assert canary.answers == FLOOD // 500 + 2
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)


def line_client(s, door):
    c = socket.create_connection(("127.0.0.1", s.ports[door]), timeout=30)
    f = c.makefile("rb")
    if door == "managesieve":
        while not f.readline().startswith(b"OK"):
            pass
    else:
        f.readline()
    return c, f


@pytest.mark.parametrize("door,command,refusal,after,answer", [
    ("imap", b"a NOOP ", b"a BAD", b"b NOOP", b"b OK"),
    ("pop3", b"USER ", b"-ERR Line too long", b"CAPA", b"+OK"),
    ("smtp", b"EHLO ", b"500 5.5.2", b"NOOP", b"250"),
    ("managesieve", b"CAPABILITY ", b"NO", b"NOOP", b"OK"),
])
def test_a_one_megabyte_line_is_refused_on_every_door(server, door, command, refusal, after, answer):
    s = server
    canary = Canary(s)
    rss_before, _ = rss_kib(s)
    c, f = line_client(s, door)
    c.sendall(command + b"x" * (1 << 20) + b"\r\n")
    line = f.readline()
    while door == "imap" and line.startswith(b"* "):
        line = f.readline()
    assert line.startswith(refusal), line[:200]
    c.sendall(after + b"\r\n")
    line = f.readline()
    while line.startswith(b"* "):  # IMAP's untagged lines before its answer
        line = f.readline()
    assert line.startswith(answer), line[:200]
    c.close()
    canary.ask()
    rss_after, _ = rss_kib(s)
    print(f"{door}: a 1 MiB line refused; RSS {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} after")
    assert rss_after - rss_before < 32 * 1024


def test_ten_thousand_recipients_in_one_transaction(server):
    s = server
    canary = Canary(s)
    c, f = line_client(s, "smtp")
    c.sendall(b"EHLO client.example.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    c.sendall(b"MAIL FROM:<carol@remote.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 10_000)
    assert f.readline().startswith(b"250")
    accepted = refused = 0
    closed = None
    for _ in range(10_000):
        line = f.readline()
        if line.startswith(b"250"):
            accepted += 1
        elif line.startswith(b"452 4.5.3"):
            refused += 1
        else:
            closed = line
            break
    print(f"10,000 RCPT: {accepted} accepted, {refused} refused, then {closed!r}")
    assert accepted == 100
    canary.ask()
    if closed is None:
        c.sendall(b"DATA\r\n")
        assert f.readline().startswith(b"354")
        c.sendall(message(subject="many rcpt") + b"\r\n.\r\n")
        assert f.readline().startswith(b"250 2.0.0")
    else:
        # Too many errors: the session was ended with a 421, not dropped.
        assert closed.startswith(b"421"), closed
    c.close()


def test_a_two_gigabyte_literal_is_refused_before_a_byte_is_read(server):
    s = server
    canary = Canary(s)
    c, f = line_client(s, "imap")
    # Before login: no literal of that size at all.
    c.sendall(b"a LOGIN {2147483648}\r\n")
    line = f.readline()
    assert line.startswith(b"a NO") or line.startswith(b"a BAD"), line
    c.sendall(f'b LOGIN "{ALICE}" "{PASSWORD}"\r\n'.encode())
    while not (line := f.readline()).startswith(b"b "):
        pass
    assert line.startswith(b"b OK"), line
    # Logged in: APPEND of 2 GB is refused at once, without the
    # continuation that would ask for the bytes.
    c.sendall(b"c APPEND INBOX {2147483648}\r\n")
    line = f.readline()
    assert line.startswith(b"c NO [TOOBIG]"), line
    c.sendall(b"d NOOP\r\n")
    assert f.readline().startswith(b"d OK")
    # The non-synchronizing form cannot be refused before the bytes come,
    # so the connection ends.
    c.sendall(b"e APPEND INBOX {2147483648+}\r\n" + b"x" * 65536)
    assert f.readline().startswith(b"* BYE [TOOBIG]")
    canary.ask()
    c.close()
