"""Two Satchel nodes on one PostgreSQL database (issue 20), driven over
their sockets as users would: mail delivered through both lands with
dense, distinct UIDs; an IMAP IDLE on one node hears mail delivered on the
other; a POP3 session on one node locks the mailbox for the other, until
that node is killed; a web session and a guesser's failures count on
every node. Each test starts its own throwaway PostgreSQL
database (tests/pg.py), whichever backend the rest of the run uses."""
import contextlib
import signal
import smtplib
import socket
import tempfile
import threading
import time

import pg
from conftest import DOORS, PASSWORD, Satchel, figure, message, wrong_login
from webclient import WebSession

ALICE = "alice@example.test"


@contextlib.contextmanager
def two_nodes(extra="", doors=DOORS):
    database = pg.fresh_database()
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = Satchel(a_dir, extra, doors=doors, database=database)
        b = Satchel(b_dir, extra, doors=doors, database=database)
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


def test_a_node_killed_mid_queue_leaves_its_deliveries_to_the_other_each_once():
    from sink import Sink, free_port
    from test_submission import mail, mx_table, submit, wait_for

    port = free_port()
    # A remote MX that takes the connection and never answers: node A's
    # deliveries hang there, holding their leases.
    staller = socket.socket()
    staller.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    staller.bind(("127.0.0.1", port))
    staller.listen(64)
    held = []

    def hold():
        while True:
            try:
                held.append(staller.accept())
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    database = pg.fresh_database()
    table = mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]})
    doors = 'submission = ["127.0.0.1:0"]\n[queue]\nretry = ["1s"]\nexpire = "1h"\n'
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = Satchel(a_dir, doors, doors=7, database=database)
        b = Satchel(b_dir, doors, doors=7, database=database)
        for node in (a, b):
            node.env["SATCHEL_MX_PORT"] = str(port)
            node.dns.write_text(table)
        a.add_user(ALICE)
        a.start()
        sink = None
        try:
            c = submit(a)
            for i in range(20):
                c.sendmail(ALICE, ["dave@remote.test"], mail(f"leased {i}"))
            c.quit()
            sending = "SELECT count(*) FROM queue_rcpt WHERE state = 'sending'"
            wait_for(lambda: a.sql(sending) == [(20,)], timeout=60, what="node A holding all 20")
            b.start()
            # The MX answers from now on; node A's hung connections stay hung.
            staller.shutdown(socket.SHUT_RDWR)
            staller.close()
            time.sleep(0.2)
            sink = Sink("127.0.0.1", port)
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            killed = time.monotonic()
            wait_for(lambda: len(sink.received()) >= 20, timeout=60, what="all 20 at the MX")
            took = time.monotonic() - killed
            time.sleep(3)
            subjects = sorted(
                m[2].split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                for m in sink.received())
            assert subjects == sorted(f"leased {i}" for i in range(20)), subjects
            assert b.cli("queue", "list").stdout == b""
            figure(f"two nodes: node A killed holding 20 queue leases; node B delivered "
                   f"all 20, each once, {took:.1f} s later")
        finally:
            b.stop()
            a.stop()
            if sink:
                sink.close()
            for conn, _ in held:
                conn.close()


def test_a_web_session_and_a_guessers_failures_count_on_every_node():
    with two_nodes('http = ["127.0.0.1:0"]\n', doors=DOORS + 1) as (a, b):
        # Logged in through node A, the same cookie reads mail on node B.
        web = WebSession(a.ports["http"], ALICE)
        web.port = b.ports["http"]
        status, _, page = web.get(web.inbox)
        assert status == 200 and web.csrf in page, status
        # Logged out on node B: node A knows it at once.
        status, _, _ = web.request("POST", "/logout", f"csrf={web.csrf}")
        assert status in (200, 303), status
        web.port = a.ports["http"]
        status, headers, _ = web.get(web.inbox)
        assert (status, headers.get("location")) == (303, "/login"), status
        # Two wrong passwords on node A; the third, on node B, is this
        # address's third failure: held back three seconds, not one.
        wrong_login(a, ALICE)
        wrong_login(a, ALICE)
        held = wrong_login(b, ALICE)
        assert held >= 2.5, f"node B held the failure back {held:.1f} s"
        figure(f"third failure on the other node held back {held:.1f} s")
        assert a.sql("SELECT failures FROM login_failures WHERE key = ?", "ip:127.0.0.1") == [(3,)]



def test_a_node_with_a_body_cache_answers_from_it():
    database = pg.fresh_database()
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        a = Satchel(a_dir, database=database)
        b = Satchel(b_dir, database=database)
        # The harness writes [storage] last; the cache setting joins it.
        a.config.write_text(a.config.read_text() + "body_cache_mb = 8\n")
        a.add_user(ALICE)
        a.start()
        b.start()
        try:
            send(a, 3, "cached")
            c = a.imap(ALICE)
            c.select("INBOX")
            _, first = c.fetch("1:3", "(BODY.PEEK[])")
            # The files are written beside the answer; give them a moment.
            for _ in range(100):
                files = [p for p in (a.data / "body-cache").rglob("*")
                         if p.is_file() and p.parent.name != "tmp"]
                if len(files) == 3:
                    break
                time.sleep(0.05)
            assert len(files) == 3, files
            # Bodies never change in the database; this one is changed
            # behind both nodes' backs, to see which one still asks it.
            a.sql("UPDATE blobs SET body = 'changed'::bytea")
            _, again = c.fetch("1:3", "(BODY.PEEK[])")
            assert again == first, "node A answered from its cache"
            c.logout()
            # A restart empties the memory; the disk cache still answers.
            a.stop()
            a.start()
            c = a.imap(ALICE)
            c.select("INBOX")
            _, after_restart = c.fetch("1", "(BODY.PEEK[])")
            assert after_restart[0][1] == first[0][1]
            c.logout()
            # Node B has no cache: it reads the database.
            c = b.imap(ALICE)
            c.select("INBOX")
            _, from_b = c.fetch("1", "(BODY.PEEK[])")
            assert from_b[0][1] == b"changed", from_b
            c.logout()
        finally:
            b.stop()
            a.stop()
