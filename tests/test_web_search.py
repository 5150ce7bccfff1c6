"""Search and sort in the webmail's message list, over HTTP as the search
form submits them: by sender, recipient, subject, text (decoded), date
range and attachment, and sorted by date, sender, subject (without Re:)
and size."""
import base64
import tempfile
import urllib.parse
from html.parser import HTMLParser

import pytest

from conftest import Satchel
from webclient import WebSession

ALICE = "alice@example.test"


def mail(subject, sender, body="Hello.", date="Tue, 02 Jan 2024 10:00:00 +0000", extra=""):
    return (
        f"From: {sender}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"MIME-Version: 1.0\r\n{extra or 'Content-Type: text/plain; charset=utf-8'}\r\n\r\n{body}\r\n"
    ).encode()


class Rows(HTMLParser):
    """The subjects of the list's rows, in order."""

    def __init__(self):
        super().__init__()
        self.subjects, self.cell = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "td" and ("class", "subject") in attrs:
            self.cell = True
            self.subjects.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = False

    def handle_data(self, data):
        if self.cell:
            self.subjects[-1] += data.strip()


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        qp = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        s.put(ALICE, mail("Budget", "Zoe <zoe@remote.test>", "The budget is =E2=82=AC 12 000.", extra=qp))
        s.put(ALICE, mail("Re: Apples", "Bob <bob@remote.test>", "Green ones."))
        photo = base64.b64encode(b"\x89PNG fake").decode()
        s.put(ALICE, mail("Photo", "Amy <amy@remote.test>",
                          f"--b\r\nContent-Type: text/plain\r\n\r\nSee.\r\n--b\r\nContent-Type: image/png\r\n"
                          f"Content-Disposition: attachment; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{photo}\r\n--b--",
                          extra="Content-Type: multipart/mixed; boundary=b"))
        s.put(ALICE, mail("Cherries", "Bob <bob@remote.test>", "Red ones, a long text " + "x" * 3000))
        s.start()
        try:
            yield {"satchel": s, "session": WebSession(s.ports["http"], ALICE)}
        finally:
            s.stop()


def listed(web, **query):
    w = web["session"]
    status, _, page = w.get(f"{w.inbox}?{urllib.parse.urlencode(query)}")
    assert status == 200, (status, page[:300])
    p = Rows()
    p.feed(page)
    return p.subjects


def test_search_by_field(web):
    assert listed(web, q="bob", field="from") == ["Cherries", "Re: Apples"]
    assert listed(web, q="APPLES", field="subject") == ["Re: Apples"]
    # The text is decoded from quoted-printable and UTF-8 before matching.
    assert listed(web, q="€ 12 000", field="text") == ["Budget"]
    assert listed(web, q="red ones") == ["Cherries"]
    assert listed(web, q="nowhere at all") == []


def test_search_by_attachment_and_date(web):
    assert listed(web, attachment="1") == ["Photo"]
    today = __import__("datetime").date.today().isoformat()
    assert len(listed(web, since=today)) == 4
    assert listed(web, before="2000-01-01") == []


def test_sort(web):
    assert listed(web, sort="subject") == ["Re: Apples", "Budget", "Cherries", "Photo"]
    assert listed(web, sort="subject", order="desc") == ["Photo", "Cherries", "Budget", "Re: Apples"]
    # By the From field as shown ("Amy <...>", "Bob <...>", "Zoe <...>");
    # Bob's two in arrival order.
    assert listed(web, sort="from") == ["Photo", "Re: Apples", "Cherries", "Budget"]
    assert listed(web, sort="size")[0] == "Cherries"
    assert listed(web) == ["Cherries", "Photo", "Re: Apples", "Budget"]
