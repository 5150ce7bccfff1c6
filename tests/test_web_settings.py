"""The webmail's settings page, in a real browser
(tests/node/web-settings.mjs): a session ended from another one is over;
the POP3 mode is the account's; a vacation reply goes into the Sieve script
and out again; a password change needs the current password and the same
new one twice, then works for IMAP and ends the other web sessions."""
import imaplib
import tempfile

import pytest

from conftest import PASSWORD, Satchel
from webclient import browser_run, steps

ALICE = "alice@example.test"
NEW = "a-much-longer-secret"


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            run = browser_run(s, "web-settings.mjs", ALICE, {"newPassword": NEW})
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def test_a_session_ended_from_another_is_over(web):
    (s,) = steps(web, "sessions")
    assert len(s["rows"]) == 2, s
    assert any("Browser B" in r for r in s["rows"]) and any("this one" in r for r in s["rows"]), s
    assert len(s["after"]) == 1 and "this one" in s["after"][0], s
    assert s["bPath"] == "/login", s


def test_the_pop3_mode_is_saved_for_the_account(web):
    (p,) = steps(web, "pop3")
    assert p["checked"] == "hide" and p["notice"], p
    ((mode,),) = web["satchel"].sql("SELECT pop3_delete FROM accounts WHERE address = ?", ALICE)
    assert mode == "hide"


def test_a_vacation_reply_goes_into_the_script_and_out_again(web):
    on, off = steps(web, "vacationOn", "vacationOff")
    assert on["on"] and on["subject"] == "Away until Monday", on
    assert on["text"].replace("\r\n", "\n") == "I am away.\n.Back on Monday.", on
    assert off["off"] and off["notice"], off
    script = web["satchel"].cli("filter", "get", ALICE).stdout.decode()
    assert "vacation" not in script, script


def test_a_password_change_needs_the_current_one_and_ends_other_sessions(web):
    (p,) = steps(web, "password")
    assert p["wrong"]["status"] == 400 and "current password" in p["wrong"]["error"], p
    assert p["differ"]["status"] == 400 and "differ" in p["differ"]["error"], p
    assert p["done"]["notice"] and "changed" in p["done"]["notice"], p
    assert p["cPath"] == "/login", p  # the session opened meanwhile is over
    assert p["stillIn"].startswith("/mail/"), p  # the one that changed it is not
    s = web["satchel"]
    c = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        c.login(ALICE, PASSWORD)
    c.logout()
    s.imap(ALICE, NEW).logout()
