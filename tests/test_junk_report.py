"""The junk report (issue 17) for a POP3 user, whose mail program never
shows Junk: `satchel junk-report send` puts one report in their INBOX
(fetched here with poplib) listing what arrived in Junk and Possible Junk,
each with a `Release: URL` line; the link, fetched with no cookie, moves
the message to INBOX where the next POP3 session sees it; used again it
says so; a changed token is refused; nothing is sent when nothing arrived;
an IMAP user does not get one unless they turned it on."""
import email
import email.policy
import http.client
import re
import tempfile
import urllib.parse

import pytest

from conftest import Satchel

POP = "pop@example.test"
IMAPPER = "imap@example.test"


def spam(n):
    return (f"From: Pest {n} <pest{n}@spam.test>\r\nTo: {POP}\r\nSubject: Cheap pills {n}\r\n"
            f"Message-ID: <pest-{n}@spam.test>\r\n\r\nBuy now {n}.\r\n")


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        for user in (POP, IMAPPER):
            s.add_user(user)
            s.cli("spam", "block", user, "@spam.test")
        s.start()
        try:
            # Who reads how: one over POP3 only, one over IMAP.
            p = s.pop3(POP)
            p.quit()
            c = s.imap(IMAPPER)
            c.logout()
            yield s
        finally:
            s.stop()


def pop3_messages(s):
    """Every message of POP's INBOX over POP3, parsed."""
    p = s.pop3(POP)
    count, _ = p.stat()
    out = [email.message_from_bytes(b"\r\n".join(p.retr(i + 1)[1]), policy=email.policy.default)
           for i in range(count)]
    p.quit()
    return out


def get(s, url):
    """GETs the link's path on the web door, as a browser with no session."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
    c.request("GET", f"{u.path}?{u.query}")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def test_a_pop3_user_gets_a_report_and_releases_by_its_link(server):
    s = server
    for n in (1, 2):
        s.deliver(POP, spam(n))
        s.deliver(IMAPPER, spam(n).replace(POP, IMAPPER))
    assert pop3_messages(s) == [], "the spam is in Junk, which POP3 does not show"

    out = s.cli("junk-report", "send").stdout.decode()
    # POP is a POP3-only user; IMAP reads Junk in its client.
    assert out.strip() == f"{POP}: sent, 2 messages", out

    [report] = pop3_messages(s)
    assert report["Subject"] == "Junk report: 2 messages held for you", report["Subject"]
    assert report["Auto-Submitted"] == "auto-generated"
    text = report.get_body(("plain",)).get_content()
    html = report.get_body(("html",)).get_content()
    assert "Cheap pills 1" in text and "Cheap pills 2" in text and "pest1@spam.test" in text, text
    releases = re.findall(r"^Release: (\S+)\r?$", text, re.M)
    assert len(releases) == 2, text
    assert all(r in html.replace("&amp;", "&") for r in releases), html
    assert "Score: " in text and "30 days" in text, text

    status, page = get(s, releases[0])
    assert status == 200 and "Released to your INBOX" in page and "Cheap pills 1" in page, page
    subjects = [m["Subject"] for m in pop3_messages(s)]
    assert sorted(subjects) == ["Cheap pills 1", "Junk report: 2 messages held for you"], subjects

    status, page = get(s, releases[0])
    assert status == 410 and "already used" in page, page

    u = urllib.parse.urlsplit(releases[1])
    token = urllib.parse.parse_qs(u.query)["t"][0]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    status, page = get(s, f"{u.path}?t={flipped}")
    assert status == 400 and "not one this server made" in page, page
    status, _ = get(s, f"{u.path}?t=")
    assert status == 400

    # Nothing new since the report: nothing sent.
    out = s.cli("junk-report", "send").stdout.decode()
    assert out.strip() == f"{POP}: nothing arrived, nothing sent", out
    assert len(pop3_messages(s)) == 2

    # The second link still works, once.
    status, page = get(s, releases[1])
    assert status == 200 and "Cheap pills 2" in page
    assert len(pop3_messages(s)) == 3


def test_the_choice_is_per_account_and_a_named_account_gets_one_anyway(server):
    s = server
    def send():
        return sorted(s.cli("junk-report", "send").stdout.decode().splitlines())

    s.deliver(IMAPPER, spam(3).replace(POP, IMAPPER))
    # The IMAP user is not asked; the POP3 user had nothing arrive.
    assert send() == [f"{POP}: nothing arrived, nothing sent"]
    out = s.cli("junk-report", "set", IMAPPER, "on").stdout.decode()
    assert out.strip() == f"{IMAPPER} on"
    assert send() == [f"{IMAPPER}: sent, 1 message", f"{POP}: nothing arrived, nothing sent"]
    s.cli("junk-report", "set", POP, "off")
    s.deliver(POP, spam(4))
    assert send() == [f"{IMAPPER}: nothing arrived, nothing sent"]
    # Named, it is sent whatever the setting.
    out = s.cli("junk-report", "send", POP).stdout.decode()
    assert out.strip() == f"{POP}: sent, 1 message", out
    bad = s.cli("junk-report", "send", "nobody@example.test", check=False)
    assert bad.returncode != 0 and b"nobody@example.test" in bad.stderr


def test_the_user_turns_it_on_in_the_webmail_settings(server):
    from webclient import WebSession
    s = server
    w = WebSession(s.ports["http"], IMAPPER)
    status, headers, _ = w.post("/settings/junk-report", {"mode": "on"})
    assert status == 303 and headers["location"] == "/settings?done=junk-report"
    _, _, page = w.get("/settings")
    assert re.search(r'value="on" checked', page), page
    s.deliver(IMAPPER, spam(5).replace(POP, IMAPPER))
    assert f"{IMAPPER}: sent, 1 message" in s.cli("junk-report", "send").stdout.decode()
    status, _, _ = w.post("/settings/junk-report", {"mode": "sometimes"})
    assert status == 400
