"""Two Satchel nodes on one PostgreSQL database (issue 20), driven over
their sockets as users would: mail delivered through both lands with
dense, distinct UIDs; an IMAP IDLE on one node hears mail delivered on the
other; a POP3 session on one node locks the mailbox for the other, until
that node is killed. Each test starts its own throwaway PostgreSQL
database (tests/pg.py), whichever backend the rest of the run uses."""
import contextlib
import signal
import smtplib
import socket
import tempfile
import threading
import time

import pg
from conftest import PASSWORD, Satchel, figure, message

ALICE = "alice@example.test"


@contextlib.contextmanager
def two_nodes():
    database = pg.fresh_database()
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = Satchel(a_dir, database=database)
        b = Satchel(b_dir, database=database)
        a.add_user(ALICE)
        a.start()
        try:
            b.start()
            try:
                yield a, b
            finally:
                b.stop()
        finally:
            a.stop()


def send(node, count, tag):
    """`count` messages to alice through the node's SMTP door, ten per
    connection."""
    sent = 0
    while sent < count:
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=60) as c:
            for _ in range(min(10, count - sent)):
                c.sendmail("sender@remote.test", [ALICE],
                           message(subject=f"{tag} {sent}", body=f"{tag} body {sent}"))
                sent += 1


def test_mail_through_both_nodes_gets_dense_distinct_uids():
    with two_nodes() as (a, b):
        # 1,000 messages, half through each node, four senders at once.
        threads = [threading.Thread(target=send, args=(node, 250, f"{name}{i}"))
                   for name, node in (("a", a), ("b", b)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for node in (a, b):
            c = node.imap(ALICE)
            typ, data = c.select("INBOX")
            assert data == [b"1000"], data
            typ, data = c.uid("SEARCH", "ALL")
            uids = [int(u) for u in data[0].split()]
            assert uids == list(range(1, 1001)), (uids[:5], len(uids))
            typ, data = c.status("INBOX", "(UIDNEXT)")
            assert b"UIDNEXT 1001" in data[0], data
            c.logout()


def test_idle_on_one_node_hears_mail_delivered_on_the_other():
    with two_nodes() as (a, b):
        s = socket.create_connection(("127.0.0.1", b.ports["imap"]), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a LOGIN {ALICE} {PASSWORD}\r\n".encode())
        while not f.readline().startswith(b"a "):
            pass
        s.sendall(b"b SELECT INBOX\r\n")
        while not f.readline().startswith(b"b "):
            pass
        s.sendall(b"c IDLE\r\n")
        assert f.readline().startswith(b"+"), "IDLE accepted"
        waits = []
        for i in range(1, 4):
            sent = time.monotonic()
            send(a, 1, f"idle {i}")
            line = f.readline()
            # The RECENT count of the delivery before (RFC 3501 7.3.2) may
            # come first.
            if line.endswith(b" RECENT\r\n"):
                line = f.readline()
            waits.append(time.monotonic() - sent)
            assert line == f"* {i} EXISTS\r\n".encode(), line
        s.sendall(b"DONE\r\n")
        line = f.readline()
        if line.endswith(b" RECENT\r\n"):
            line = f.readline()
        assert line.startswith(b"c OK"), line
        s.close()
        figure("two nodes: IDLE on node B woke %s after node A's SMTP DATA began"
               % ", ".join(f"{w * 1000:.0f} ms" for w in waits))


def test_pop3_on_one_node_locks_out_the_other_until_it_is_killed():
    with two_nodes() as (a, b):
        a.deliver(ALICE, message())
        first = a.pop3(ALICE)
        assert first.stat()[0] == 1
        other = b.pop3()
        other.user(ALICE)
        try:
            other.pass_(PASSWORD)
            raise AssertionError("node B opened a maildrop node A holds")
        except Exception as e:
            assert "IN-USE" in str(e), e
        # The lock is released with the session on node A...
        first.quit()
        again = None
        for _ in range(50):
            again = b.pop3()
            again.user(ALICE)
            try:
                again.pass_(PASSWORD)
                break
            except Exception as e:
                assert "IN-USE" in str(e), e
                again = None
                time.sleep(0.1)
        assert again is not None, "node B never got the maildrop after QUIT on A"
        # ...and, held on node B now, with node B's death.
        kept_out = a.pop3()
        kept_out.user(ALICE)
        try:
            kept_out.pass_(PASSWORD)
            raise AssertionError("node A opened a maildrop node B holds")
        except Exception as e:
            assert "IN-USE" in str(e), e
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        started = time.monotonic()
        for _ in range(100):
            c = a.pop3()
            c.user(ALICE)
            try:
                c.pass_(PASSWORD)
                assert c.stat()[0] == 1
                c.quit()
                break
            except Exception as e:
                assert "IN-USE" in str(e), e
                time.sleep(0.1)
        else:
            raise AssertionError("the lock of the killed node was never released")
        figure("two nodes: node B killed with SIGKILL; node A took its POP3 lock "
               f"{(time.monotonic() - started) * 1000:.0f} ms later")
