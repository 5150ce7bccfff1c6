"""TLS on every door: only TLS 1.2 and later, and STARTTLS command
injection (the CVE-2011-0411 class) refused everywhere: what a client
pipelines in plain text after STARTTLS is dropped, never run once TLS is
up."""
import socket
import ssl
import warnings

import pytest

from conftest import insecure_tls


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
