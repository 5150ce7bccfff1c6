"""COMPRESS=DEFLATE (RFC 4978) from a Python client over a raw deflate
stream: after the uncompressed OK both directions are deflated; a full
mailbox fetch comes back right and in fewer bytes than without; commands
ended with a sync flush and with a partial flush are both answered at once
(an inflater that waits for more after a partial flush hangs iOS Mail);
it works over TLS too; a second COMPRESS says COMPRESSIONACTIVE."""
import re
import socket
import ssl
import tempfile
import zlib

import pytest

from conftest import PASSWORD, Satchel

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        for n in range(20):
            s.put(ALICE, (f"From: a@remote.test\r\nSubject: letter {n}\r\n\r\n"
                          + f"The same friendly words, letter {n}.\r\n" * 40))
        s.start()
        try:
            yield s
        finally:
            s.stop()


class Raw:
    """An IMAP connection read and written by hand, counting wire bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.wire_in = 0
        self.inflate = None
        self.deflate = None
        self.buf = b""

    def send(self, line, flush=zlib.Z_SYNC_FLUSH):
        data = line.encode()
        if self.deflate:
            data = self.deflate.compress(data) + self.deflate.flush(flush)
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        self.wire_in += len(data)
        self.buf += self.inflate.decompress(data) if self.inflate else data

    def until(self, tag):
        """Everything up to and including the tagged reply, literals too."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._more()
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line + b"\r\n"
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                n = int(m.group(1))
                while len(self.buf) < n:
                    self._more()
                out += self.buf[:n]
                self.buf = self.buf[n:]
            elif line.startswith(tag.encode() + b" "):
                return out

    def login(self):
        self.send(f"l LOGIN {ALICE} {PASSWORD}\r\n")
        assert b"l OK" in self.until("l")

    def compress(self):
        self.send("z COMPRESS DEFLATE\r\n")
        assert self.until("z").endswith(b"z OK DEFLATE active\r\n")
        self.deflate = zlib.compressobj(wbits=-15)
        self.inflate = zlib.decompressobj(wbits=-15)


def greeted(sock):
    c = Raw(sock)
    while b"\r\n" not in c.buf:
        c._more()
    c.buf = c.buf.split(b"\r\n", 1)[1]
    return c


def fetch_all(c):
    """Every message's BODY[], and the bytes that came over the wire for it."""
    c.send("s SELECT INBOX\r\n")
    assert b"s OK" in c.until("s")
    before = c.wire_in
    c.send("f FETCH 1:* (BODY.PEEK[])\r\n")
    got = c.until("f")
    return got, c.wire_in - before


def test_a_full_fetch_is_right_and_smaller(server):
    plain = greeted(socket.create_connection(("127.0.0.1", server.ports["imap"])))
    plain.login()
    expected, plain_bytes = fetch_all(plain)

    c = greeted(socket.create_connection(("127.0.0.1", server.ports["imap"])))
    c.login()
    c.compress()
    got, compressed_bytes = fetch_all(c)
    # The same twenty messages, byte for byte.
    # Subject and forty lines of letter 19.
    assert got.count(b"* ") == 20 and expected.count(b"letter 19") == 41, expected[:200]
    assert got.split(b"\r\nf ")[0] == expected.split(b"\r\nf ")[0]
    print(f"full fetch: {plain_bytes} bytes plain, {compressed_bytes} deflated")
    assert compressed_bytes < plain_bytes / 3, (compressed_bytes, plain_bytes)

    # A partial flush is answered as soon as a sync flush is.
    c.send("p NOOP\r\n", flush=zlib.Z_PARTIAL_FLUSH)
    assert c.until("p").endswith(b"p OK NOOP completed.\r\n")
    c.send("q NOOP\r\n", flush=zlib.Z_SYNC_FLUSH)
    assert b"q OK" in c.until("q")
    c.send("z2 COMPRESS DEFLATE\r\n")
    assert b"z2 NO [COMPRESSIONACTIVE]" in c.until("z2")
    c.send("o LOGOUT\r\n")
    assert b"o OK" in c.until("o")


def test_over_tls_and_not_before_login(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = greeted(ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.ports["imaps"]))))
    # Not before login (RFC 4978 3: authenticated and selected states).
    c.send("z0 COMPRESS DEFLATE\r\n")
    refused = c.until("z0")
    assert b"z0 OK" not in refused and re.search(rb"z0 (BAD|NO)", refused), refused
    c.login()
    c.compress()
    c.send("n NOOP\r\n")
    assert b"n OK" in c.until("n")
