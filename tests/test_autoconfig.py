"""Client autoconfiguration (issue 17), fetched as the clients fetch it:
Thunderbird's autoconfig file (well-known path, and the autoconfig.DOMAIN
host form), Outlook's Autodiscover POST, and the Apple profile from the
settings page. Each must name the ports the doors are bound to with their
TLS modes, and those modes must be what the doors speak."""
import http.client
import imaplib
import plistlib
import poplib
import smtplib
import ssl
import tempfile
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, Satchel
from webclient import WebSession

ALICE = "alice@example.test"
MS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\nsubmission = ["127.0.0.1:0"]\nsubmissions = ["127.0.0.1:0"]\n', doors=9)
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def request(s, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), data


def expected(s):
    """(protocol, port, implicit TLS) for every door a client may use."""
    p = s.ports
    return {("imap", p["imaps"], True), ("imap", p["imap"], False), ("pop3", p["pop3s"], True),
            ("pop3", p["pop3"], False), ("smtp", p["submissions"], True), ("smtp", p["submission"], False)}


def speaks(s, kind, port, implicit):
    """Whether the door at `port` takes a TLS client the way it was described."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if kind == "imap":
        c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx) if implicit else imaplib.IMAP4("127.0.0.1", port)
        if not implicit:
            c.starttls(ssl_context=ctx)
        c.login(ALICE, PASSWORD)
        c.logout()
    elif kind == "pop3":
        c = poplib.POP3_SSL("127.0.0.1", port, context=ctx) if implicit else poplib.POP3("127.0.0.1", port)
        if not implicit:
            c.stls(context=ctx)
        c.user(ALICE)
        c.pass_(PASSWORD)
        c.quit()
    else:
        c = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx) if implicit else smtplib.SMTP("127.0.0.1", port)
        if not implicit:
            c.starttls(context=ctx)
        c.login(ALICE, PASSWORD)
        c.quit()
    return True


def test_thunderbird_finds_every_door_with_its_tls_mode(server):
    s = server
    status, ctype, body = request(s, "GET", f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={ALICE}")
    assert status == 200 and ctype.startswith("application/xml"), (status, ctype)
    root = ET.fromstring(body)
    provider = root.find("emailProvider")
    assert provider.get("id") == "example.test" and provider.findtext("domain") == "example.test"
    found = set()
    for tag in ("incomingServer", "outgoingServer"):
        for srv in provider.findall(tag):
            assert srv.findtext("hostname") == "mail.example.test"
            assert srv.findtext("username") == "%EMAILADDRESS%"
            assert srv.findtext("authentication") == "password-cleartext"
            found.add((srv.get("type"), int(srv.findtext("port")), srv.findtext("socketType") == "SSL"))
    assert found == expected(s), found
    # Implicit TLS is offered first (RFC 8314).
    first = provider.find("incomingServer")
    assert first.findtext("socketType") == "SSL" and first.get("type") == "imap"
    for way in found:
        assert speaks(s, *way), way

    # The autoconfig.DOMAIN form: the same file at /mail/config-v1.1.xml.
    status, _, again = request(s, "GET", f"/mail/config-v1.1.xml?emailaddress={ALICE}",
                               headers={"Host": "autoconfig.example.test"})
    assert status == 200 and again == body
    status, _, _ = request(s, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x@elsewhere.test")
    assert status == 404


def test_outlook_autodiscover_answers_the_post(server):
    s = server
    ask = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
        f"<Request><EMailAddress>{ALICE}</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    )
    status, ctype, body = request(s, "POST", "/autodiscover/autodiscover.xml", body=ask,
                                  headers={"Content-Type": "text/xml"})
    assert status == 200 and ctype.startswith("application/xml"), status
    account = ET.fromstring(body).find(f"{MS}Response/{MS}Account")
    assert account.findtext(f"{MS}Action") == "settings"
    found = set()
    for p in account.findall(f"{MS}Protocol"):
        assert p.findtext(f"{MS}Server") == "mail.example.test"
        assert p.findtext(f"{MS}LoginName") == ALICE
        found.add((p.findtext(f"{MS}Type").lower(), int(p.findtext(f"{MS}Port")), p.findtext(f"{MS}Encryption") == "SSL"))
    assert found == expected(s), found
    status, _, _ = request(s, "POST", "/Autodiscover/Autodiscover.xml", body="<nothing/>")
    assert status == 400


def test_apple_profile_from_the_settings_page(server):
    s = server
    w = WebSession(s.ports["http"], ALICE)
    _, _, settings = w.get("/settings")
    assert 'href="/settings/mobileconfig"' in settings
    c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)
    c.request("GET", "/settings/mobileconfig", headers={"Cookie": w.cookie})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and r.getheader("Content-Type") == "application/x-apple-aspen-config"
    assert "attachment" in r.getheader("Content-Disposition")
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration"
    [mail] = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed" and mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == ALICE and mail["IncomingMailServerUsername"] == ALICE
    assert mail["IncomingMailServerHostName"] == "mail.example.test"
    assert (mail["IncomingMailServerPortNumber"], mail["IncomingMailServerUseSSL"]) == (s.ports["imaps"], True)
    assert (mail["OutgoingMailServerPortNumber"], mail["OutgoingMailServerUseSSL"]) == (s.ports["submissions"], True)
    assert profile["PayloadUUID"] != mail["PayloadUUID"]
    # Not without a login.
    c.request("GET", "/settings/mobileconfig")
    r = c.getresponse()
    r.read()
    assert r.status == 303 and r.getheader("Location") == "/login"
