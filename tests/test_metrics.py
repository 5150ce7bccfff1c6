"""`GET /metrics` (issue 17), read with Prometheus' own text parser
(prometheus_client): with `[web] metrics = true` the figures are there and
move with what the server does (a delivery to INBOX and one to Junk over
SMTP, an IMAP connection held open); without it the page is absent."""
import http.client
import smtplib
import tempfile

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Satchel

ALICE = "alice@example.test"


def scrape(s):
    c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def samples(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n[web]\nmetrics = true\n', doors=7)
        s.add_user(ALICE)
        s.cli("spam", "block", ALICE, "@spam.test")
        s.start()
        try:
            yield s
        finally:
            s.stop()


def send(s, sender, subject):
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    c.sendmail(sender, [ALICE], f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nHello.\r\n")
    c.quit()


def test_the_figures_parse_and_follow_what_happens(server):
    s = server
    status, ctype, body = scrape(s)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    before = samples(body)
    inbox = ("satchel_deliveries_total", frozenset({("verdict", "inbox")}))
    junk = ("satchel_deliveries_total", frozenset({("verdict", "junk")}))
    assert before[("satchel_build_info", frozenset({("version", "0.1.0")}))] == 1
    assert before[("satchel_uptime_seconds", frozenset())] >= 0
    assert ("satchel_spam_model_tokens", frozenset()) in before
    assert before[("satchel_accounts", frozenset())] == 1
    assert before[("satchel_disk_bytes", frozenset({("part", "index")}))] > 0

    send(s, "friend@remote.test", "Hello")
    send(s, "pest@spam.test", "Pills")
    held = s.imap(ALICE)
    after = samples(scrape(s)[2])
    assert after[inbox] == before.get(inbox, 0) + 1, after
    assert after[junk] == before.get(junk, 0) + 1, after
    assert after[("satchel_connections", frozenset({("door", "imap")}))] >= 1, after
    held.logout()


def test_absent_unless_turned_on():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.start()
        try:
            status, _, body = scrape(s)
            assert status == 404 and "metrics = true" in body
        finally:
            s.stop()
