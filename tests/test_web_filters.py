"""The webmail's filters page, in a real browser (tests/node/web-filters.mjs):
a syntax error is shown at its line and nothing is saved; a good script is
saved and filters the next delivery; the rule form writes Sieve that the
editor shows and the outgoing phase obeys."""
import smtplib
import tempfile
import time

import pytest

from conftest import PASSWORD, Satchel
from webclient import browser_run, steps

ALICE = "alice@example.test"
BROKEN = 'require ["fileinto"];\nif header :contains "subject" "Invoice" {\n  fileinto "Bills"\n}\n'
FIXED = 'require ["fileinto"];\nif header :contains "subject" "Invoice" {\n  fileinto "Bills";\n}\n'


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\nsubmission = ["127.0.0.1:0"]\n', doors=8)
        s.add_user(ALICE)
        s.start()
        try:
            c = s.imap(ALICE)
            for box in ("Bills", "Clients", "Clients/ACME"):
                c.create(box)
            c.logout()
            run = browser_run(s, "web-filters.mjs", ALICE, {"broken": BROKEN, "fixed": FIXED})
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def count(s, mailbox):
    c = s.imap(ALICE)
    typ, data = c.select(f'"{mailbox}"', readonly=True)
    c.logout()
    assert typ == "OK", mailbox
    return int(data[0])


def test_a_syntax_error_is_shown_at_its_line_and_nothing_is_saved(web):
    (broken,) = steps(web, "broken")
    assert broken["status"] == 400, broken
    # The missing semicolon is found where the block closes, line 4.
    assert broken["error"]["line"] == "4", broken
    assert broken["error"]["text"].startswith("Line 4, column"), broken
    assert "Nothing was saved" in broken["error"]["text"], broken
    assert broken["kept"].replace("\r\n", "\n") == BROKEN


def test_a_good_script_is_saved_and_files_the_next_delivery(web):
    (fixed,) = steps(web, "fixed")
    assert fixed["path"] == "/filters?saved=1" and fixed["saved"], fixed
    s = web["satchel"]
    s.deliver(ALICE, "From: shop@remote.test\r\nTo: alice@example.test\r\nSubject: Invoice 42\r\n\r\nPay.\r\n")
    assert count(s, "Bills") == 1


def test_the_rule_form_writes_sieve_that_files_what_the_user_sends(web):
    (rule,) = steps(web, "rule")
    assert rule["path"] == "/filters?saved=1", rule
    assert 'environment :is "phase" "outgoing"' in rule["script"], rule["script"]
    assert 'fileinto "Clients/ACME";' in rule["script"], rule["script"]
    assert 'fileinto "Bills";' in rule["script"], "the earlier rule is kept"
    s = web["satchel"]
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
    c.login(ALICE, PASSWORD)
    c.sendmail(ALICE, ["bob@acme.test"], (
        f"From: {ALICE}\r\nTo: bob@acme.test\r\nSubject: Quote\r\n"
        "Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <quote-1@example.test>\r\n\r\nHere.\r\n"))
    c.quit()
    deadline = time.monotonic() + 10
    while count(s, "Clients/ACME") == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count(s, "Clients/ACME") == 1
    assert count(s, "Sent") == 0
