"""The verified-login cache (README, "Logins"): a login repeated with the
same password is answered from memory instead of a new Argon2id run, yet a
password changed or an account removed with the CLI while `serve` runs
takes effect at once on IMAP, POP3 and SMTP AUTH, and a wrong password is
never cached: it is refused and throttled every time."""
import imaplib
import poplib
import smtplib
import tempfile
import time

import pytest

from conftest import PASSWORD, Satchel

ALICE = "alice@example.test"


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'submission = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def imap_ok(s, password):
    c = s.imap()
    try:
        c.login(ALICE, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        c.logout()


def pop3_ok(s, password):
    c = s.pop3()
    try:
        c.user(ALICE)
        c.pass_(password)
        return True
    except poplib.error_proto:
        return False
    finally:
        c.quit()


def smtp_ok(s, password):
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
    try:
        c.ehlo("client.example.test")
        c.login(ALICE, password)
        return True
    except smtplib.SMTPAuthenticationError:
        return False
    finally:
        c.quit()


DOORS = [imap_ok, pop3_ok, smtp_ok]


def warm(s, password):
    """Logs in twice on every door: the second one is a cached login."""
    for door in DOORS:
        for _ in range(2):
            assert door(s, password), door.__name__


def test_a_password_changed_while_serving_fails_at_once_everywhere(server):
    warm(server, PASSWORD)
    server.cli("user", "passwd", ALICE, "--password-stdin", stdin=b"brand new\n")
    # The first try after the change, on every door: no grace period.
    for door in DOORS:
        assert not door(server, PASSWORD), f"{door.__name__} took the old password"
        assert door(server, "brand new"), door.__name__
    # Changing it back to the old one works as any new password does.
    server.cli("user", "passwd", ALICE, "--password-stdin", stdin=PASSWORD.encode() + b"\n")
    for door in DOORS:
        assert door(server, PASSWORD), door.__name__
        assert not door(server, "brand new"), door.__name__


def test_a_removed_account_cannot_log_in_with_its_cached_password(server):
    warm(server, PASSWORD)
    server.cli("user", "remove", ALICE)
    for door in DOORS:
        assert not door(server, PASSWORD), door.__name__
    # A new account of the same address and password is a new login.
    server.add_user(ALICE)
    for door in DOORS:
        assert door(server, PASSWORD), door.__name__


def test_a_wrong_password_is_still_refused_and_throttled_after_cached_logins(server):
    warm(server, PASSWORD)
    c = server.imap()
    delays = []
    for _ in range(2):
        start = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(ALICE, "wrong")
        delays.append(time.monotonic() - start)
    # The throttle's one then two seconds (lower bounds), as without a cache.
    assert delays[0] >= 0.9 and delays[1] >= 1.9, delays
    # A prefix or an extension of the right password is just as wrong.
    for wrong in [PASSWORD[:-1], PASSWORD + "x", PASSWORD.upper()]:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(ALICE, wrong)
    c.logout()
    assert imap_ok(server, PASSWORD)
