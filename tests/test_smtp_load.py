"""The SMTP door under load and under SIGKILL: every message a client saw
acknowledged is in a mailbox, and none is there twice."""
import re
import signal
import smtplib
import subprocess
import threading
import time

ALICE = "alice@example.test"


def imap_count(satchel):
    c = satchel.imap(ALICE)
    n = int(c.select("INBOX", readonly=True)[1][0])
    c.logout()
    return n


def test_smtp_source_2000_messages_over_20_connections(satchel):
    out = subprocess.run(
        ["smtp-source", "-s", "20", "-m", "2000", "-l", "2048", "-f", "sender@remote.test", "-t", ALICE,
         f"127.0.0.1:{satchel.ports['smtp']}"],
        capture_output=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
    assert out.stderr == b"", out.stderr.decode()
    assert imap_count(satchel) == 2000


def test_sigkill_during_delivery_loses_nothing_acknowledged(satchel):
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker):
        n = 0
        while not stop.is_set():
            n += 1
            tag = f"w{worker}-{n}"
            try:
                s = smtplib.SMTP("127.0.0.1", satchel.ports["smtp"], timeout=10)
                s.sendmail("sender@remote.test", [ALICE],
                           f"Subject: {tag}\r\nMessage-ID: <{tag}@load.test>\r\n\r\n{tag}\r\n".encode())
                s.quit()
            except (OSError, smtplib.SMTPException):
                continue  # the server is down: not acknowledged
            with lock:
                acknowledged.append(tag)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 60:
        time.sleep(0.05)
    satchel.proc.send_signal(signal.SIGKILL)
    satchel.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    satchel.start()
    c = satchel.imap(ALICE)
    n = int(c.select("INBOX", readonly=True)[1][0])
    subjects = []
    if n:
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
        subjects = [re.search(rb"Subject: (\S+)", d[1]).group(1).decode() for d in data if isinstance(d, tuple)]
    missing = set(acknowledged) - set(subjects)
    assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
    assert len(subjects) == len(set(subjects)), "a message is there twice"
    assert len(acknowledged) >= 60
    # And the store is whole: nothing for `satchel check` to find.
    out = satchel.cli("check", check=False)
    assert out.returncode == 0 and b": no problems" in out.stdout, out.stdout + out.stderr


def test_sigterm_during_data_stores_all_or_nothing(satchel):
    import socket
    s = socket.create_connection(("127.0.0.1", satchel.ports["smtp"]), timeout=30)
    f = s.makefile("rb")
    f.readline()
    for line in [b"EHLO c", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<alice@example.test>", b"DATA"]:
        s.sendall(line + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
    assert reply.startswith(b"354")
    s.sendall(b"Subject: interrupted\r\n\r\nfirst half\r\n")
    satchel.proc.send_signal(signal.SIGTERM)
    try:
        s.sendall(b"second half\r\n.\r\n")
        answer = f.readline()
    except OSError:
        answer = b""
    assert satchel.proc.wait(timeout=20) == 0
    satchel.start()
    n = imap_count(satchel)
    if answer.startswith(b"250"):
        assert n == 1, "acknowledged, so stored"
    else:
        assert n == 0, f"not acknowledged ({answer!r}), so not stored, not even half"
