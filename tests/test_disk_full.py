"""A full disk (issue 21): the store lives on a small tmpfs the test mounts
and then fills. Deliveries get `452 4.3.1`, submissions too, IMAP APPEND a
NO that says the disk is full (not SERVERBUG), the sessions stay usable,
nothing is acknowledged that is not stored and no half-written file is
left; once space is back, the same commands work again without a restart,
and `satchel check` finds nothing wrong."""
import errno
import os
import smtplib
import subprocess
import tempfile

import pytest

from conftest import BACKEND, PASSWORD, Satchel, figure, message

# The disk filled is the data folder's, which holds the embedded store; a
# PostgreSQL store's disk is the database server's (it answers SQLSTATE
# 53100, which the store turns into the same NoSpace error).
pytestmark = pytest.mark.skipif(BACKEND == "postgres", reason="fills the embedded store's own disk")

ALICE = "alice@example.test"
# 200 KB in lines, so that a message's file cannot fit in a filesystem's slack.
BODY = ("x" * 78 + "\r\n") * 2500


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'submission = ["127.0.0.1:0"]\n', doors=7)
        s.data.mkdir()
        # A filesystem of its own, so that filling it fills nothing else.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(s.data)],
                       check=True)
        try:
            s.add_user(ALICE)
            s.start()
            try:
                yield s
            finally:
                s.stop()
        finally:
            subprocess.run(["umount", "-l", str(s.data)], check=False)


def fill(path):
    """Writes `path` until the filesystem has no byte left; its size."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Large pieces, then smaller ones into what the large ones left.
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    written += os.write(fd, b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    finally:
        os.close(fd)
    return written


def inbox_count(s):
    c = s.imap(ALICE)
    count = int(c.status("INBOX", "(MESSAGES)")[1][0].decode().split()[-1].rstrip(")"))
    c.logout()
    return count


def smtp_send(s, subject):
    """The reply code and text to one message over the MX door."""
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    try:
        c.ehlo("client.example.test")
        c.mail("carol@remote.test")
        c.rcpt(ALICE)
        return c.data(message(subject=subject, body=BODY))
    finally:
        c.close()


def submit(s, subject):
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
    try:
        c.ehlo("client.example.test")
        c.login(ALICE, PASSWORD)
        c.mail(ALICE)
        c.rcpt(ALICE)
        return c.data(message(subject=subject, sender=ALICE, body=BODY))
    finally:
        c.close()


def test_a_full_disk_refuses_cleanly_and_recovers_by_itself(server):
    s = server
    code, _ = smtp_send(s, "before")
    assert code == 250
    before = inbox_count(s)
    imap = s.imap(ALICE)
    imap.select("INBOX")

    filler = s.data / "filler"
    filled = fill(filler)
    figure(f"filled the 24 MiB store filesystem with {filled / 2**20:.1f} MiB")

    acknowledged = 0
    for i in range(3):
        code, text = smtp_send(s, f"full {i}")
        if code == 250:
            acknowledged += 1
        else:
            assert code == 452 and text.startswith(b"4.3.1"), (code, text)
    assert acknowledged == 0, "a delivery was acknowledged on a full disk"
    code, text = submit(s, "full submission")
    assert code == 452 and text.startswith(b"4.3.1"), (code, text)

    body = message(subject="appended", body=BODY)
    typ, data = imap.append("INBOX", None, None, body)
    assert typ == "NO", (typ, data)
    text = data[0].decode()
    assert "SERVERBUG" not in text and "disk is full" in text, text
    # The session goes on.
    assert imap.noop()[0] == "OK"
    tmp_files = os.listdir(s.data / "blobs" / "tmp")
    assert tmp_files == [], f"half-written files left: {tmp_files}"

    # Space comes back: the same commands work, with no restart.
    filler.unlink()
    code, _ = smtp_send(s, "after")
    assert code == 250
    code, _ = submit(s, "after submission")
    assert code == 250
    typ, data = imap.append("INBOX", None, None, body)
    assert typ == "OK", (typ, data)
    imap.logout()
    # Exactly what was acknowledged: the delivery, the submission's local
    # copy and the APPEND.
    assert inbox_count(s) == before + 3

    s.stop()
    out = s.cli("check")
    assert "no problems" in out.stdout.decode().lower(), out.stdout.decode()
    assert "panicked" not in s.log()
