"""Fixtures for tests that drive a running `satchel serve` with real clients.

Each test gets its own data folder and free ports; the server is the binary
cargo built (SATCHEL_BIN, default target/debug/satchel)."""
import contextlib
import os
import signal
import ssl
import subprocess
import imaplib
import poplib
import smtplib
import tempfile
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ.get("SATCHEL_BIN", str(ROOT / "target" / "debug" / "satchel"))
PASSWORD = "secret"


DOORS = 6  # lines `serve` prints after the store line

# The store every test's server runs on: "embedded" (the default) or
# "postgres", a database of its own on a throwaway server (tests/pg.py).
# scripts/test.sh runs the suite on both.
BACKEND = os.environ.get("SATCHEL_TEST_BACKEND", "embedded")


class Satchel:
    def __init__(self, tmp, extra_config="", doors=DOORS, database=None, embedded=False):
        self.dir = pathlib.Path(tmp)
        self.data = self.dir / "data"
        self.backend = "embedded" if embedded else BACKEND
        self.config = self.dir / "satchel.toml"
        self.config.write_text(
            'hostname = "mail.example.test"\n'
            'domains = ["example.test"]\n'
            "[listen]\n"
            'imap = ["127.0.0.1:0"]\n'
            'imaps = ["127.0.0.1:0"]\n'
            'pop3 = ["127.0.0.1:0"]\n'
            'pop3s = ["127.0.0.1:0"]\n'
            'smtp = ["127.0.0.1:0"]\n'
            'managesieve = ["127.0.0.1:0"]\n'
            + extra_config
            + ("" if embedded else self._storage(database))
        )
        # A static DNS table for SPF/DKIM/DMARC (empty: every lookup fails at
        # once); tests write it and restart to change the answers.
        self.dns = self.dir / "dns.txt"
        self.dns.write_text("")
        self.ports = {}
        self.proc = None
        # How many door lines `serve` prints, and more environment for it.
        self.doors = doors
        self.env = {}

    def _storage(self, database):
        """The [storage] table of the suite's backend (last in the file, so
        that a test's own tables come before it); with `database`, that
        PostgreSQL database (a second node of one store)."""
        if database is None and BACKEND != "postgres":
            return ""
        import pg
        self.backend = "postgres"
        self.database = database or pg.fresh_database()
        return f'\n[storage]\nbackend = "postgres"\nurl = "{self.database}"\n'

    def sql(self, query, *params):
        """Runs one SQL statement on the server's store, whichever the
        backend (the tables are the same; `?` marks a parameter); answers
        its rows as tuples, numbers as ints. For what no door shows."""
        if self.backend == "postgres":
            import pg
            for p in params:
                literal = str(p) if isinstance(p, int) else "'" + str(p).replace("'", "''") + "'"
                query = query.replace("?", literal, 1)
            out = pg.server().psql(self.database.rsplit("/", 1)[1], query)
            number = lambda v: int(v) if v.lstrip("-").isdigit() else v
            return [tuple(number(v) for v in line.split("|")) for line in out.splitlines() if line]
        import sqlite3
        db = sqlite3.connect(self.data / "index.sqlite")
        try:
            rows = db.execute(query, params).fetchall()
            db.commit()
            return rows
        finally:
            db.close()

    def bodies(self):
        """How many message bodies the store holds (each stored once)."""
        if self.backend == "postgres":
            return self.sql("SELECT count(*) FROM blobs")[0][0]
        root = self.data / "blobs"
        return sum(1 for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")

    def cli(self, *args, stdin=b"", check=True, timeout=60):
        out = subprocess.run(
            [BIN, "--config", str(self.config), "--data", str(self.data), *args],
            input=stdin, capture_output=True, timeout=timeout,
            # The same DNS as `serve` (`spam score --ip` checks senders).
            env=dict(os.environ, SATCHEL_DNS_STATIC=str(self.dns), **self.env),
        )
        if check and out.returncode != 0:
            raise AssertionError(f"satchel {args} failed: {out.stderr.decode()}")
        return out

    def add_user(self, address, password=PASSWORD):
        self.cli("user", "add", address, "--password-stdin", stdin=password.encode() + b"\n")

    def deliver(self, to, message):
        if isinstance(message, str):
            message = message.encode()
        out = self.cli("deliver", "--from", "sender@remote.test", "--to", to, stdin=message)
        return int(out.stdout.split()[-1])

    def put(self, to, message, mailbox="INBOX"):
        """Stores exactly these bytes in a mailbox of `to`, as an IMAP APPEND
        or `satchel import` does: no trace fields, no spam fields (what a
        test of FETCH sizes or RETR bytes needs; `deliver` adds both)."""
        if isinstance(message, str):
            message = message.encode()
        self._puts = getattr(self, "_puts", 0) + 1
        maildir = self.dir / f"put-{self._puts}"
        (maildir / "cur").mkdir(parents=True)
        (maildir / "new").mkdir()
        (maildir / "new" / "1.eml").write_bytes(message)
        self.cli("import", to, "--mailbox", mailbox, str(maildir))

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "--config", str(self.config), "--data", str(self.data), "serve"],
            stdout=subprocess.PIPE, stderr=self._log_file(),
            env=dict(os.environ, SATCHEL_DNS_STATIC=str(self.dns), **self.env),
        )
        first = self.proc.stdout.readline().decode()
        assert first.startswith(f"store {self.backend}"), first
        for _ in range(self.doors):
            door, addr = self.proc.stdout.readline().decode().split()
            self.ports[door] = int(addr.rsplit(":", 1)[1])

    def _log_file(self):
        # The server's log, kept across restarts, for tests of what the
        # admin sees (`log()`).
        if getattr(self, "_log", None) is None:
            self._log = open(self.dir / "serve.log", "ab")
        return self._log

    def log(self):
        return (self.dir / "serve.log").read_text(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("serve did not stop on SIGTERM")
            assert self.proc.returncode == 0, self.proc.returncode

    def imap(self, user=None, password=PASSWORD):
        """A plain-text IMAP connection (loopback allows LOGIN), logged in
        when `user` is given."""
        c = imaplib.IMAP4("127.0.0.1", self.ports["imap"])
        if user:
            c.login(user, password)
        return c

    def pop3(self, user=None, password=PASSWORD):
        c = poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=30)
        if user:
            c.user(user)
            c.pass_(password)
        return c

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=30)

    def imaps(self):
        return imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=insecure_tls())


