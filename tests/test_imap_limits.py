"""IMAP: every limit has a number and holds (design.md, "Rules")."""
import imaplib
import socket
import time

import pytest

from conftest import PASSWORD

ALICE = "alice@example.test"


def connect(satchel):
    s = socket.create_connection(("127.0.0.1", satchel.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return s, f


def login(satchel):
    s, f = connect(satchel)
    s.sendall(f"a LOGIN {ALICE} {PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"a OK")
    return s, f


def test_a_command_line_over_64k_is_refused_and_the_session_goes_on(satchel):
    s, f = login(satchel)
    s.sendall(b"b SEARCH SUBJECT " + b"x" * 70_000 + b"\r\n")
    assert f.readline().startswith(b"b BAD [TOOBIG]"), "tagged, so the client stops waiting"
    s.sendall(b"c NOOP\r\n")
    assert f.readline() == b"c OK NOOP completed.\r\n"


def test_an_append_over_the_limit_is_refused_before_it_is_sent(satchel):
    s, f = login(satchel)
    s.sendall(b"b APPEND INBOX {60000000}\r\n")
    line = f.readline()
    assert line.startswith(b"b NO [TOOBIG]"), line
    s.sendall(b"c NOOP\r\n")
    assert f.readline() == b"c OK NOOP completed.\r\n"


def test_an_oversized_literal_plus_closes_the_connection(satchel):
    s, f = login(satchel)
    s.sendall(b"b APPEND INBOX {60000000+}\r\n" + b"x" * 1000)
    assert f.readline().startswith(b"* BYE [TOOBIG]")
    assert f.readline() == b""


def test_big_literals_outside_append_are_refused(satchel):
    s, f = connect(satchel)
    s.sendall(b"a LOGIN {100000}\r\n")
    assert f.readline().startswith(b"a BAD [TOOBIG]")
    s.sendall(b"b NOOP\r\n")
    assert f.readline() == b"b OK NOOP completed.\r\n"


def test_a_message_at_the_limit_is_taken(satchel):
    s, f = login(satchel)
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 5000
    s.sendall(b"b APPEND INBOX {%d}\r\n" % len(body))
    assert f.readline().startswith(b"+ ")
    s.sendall(body + b"\r\n")
    assert f.readline().startswith(b"b OK [APPENDUID")


def test_multiappend_limits_each_message_and_the_whole(satchel):
    """Issue 21: the size limit is each message's (two of 26 MB, together
    over one message's 50 MB, are stored), and the command's literals have
    a limit of their own, twice that, refused before the bytes are sent."""
    s, f = login(satchel)
    s.settimeout(60)
    body = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 26_000
    s.sendall(b"b APPEND INBOX {%d+}\r\n" % len(body) + body
              + b" {%d+}\r\n" % len(body) + body + b"\r\n")
    line = f.readline()
    assert line.startswith(b"b OK [APPENDUID ") and b":" in line.split(b"]")[0], line
    chunk = b"x" * 40_000_000
    s.sendall(b"c APPEND INBOX {40000000}\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(chunk + b" {40000000}\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(chunk + b" {30000000}\r\n")
    line = f.readline()
    assert line.startswith(b"c NO [TOOBIG] The command's literals come to 110000000 bytes"), line
    s.sendall(b"d STATUS INBOX (MESSAGES)\r\n")
    assert f.readline() == b"* STATUS INBOX (MESSAGES 2)\r\n"


def test_connections_per_address_are_limited(satchel):
    held = [connect(satchel) for _ in range(64)]
    s = socket.create_connection(("127.0.0.1", satchel.ports["imap"]), timeout=10)
    assert s.makefile("rb").readline().startswith(b"* BYE [UNAVAILABLE] Too many connections")
    held.pop()[0].close()
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", satchel.ports["imap"]), timeout=10)
        greeting = s.makefile("rb").readline()
        if greeting.startswith(b"* OK"):
            break
        s.close()
    assert greeting.startswith(b"* OK"), "a freed slot is usable again"


def test_sessions_per_user_are_limited(satchel):
    held = [imaplib.IMAP4("127.0.0.1", satchel.ports["imap"]) for _ in range(33)]
    for c in held[:32]:
        c.login(ALICE, PASSWORD)
    typ, data = held[32]._simple_command("LOGIN", ALICE, PASSWORD)
    assert typ == "NO" and b"[LIMIT]" in data[0]
    assert held[32].login("bob@example.test", PASSWORD)[0] == "OK", "other users are not affected"
    held[0].logout()
    typ, _ = held[32]._simple_command("LOGOUT")
    c = imaplib.IMAP4("127.0.0.1", satchel.ports["imap"])
    for _ in range(50):
        try:
            c.login(ALICE, PASSWORD)
            break
        except imaplib.IMAP4.error:
            pass
    assert c.state == "AUTH"


def test_a_burst_of_logins_leaves_no_memory_behind(satchel):
    """Argon2id takes 19 MiB per login: hashes are bounded in number and
    their blocks go back to the system, so 40 logins at once do not leave
    the server holding hundreds of megabytes."""
    import threading

    def rss_anon_kib():
        with open(f"/proc/{satchel.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("RssAnon:")).split()[1])

    failures = []

    def login(n):
        try:
            c = satchel.imap()
            c.login("alice@example.test", PASSWORD if n % 4 else "wrong")
            c.logout()
        except Exception as e:  # wrong passwords fail, as they should
            failures.append(str(e))

    threads = [threading.Thread(target=login, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(failures) == 10, failures
    assert rss_anon_kib() < 150 * 1024, rss_anon_kib()


LIMITS = "[limits]\nimap_per_ip = 3\npop3_per_ip = 2\nsmtp_per_ip = 4\nmanagesieve_per_ip = 1\n"


@pytest.mark.parametrize("satchel", [LIMITS], indirect=True)
def test_configured_connection_limits_hold_on_every_door(satchel):
    # Each door takes exactly its configured number from one address, and
    # the next one is told why it is turned away.
    for door, n, refusal in [
        ("imap", 3, b"* BYE [UNAVAILABLE] Too many connections"),
        ("pop3", 2, b"-ERR [SYS/TEMP] Too many connections"),
        ("smtp", 4, b"421 4.7.0 Too many connections"),
        ("managesieve", 1, b'BYE (TRYLATER) "Too many connections'),
    ]:
        held = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=10)
            f = s.makefile("rb")
            first = f.readline()
            assert not first.startswith((b"* BYE", b"-ERR", b"421", b"BYE")), (door, first)
            held.append((s, f))
        s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=10)
        assert s.makefile("rb").readline().startswith(refusal), door
        s.close()
        for s, f in held:
            f.close()
            s.close()


TOTALS = ("[limits]\nimap_total = 2\npop3_total = 2\nsmtp_total = 2\nmanagesieve_total = 2\n"
          "imap_per_ip = 50\npop3_per_ip = 50\nsmtp_per_ip = 50\nmanagesieve_per_ip = 50\n")


@pytest.mark.parametrize("satchel", [TOTALS], indirect=True)
def test_each_door_holds_its_total_whatever_the_addresses(satchel):
    # The per-address limits are far away: what turns the third client
    # away is the door's total, and a slot freed is taken again.
    for door, refusal in [
        ("imap", b"* BYE [UNAVAILABLE] Too many connections"),
        ("pop3", b"-ERR [SYS/TEMP] Too many connections"),
        ("smtp", b"421 4.7.0 Too many connections"),
        ("managesieve", b'BYE (TRYLATER) "Too many connections'),
    ]:
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=10)
            f = s.makefile("rb")
            assert not f.readline().startswith((b"* BYE", b"-ERR", b"421", b"BYE")), door
            held.append((s, f))
        s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=10)
        assert s.makefile("rb").readline().startswith(refusal), door
        s.close()
        s, f = held.pop()
        f.close()
        s.close()
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=10)
            first = s.makefile("rb").readline()
            s.close()
            if not first.startswith(refusal):
                break
            time.sleep(0.05)  # the freed slot is released when the session ends
        else:
            raise AssertionError(f"{door}: the freed slot never came back")
        for s, f in held:
            f.close()
            s.close()


@pytest.mark.parametrize("satchel", ["[limits]\nimap_per_user = 200\nimap_per_ip = 200\n"], indirect=True)
def test_selected_sessions_hold_little_of_a_big_mailbox(satchel, tmp_path):
    """A session keeps about 40 bytes per message of its selected mailbox
    (UID, flags, MODSEQ); sizes, dates and bodies stay in the store. With
    3,000 messages a session adds about 130 KiB (the full index entries
    took about 490 KiB); the bound leaves room for the allocator's noise."""
    n = 3000
    mbox = tmp_path / "big.mbox"
    with open(mbox, "w") as f:
        for i in range(n):
            f.write(f"From sender@remote.test Thu Jan  4 10:00:00 2024\n"
                    f"From: sender@remote.test\nSubject: message {i}\n\nbody {i}\n\n")
    satchel.cli("import", "alice@example.test", "--mailbox", "INBOX", str(mbox))

    def rss_anon_kib():
        with open(f"/proc/{satchel.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("RssAnon:")).split()[1])

    sessions = []

    def select(count):
        for _ in range(count):
            c = satchel.imap("alice@example.test")
            assert c.select("INBOX")[1] == [str(n).encode()]
            sessions.append(c)

    # The first sessions also grow the allocator's pools (each database
    # thread's among them): the slope after them is what a session holds.
    select(30)
    before = rss_anon_kib()
    select(40)
    grown = rss_anon_kib() - before
    assert grown < 40 * 300, f"{grown} KiB for 40 sessions"
    # New mail does not double what they hold (a list grown by doubling).
    satchel.deliver("alice@example.test", "Subject: one more\r\n\r\nhi\r\n")
    time.sleep(1)  # another process's change reaches the server's sessions
    before = rss_anon_kib()
    for c in sessions:
        c.noop()
        assert c.response("EXISTS")[1][-1] == str(n + 1).encode()
    grown = rss_anon_kib() - before
    assert grown < 40 * 40, f"{grown} KiB for one new message in 40 sessions"
    n += 1
    # What they hold still answers: sizes and dates come from the store.
    typ, data = sessions[-1].fetch(f"{n}", "(RFC822.SIZE INTERNALDATE FLAGS)")
    assert typ == "OK" and b"RFC822.SIZE" in data[0] and b"INTERNALDATE" in data[0], data
    typ, data = sessions[0].search(None, "LARGER", "10", "SINCE", "1-Jan-2000")
    assert typ == "OK" and len(data[0].split()) == n
    for c in sessions:
        c.logout()
