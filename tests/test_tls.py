"""TLS on every door: only TLS 1.2 and later, and STARTTLS command
injection (the CVE-2011-0411 class) refused everywhere: what a client
pipelines in plain text after STARTTLS is dropped, never run once TLS is
up; and the certificate reloaded on SIGHUP without dropping a session."""
import imaplib
import pathlib
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings

import pytest

from conftest import PASSWORD, Satchel, insecure_tls

ALICE = "alice@example.test"


def plain(satchel, door):
    s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=30)
    return s, s.makefile("rb")


def upgrade(s):
    tls = insecure_tls().wrap_socket(s, server_hostname="localhost")
    return tls, tls.makefile("rb")


def until(f, *prefixes):
    """Lines up to and including the first that starts with a prefix."""
    lines = []
    while True:
        line = f.readline()
        assert line, f"closed before {prefixes}: {lines}"
        lines.append(line)
        if line.startswith(prefixes):
            return lines


@pytest.mark.parametrize("door", ["imaps", "pop3s"])
def test_no_tls_before_1_2(satchel, door):
    old = insecure_tls()
    warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is, on purpose
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        old.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    s = socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=30)
    with pytest.raises(ssl.SSLError) as refused:
        old.wrap_socket(s, server_hostname="localhost")
    s.close()
    # An alert is the server's answer (this client can speak TLS 1.1; a
    # local refusal would say NO_PROTOCOLS_AVAILABLE instead).
    assert "ALERT" in str(refused.value), refused.value
    # TLS 1.2 exactly works.
    tls12 = insecure_tls()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    s = tls12.wrap_socket(socket.create_connection(("127.0.0.1", satchel.ports[door]), timeout=30),
                          server_hostname="localhost")
    assert s.version() == "TLSv1.2"
    s.close()


def test_smtp_starttls_injection(satchel):
    s, f = plain(satchel, "smtp")
    f.readline()
    s.sendall(b"EHLO client.example\r\n")
    until(f, b"250 ")
    s.sendall(b"STARTTLS\r\nNOOP\r\n")
    assert f.readline().startswith(b"220 ")
    tls, tf = upgrade(s)
    tls.sendall(b"EHLO client.example\r\n")
    # The first line over TLS answers the EHLO; had the injected NOOP run,
    # its 250 OK would come first.
    first = tf.readline()
    assert first.startswith(b"250-mail.example.test"), first
    until(tf, b"250 ")
    tls.close()


def test_pop3_stls_injection(satchel):
    s, f = plain(satchel, "pop3")
    f.readline()
    s.sendall(b"STLS\r\nUSER alice@example.test\r\n")
    assert f.readline().startswith(b"+OK")
    tls, tf = upgrade(s)
    # Had the injected USER run, PASS would be taken; it must not be.
    tls.sendall(b"PASS secret\r\n")
    assert tf.readline().startswith(b"-ERR"), "the injected USER ran over TLS"
    tls.close()


def test_managesieve_starttls_injection(satchel):
    s, f = plain(satchel, "managesieve")
    until(f, b"OK")
    s.sendall(b'STARTTLS\r\nAUTHENTICATE "PLAIN" "AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="\r\n')
    assert f.readline().startswith(b"OK")
    tls, tf = upgrade(s)
    # RFC 5804 2.2: the capabilities again, then OK; nothing for the
    # injected AUTHENTICATE.
    until(tf, b"OK")
    tls.sendall(b"LISTSCRIPTS\r\n")
    assert tf.readline().startswith(b"NO"), "the injected AUTHENTICATE ran over TLS"
    tls.close()


def make_cert(directory, name):
    """A self-signed certificate and key for `name`, as an admin's CA would
    hand them over: two PEM files."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert.read_text(), key.read_text()


def served_cert(s, door):
    """The DER certificate a new connection to `door` is shown."""
    with socket.create_connection(("127.0.0.1", s.ports[door]), timeout=30) as raw:
        with insecure_tls().wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_without_dropping_sessions():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        first, second = make_cert(tmp, "first.example.test"), make_cert(tmp, "second.example.test")
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        cert.write_text(first[0])
        key.write_text(first[1])
        s = Satchel(tmp, f'[tls]\ncert = "{cert}"\nkey = "{key}"\n')
        s.add_user(ALICE)
        s.start()
        try:
            before = served_cert(s, "imaps")
            assert ssl.DER_cert_to_PEM_cert(before).split() == first[0].split()
            # A session open across the reload, over TLS.
            session = imaplib.IMAP4_SSL("127.0.0.1", s.ports["imaps"], ssl_context=insecure_tls())
            session.login(ALICE, PASSWORD)
            session.select("INBOX")

            # Renewed as certbot does it: new files in place, then SIGHUP.
            cert.write_text(second[0])
            key.write_text(second[1])
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "TLS: reloaded the certificate" in s.log())
            for door in ("imaps", "pop3s"):
                after = served_cert(s, door)
                assert ssl.DER_cert_to_PEM_cert(after).split() == second[0].split(), door
            assert session.noop()[0] == "OK"

            # A half-done renewal (the new certificate beside the old key)
            # is refused and the working pair stays.
            cert.write_text(first[0])
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "TLS: kept the certificate in use" in s.log())
            assert ssl.DER_cert_to_PEM_cert(served_cert(s, "imaps")).split() == second[0].split()
            assert session.noop()[0] == "OK"
            session.logout()
            assert s.proc.poll() is None, "SIGHUP stopped the server"
        finally:
            s.stop()


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
