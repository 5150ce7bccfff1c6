"""An account removed while in use (issue 21): `satchel user remove`, run
in its own process while `serve` runs, ends that account's open sessions on
every door at once, each with its protocol's goodbye, and leaves every other
account's sessions alone. Before, they went on: APPEND answered NO
[TRYCREATE] and CREATE NO [SERVERBUG]."""
import base64
import re
import socket

import pytest

from conftest import PASSWORD, serving
from webclient import WebSession

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def server():
    with serving('submission = ["127.0.0.1:0"]\nhttp = ["127.0.0.1:0"]\n', doors=8) as s:
        yield s


class Line:
    """A line-based session over a raw socket."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        return self.file.readline().decode(errors="replace").rstrip("\r\n")

    def until(self, prefix):
        """Lines up to and including the first that starts with `prefix`."""
        seen = []
        while True:
            line = self.line()
            seen.append(line)
            if line.startswith(prefix) or line == "":
                return seen

    def closed(self):
        """The rest of what the server said before it closed the connection."""
        rest = []
        while True:
            line = self.file.readline()
            if not line:
                return rest
            rest.append(line.decode(errors="replace").rstrip("\r\n"))


def plain(user):
    return base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()


def imap(s, user, then=()):
    c = Line(s.ports["imap"])
    c.line()
    c.send(f'a LOGIN "{user}" "{PASSWORD}"')
    assert c.until("a ")[-1].startswith("a OK"), user
    for i, command in enumerate(then):
        c.send(f"b{i} {command}")
        if command == "IDLE":
            assert c.line().startswith("+ "), "no IDLE continuation"
        else:
            assert c.until(f"b{i} ")[-1].startswith(f"b{i} OK"), command
    return c


def pop3(s, user):
    c = Line(s.ports["pop3"])
    c.line()
    c.send(f"USER {user}")
    assert c.line().startswith("+OK")
    c.send(f"PASS {PASSWORD}")
    assert c.line().startswith("+OK"), user
    return c


def managesieve(s, user):
    c = Line(s.ports["managesieve"])
    c.until("OK")
    c.send(f'AUTHENTICATE "PLAIN" "{plain(user)}"')
    assert c.until("OK")[-1].startswith("OK"), user
    return c


def submission(s, user):
    c = Line(s.ports["submission"])
    c.line()
    c.send("EHLO client.example.test")
    c.until("250 ")
    c.send(f"AUTH PLAIN {plain(user)}")
    assert c.line().startswith("235"), user
    return c


def sessions_of(s, user):
    return {
        "imap authenticated": imap(s, user),
        "imap selected": imap(s, user, ["SELECT INBOX"]),
        "imap idle": imap(s, user, ["SELECT INBOX", "IDLE"]),
        "pop3": pop3(s, user),
        "managesieve": managesieve(s, user),
        "submission": submission(s, user),
    }


GOODBYE = {
    "imap authenticated": "* BYE This account was removed",
    "imap selected": "* BYE This account was removed",
    "imap idle": "* BYE This account was removed",
    "pop3": "-ERR [SYS/PERM] This account was removed",
    "managesieve": 'BYE "This account was removed',
    "submission": "421 4.7.0 This account was removed",
}


def test_removing_an_account_ends_its_sessions_on_every_door(server):
    s = server
    alice = sessions_of(s, ALICE)
    bob = sessions_of(s, BOB)
    alice_web = WebSession(s.ports["http"], ALICE)
    bob_web = WebSession(s.ports["http"], BOB)

    s.cli("user", "remove", ALICE)

    for door, c in alice.items():
        said = c.closed()
        assert said and said[-1].startswith(GOODBYE[door]), (door, said)
    # The web session is gone too: its pages send the browser to log in.
    status, headers, _ = alice_web.get("/mail")
    assert status == 303 and headers["location"].startswith("/login"), (status, headers)

    # Bob's sessions were not touched: each still answers.
    for door, c in bob.items():
        if door == "imap idle":
            c.send("DONE")
            assert c.line().startswith("b1 OK"), door
        elif door.startswith("imap"):
            c.send("n NOOP")
            assert c.until("n ")[-1].startswith("n OK"), door
        elif door == "pop3":
            c.send("STAT")
            assert c.line().startswith("+OK"), door
        elif door == "managesieve":
            c.send("LISTSCRIPTS")
            assert c.until("OK")[-1].startswith("OK"), door
        else:
            c.send("NOOP")
            assert c.line().startswith("250"), door
    status, _, _ = bob_web.get("/mail")
    assert status == 303 or status == 200
    status, _, page = bob_web.get(bob_web.inbox)
    assert status == 200 and "INBOX" in page
    assert re.search(r"account \d+ removed: its open sessions were ended", s.log()), s.log()[-2000:]


def test_a_new_account_of_the_same_address_is_not_ended_by_the_old_removal(server):
    s = server
    s.cli("user", "remove", ALICE)
    s.add_user(ALICE)
    c = imap(s, ALICE, ["SELECT INBOX"])
    c.send("n NOOP")
    assert c.until("n ")[-1].startswith("n OK")
    c.send("z LOGOUT")
    assert c.until("z ")[-1].startswith("z OK")
