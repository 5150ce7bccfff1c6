"""The webmail over TLS (`[listen] https`) and behind a proxy it trusts
(`[web] trusted_proxies`): session cookies are Secure exactly when the page
came over HTTPS, the door offers HTTP/1.1 by ALPN, and X-Forwarded-For is
believed from a trusted proxy only (it is what the login throttle and the
fail2ban line name)."""
import http.client
import re
import ssl
import tempfile
import time
import urllib.parse

import pytest

from conftest import PASSWORD, Satchel
from webclient import browser_run

ALICE = "alice@example.test"


@pytest.fixture(scope="module")
def satchel():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(
            tmp,
            'http = ["127.0.0.1:0"]\nhttps = ["127.0.0.1:0"]\n'
            '[web]\ntrusted_proxies = ["127.0.0.1"]\n',
            doors=8,
        )
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def tls_context(s):
    # The server's own self-signed certificate, checked by name: it was made
    # for the listening addresses too.
    ctx = ssl.create_default_context(cafile=str(s.data / "cert.pem"))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def connect(s, door):
    if door == "https":
        return http.client.HTTPSConnection("127.0.0.1", s.ports["https"], timeout=30, context=tls_context(s))
    return http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=30)


def login(s, door, password=PASSWORD, headers=None):
    """GET /login then POST it: (status, the Set-Cookie values of the POST)."""
    c = connect(s, door)
    c.request("GET", "/login", headers=headers or {})
    r = c.getresponse()
    page = r.read().decode()
    first = r.getheader("Set-Cookie")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    body = urllib.parse.urlencode({"address": ALICE, "password": password, "csrf": token})
    c.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": first.split(";")[0], **(headers or {})})
    r = c.getresponse()
    r.read()
    cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    c.close()
    return r.status, first, cookies


def attributes(cookie):
    return {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}


def test_https_door_speaks_http11_with_the_servers_certificate(satchel):
    c = connect(satchel, "https")
    c.request("GET", "/login")
    r = c.getresponse()
    assert r.status == 200 and 'name="csrf"' in r.read().decode()
    # The browser's h2 is declined: the door speaks HTTP/1.1 (RFC 7301).
    assert c.sock.selected_alpn_protocol() == "http/1.1"
    c.close()


def test_cookies_are_secure_over_https_and_not_over_http(satchel):
    status, form_cookie, cookies = login(satchel, "https")
    assert status == 303, cookies
    session = [c for c in cookies if c.startswith("satchel_session=")][0]
    assert {"secure", "httponly", "samesite"} <= attributes(session), session
    assert "secure" in attributes(form_cookie), form_cookie

    status, form_cookie, cookies = login(satchel, "http")
    assert status == 303, cookies
    session = [c for c in cookies if c.startswith("satchel_session=")][0]
    # A Secure cookie over plain HTTP would never come back: login would loop.
    assert "secure" not in attributes(session) and "httponly" in attributes(session), session


def test_a_trusted_proxy_names_the_client_and_says_https(satchel):
    # nginx on this machine, answering a client at 203.0.113.9 over HTTPS.
    proxied = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"}
    status, _, _ = login(satchel, "http", password="wrong", headers=proxied)
    assert status == 401
    log = satchel.log()
    # The proxy's own entry (the last), not what the client wrote before it.
    assert f"login failed: door=http user={ALICE} rip=203.0.113.9" in log, log[-2000:]
    assert "rip=198.51.100.1" not in log

    status, _, cookies = login(satchel, "http", headers=proxied)
    assert status == 303
    session = [c for c in cookies if c.startswith("satchel_session=")][0]
    assert "secure" in attributes(session), session


def test_wrong_passwords_are_refused_and_slowed_per_client(satchel):
    """The web's login goes through the door kit's throttle: each wrong
    password from a client waits longer than the last (lower bounds: one,
    then two seconds), and says so on the form; the right one still works."""
    client = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}
    delays = []
    for _ in range(2):
        start = time.monotonic()
        status, _, _ = login(satchel, "http", password="wrong", headers=client)
        delays.append(time.monotonic() - start)
        assert status == 401
    assert delays[0] >= 0.9 and delays[1] >= 1.9, delays
    status, _, cookies = login(satchel, "http", headers=client)
    assert status == 303 and [c for c in cookies if c.startswith("satchel_session=")]


def test_a_password_from_afar_over_plain_http_is_refused_even_via_the_proxy(satchel):
    # The proxy says its client came over plain HTTP from the network: the
    # password is not taken (the contract's [auth] plaintext_anywhere is off).
    plain = {"X-Forwarded-For": "203.0.113.10", "X-Forwarded-Proto": "http"}
    status, _, cookies = login(satchel, "http", headers=plain)
    assert status == 403, cookies
    assert not [c for c in cookies if c.startswith("satchel_session=")]


def test_an_untrusted_peer_cannot_claim_an_address():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            status, _, cookies = login(s, "http", password="wrong", headers={
                "X-Forwarded-For": "203.0.113.11", "X-Forwarded-Proto": "https"})
            assert status == 401
            log = s.log()
            assert f"login failed: door=http user={ALICE} rip=127.0.0.1" in log, log[-2000:]
            assert "203.0.113.11" not in log
            status, _, cookies = login(s, "http", headers={"X-Forwarded-Proto": "https"})
            session = [c for c in cookies if c.startswith("satchel_session=")][0]
            assert "secure" not in attributes(session), session
        finally:
            s.stop()


def test_login_in_chromium_over_https_keeps_a_secure_cookie(satchel):
    run = browser_run(satchel, "web-https.mjs", ALICE, door="https")
    assert not run["errors"], run
    assert run["login"]["protocol"] == "https:" and run["login"]["path"].startswith("/mail/"), run["login"]
    session = [c for c in run["cookies"] if c["name"] == "satchel_session"]
    assert session == [{"name": "satchel_session", "secure": True, "httpOnly": True, "sameSite": "Strict"}], run["cookies"]