def insecure_tls():
    """The server's certificate is self-signed: accept it."""
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@contextlib.contextmanager
def serving(extra="", users=("alice@example.test", "bob@example.test"), doors=DOORS, before=None):
    """A running server in a fresh folder with these accounts; `before(s)`
    runs once the accounts exist, before `serve` starts."""
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, extra, doors=doors)
        for user in users:
            s.add_user(user)
        if before:
            before(s)
        s.start()
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture
def satchel(request):
    with serving(getattr(request, "param", "")) as s:
        yield s


def message(subject="Hello", body="Hi there.", sender="Carol <carol@remote.test>", extra=""):
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{abs(hash(subject + body))}@remote.test>\r\n"
        f"{extra}\r\n{body}\r\n"
    ).encode()


# Figures the fault, flood and hostile-input tests measured (rounds,
# messages acknowledged, connections refused, RSS): printed together at the
# end of the run, so that CI's output shows what was tried, not only that
# it passed.
FIGURES = []


def wrong_login(server, user):
    """A wrong IMAP password for `user` on `server`; how many seconds the
    server held back its answer (the login throttle's delay)."""
    import time
    c = server.imap()
    started = time.monotonic()
    try:
        c.login(user, "wrong")
        raise AssertionError("a wrong password was taken")
    except imaplib.IMAP4.error:
        pass
    held = time.monotonic() - started
    c.logout()
    return held


def figure(line):
    print(line)
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
