"""IMAP: greeting, capabilities, logging in (RFC 9051 6.1, 6.2)."""
import base64
import imaplib
import socket
import time

import pytest

from conftest import PASSWORD, insecure_tls


def raw(satchel):
    s = socket.create_connection(("127.0.0.1", satchel.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    return s, f


def test_greeting_and_capabilities(satchel):
    c = satchel.imap()
    caps = set(c.capabilities)
    for cap in ["IMAP4REV1", "IMAP4REV2", "STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "LITERAL+",
                "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "SPECIAL-USE",
                "CREATE-SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "SEARCHRES", "MULTIAPPEND",
                "APPENDLIMIT=52428800", "BINARY"]:
        assert cap in caps, cap
    typ, data = c.login("alice@example.test", PASSWORD)
    assert typ == "OK" and b"CAPABILITY" in data[0]
    assert b"STARTTLS" not in data[0] and b"AUTH=" not in data[0]
    c.logout()


def test_login_is_case_insensitive_on_the_address(satchel):
    c = satchel.imap()
    assert c.login("Alice@Example.TEST", PASSWORD)[0] == "OK"
    c.logout()


def test_wrong_password_is_refused_after_a_delay_that_grows(satchel):
    c = satchel.imap()
    delays = []
    for _ in range(2):
        start = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login("alice@example.test", "wrong")
        delays.append(time.monotonic() - start)
    # One second after the first failure, two after the second (lower bounds).
    assert delays[0] >= 0.9 and delays[1] >= 1.9, delays
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login("nobody@example.test", PASSWORD)
    c.logout()


def test_authenticate_plain_with_and_without_initial_response(satchel):
    c = satchel.imap()
    creds = f"\0alice@example.test\0{PASSWORD}".encode()
    assert c.authenticate("PLAIN", lambda _: creds)[0] == "OK"
    c.logout()
    s, f = raw(satchel)
    f.readline()
    b64 = base64.b64encode(creds)
    s.sendall(b"a AUTHENTICATE PLAIN " + b64 + b"\r\n")
    assert f.readline().startswith(b"a OK [CAPABILITY ")
    s.close()


def test_authenticate_login_and_cancel(satchel):
    s, f = raw(satchel)
    f.readline()
    s.sendall(b"a AUTHENTICATE LOGIN\r\n")
    assert f.readline() == b"+ VXNlcm5hbWU6\r\n"
    s.sendall(base64.b64encode(b"alice@example.test") + b"\r\n")
    assert f.readline() == b"+ UGFzc3dvcmQ6\r\n"
    s.sendall(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert f.readline().startswith(b"a OK ")
    s.close()
    s, f = raw(satchel)
    f.readline()
    s.sendall(b"b AUTHENTICATE PLAIN\r\n")
    assert f.readline() == b"+ \r\n"
    s.sendall(b"*\r\n")
    assert f.readline().startswith(b"b BAD")
    s.sendall(b"c AUTHENTICATE CRAM-MD5\r\n")
    assert f.readline().startswith(b"c NO")
    s.close()


def test_commands_before_login_are_refused(satchel):
    s, f = raw(satchel)
    f.readline()
    for cmd in [b"a SELECT INBOX", b"b LIST \"\" *", b"c FETCH 1 FLAGS"]:
        s.sendall(cmd + b"\r\n")
        line = f.readline()
        assert line.startswith(cmd.split()[0] + b" BAD"), line
    s.sendall(b"d NOOP\r\n")
    assert f.readline() == b"d OK NOOP completed.\r\n"
    s.sendall(b"e ID (\"name\" \"pytest\")\r\n")
    assert f.readline().startswith(b'* ID ("name" "Satchel"')
    assert f.readline().startswith(b"e OK")
    s.close()


def test_starttls_then_login(satchel):
    c = satchel.imap()
    c.starttls(ssl_context=insecure_tls())
    assert "STARTTLS" not in c.capabilities
    assert c.login("alice@example.test", PASSWORD)[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error):
        c._simple_command("STARTTLS")
    c.logout()


def test_starttls_drops_what_was_pipelined_in_plain_text(satchel):
    s, f = raw(satchel)
    f.readline()
    # An attacker's injected command after STARTTLS must not run over TLS.
    s.sendall(b"a STARTTLS\r\nb LOGIN alice@example.test secret\r\n")
    assert f.readline() == b"a OK Begin TLS negotiation now.\r\n"
    tls = insecure_tls().wrap_socket(s, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"c NOOP\r\n")
    assert tf.readline() == b"c OK NOOP completed.\r\n"
    tls.close()


def test_imaps(satchel):
    c = satchel.imaps()
    assert "STARTTLS" not in c.capabilities
    assert c.login("alice@example.test", PASSWORD)[0] == "OK"
    c.logout()


def test_logout(satchel):
    s, f = raw(satchel)
    f.readline()
    s.sendall(b"a LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    assert f.readline() == b"a OK LOGOUT completed.\r\n"
    assert f.readline() == b""


def test_generated_certificate_names_the_host(satchel):
    """The self-signed certificate made on first start names the configured
    host (CN and SAN, so fetchmail's name check passes), lists the listening
    address, and is valid for a bounded time; the doors serve it."""
    import datetime
    import ssl
    import subprocess
    pem = (satchel.data / "cert.pem").read_text()
    served = ssl.get_server_certificate(("127.0.0.1", satchel.ports["imaps"]))
    assert served.strip() == pem.strip()
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName", "-startdate", "-enddate"],
        input=pem.encode(), capture_output=True, check=True,
    ).stdout.decode()
    assert "CN = mail.example.test" in out or "CN=mail.example.test" in out, out
    assert "rcgen" not in out, out
    assert "DNS:mail.example.test" in out and "IP Address:127.0.0.1" in out, out
    fmt = "%b %d %H:%M:%S %Y %Z"
    start = datetime.datetime.strptime(out.split("notBefore=")[1].splitlines()[0].replace("  ", " "), fmt)
    end = datetime.datetime.strptime(out.split("notAfter=")[1].splitlines()[0].replace("  ", " "), fmt)
    assert datetime.timedelta(days=365) < end - start <= datetime.timedelta(days=830), (start, end)


def test_a_moved_account_is_referred_elsewhere(satchel):
    """LOGIN-REFERRALS (RFC 2221): `satchel user referral` sends the
    account's IMAP logins to the server it moved to, with NO [REFERRAL];
    only the right password learns where; --none serves it here again."""
    c = satchel.imap()
    assert "LOGIN-REFERRALS" in set(c.capabilities)
    c.logout()
    url = "imap://alice%40example.test@mail2.example.test/"
    out = satchel.cli("user", "referral", "alice@example.test", url)
    assert url.encode() in out.stdout, out
    s, f = raw(satchel)
    f.readline()
    s.sendall(f"a LOGIN alice@example.test {PASSWORD}\r\n".encode())
    assert f.readline() == f"a NO [REFERRAL {url}] This account has moved to another server; " \
                           "log in there.\r\n".encode()
    s.sendall(b"b LOGIN alice@example.test wrong\r\n")
    line = f.readline()
    assert line.startswith(b"b NO [AUTHENTICATIONFAILED]") and b"REFERRAL" not in line, line
    s.sendall(b"c AUTHENTICATE PLAIN " + base64.b64encode(
        b"\0alice@example.test\0" + PASSWORD.encode()) + b"\r\n")
    assert f.readline().startswith(f"c NO [REFERRAL {url}]".encode())
    s.close()
    bad = satchel.cli("user", "referral", "alice@example.test", "http://elsewhere/", check=False)
    assert bad.returncode != 0 and b"not an IMAP URL" in bad.stderr, bad
    satchel.cli("user", "referral", "alice@example.test", "--none")
    c = satchel.imap()
    typ, _ = c.login("alice@example.test", PASSWORD)
    assert typ == "OK"
    c.logout()
