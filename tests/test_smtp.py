"""The SMTP MX door (RFC 5321) with swaks and smtplib: every answer with its
exact reply code and enhanced status code (RFC 3463)."""
import pathlib
import re
import smtplib
import socket
import subprocess

import pytest

from conftest import PASSWORD

ALICE = "alice@example.test"
BOB = "bob@example.test"


def swaks(satchel, *args, to=ALICE, check=True):
    out = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(satchel.ports["smtp"]), "--to", to,
         "--from", "sender@remote.test", "--helo", "client.remote.test", "--timeout", "30", *args],
        capture_output=True, timeout=120,
    )
    text = out.stdout.decode(errors="replace")
    if check:
        assert out.returncode == 0, text + out.stderr.decode()
    return out.returncode, text


def inbox(satchel, user=ALICE):
    c = satchel.imap(user)
    n = int(c.select("INBOX", readonly=True)[1][0])
    msgs = [c.fetch(str(i), "(BODY.PEEK[])")[1][0][1] for i in range(1, n + 1)]
    c.logout()
    return msgs


def test_plain_delivery_with_trace_fields(satchel):
    code, text = swaks(satchel, "--header", "Subject: plain", "--body", "plain body")
    assert "<-  220 mail.example.test ESMTP Satchel" in text
    assert "<-  250 2.1.0 Sender OK." in text
    assert "<-  250 2.1.5 Recipient OK." in text
    assert "<-  354 " in text
    # An opaque id, never the mailbox or the UID it was filed under.
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]{16}\n", text), text
    assert "UID" not in text and "INBOX" not in text, text
    [msg] = inbox(satchel)
    assert msg.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: from client.remote.test ([127.0.0.1])\r\n"
                          b"\tby mail.example.test (Satchel) with ESMTP\r\n\tfor <alice@example.test>; ")
    assert b"Subject: plain" in msg and b"\r\n\r\nplain body\r\n" in msg


def test_ehlo_lists_the_extensions(satchel):
    code, text = swaks(satchel, "--quit-after", "EHLO")
    for ext in ["PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING",
                "STARTTLS"]:
        assert re.search(rf"<-  250[ -]{ext}\r?$", text, re.M), ext
    assert "AUTH" not in text


def test_starttls(satchel):
    code, text = swaks(satchel, "--tls", "--header", "Subject: tls")
    assert "<-  220 2.0.0 Ready to start TLS." in text
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as ", text), text
    [msg] = inbox(satchel)
    assert b"with ESMTPS" in msg


def test_pipelining(satchel):
    code, text = swaks(satchel, "--pipeline", "--header", "Subject: pipelined")
    assert re.search(r"<-  250 2\.0\.0 Ok: queued as ", text), text
    assert len(inbox(satchel)) == 1


def test_unknown_recipient(satchel):
    code, text = swaks(satchel, to="nobody@example.test", check=False)
    assert "<** 550 5.1.1 No mailbox nobody@example.test here." in text, text
    assert inbox(satchel) == []


def test_relay_attempt(satchel):
    code, text = swaks(satchel, to="someone@elsewhere.test", check=False)
    assert "<** 554 5.7.1 Relay access denied" in text, text


def test_postmaster_of_every_local_domain_reaches_the_admin():
    import tempfile
    from conftest import Satchel
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.config.write_text(s.config.read_text().replace(
            'domains = ["example.test"]', 'domains = ["example.test", "example.org"]'))
        s.add_user(ALICE)
        s.cli("user", "add", "root@example.test", "--admin", "--password-stdin", stdin=PASSWORD.encode() + b"\n")
        # user add keeps to the local domains.
        out = s.cli("user", "add", "eve@elsewhere.test", "--password-stdin", stdin=b"pw\n", check=False)
        assert out.returncode == 1 and b"not one of the local domains" in out.stderr, out.stderr
        s.start()
        try:
            for to in ["postmaster@example.org", "PostMaster@EXAMPLE.TEST", "postmaster"]:
                code, text = swaks(s, to=to, check=False)
                assert code == 0, text
            assert len(inbox(s, "root@example.test")) == 3
            assert inbox(s) == []
        finally:
            s.stop()
        # A postmaster named in the config takes it instead of the admin.
        s.config.write_text(s.config.read_text().replace(
            'domains = [', f'postmaster = "{ALICE}"\ndomains = ['))
        s.start()
        try:
            swaks(s, to="postmaster@example.org")
            assert len(inbox(s)) == 1 and len(inbox(s, "root@example.test")) == 3
        finally:
            s.stop()


def test_a_looping_message_is_refused(satchel):
    c = smtplib.SMTP("127.0.0.1", satchel.ports["smtp"], timeout=30)
    hops = lambda n: "".join(f"Received: from hop{i}.remote.test by hop{i+1}.remote.test; "
                             "Tue, 02 Jan 2024 10:00:00 +0000\r\n" for i in range(n))
    body = "From: a@remote.test\r\nSubject: loop\r\n\r\nround and round\r\n"
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail("a@remote.test", [ALICE], hops(51) + body)
    assert e.value.smtp_code == 554 and b"5.4.6" in e.value.smtp_error
    c.sendmail("a@remote.test", [ALICE], hops(50) + body)
    c.quit()
    assert len(inbox(satchel)) == 1


def test_plus_addressing(satchel):
    swaks(satchel, to="alice+lists@example.test")
    assert len(inbox(satchel)) == 1


def test_8bitmime_and_smtputf8(satchel):
    s = satchel.smtp()
    s.ehlo("client.remote.test")
    body = "Subject: Grüße\r\nFrom: jörg@remote.test\r\n\r\nÄpfel und Birnen\r\n".encode()
    assert s.sendmail("jörg@remote.test", [ALICE], body, mail_options=["BODY=8BITMIME", "SMTPUTF8"]) == {}
    s.quit()
    [msg] = inbox(satchel)
    assert msg.endswith(body)
    assert b"Return-Path: <j\xc3\xb6rg@remote.test>" in msg


def test_three_recipients_one_blob(satchel):
    satchel.add_user("carol@example.test")
    s = satchel.smtp()
    body = b"Subject: to three\r\n\r\nsame for all\r\n"
    refused = s.sendmail("sender@remote.test", [ALICE, BOB, "carol@example.test", "alice+x@example.test"], body)
    assert refused == {}
    s.quit()
    for user in [ALICE, BOB, "carol@example.test"]:
        msgs = inbox(satchel, user)
        assert len(msgs) == 1, user
        assert msgs[0].endswith(body)
        assert b"\tfor <" not in msgs[0], "no recipient list in Received for several recipients"
    assert satchel.bodies() == 1, "the store holds the message's body once"


def raw(satchel):
    s = socket.create_connection(("127.0.0.1", satchel.ports["smtp"]), timeout=30)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    return s, f


def ask(s, f, line):
    s.sendall(line + b"\r\n")
    reply = f.readline()
    while reply[3:4] == b"-":
        reply = f.readline()
    return reply


def test_bdat(satchel):
    s, f = raw(satchel)
    ask(s, f, b"EHLO client.remote.test")
    assert ask(s, f, b"MAIL FROM:<sender@remote.test>") == b"250 2.1.0 Sender OK.\r\n"
    assert ask(s, f, b"RCPT TO:<alice@example.test>") == b"250 2.1.5 Recipient OK.\r\n"
    part1 = b"Subject: chunked\r\n\r\nfirst "
    part2 = b"and last\r\n"
    s.sendall(b"BDAT %d\r\n" % len(part1) + part1)
    assert f.readline() == b"250 2.0.0 %d octets received.\r\n" % len(part1)
    s.sendall(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert re.fullmatch(rb"250 2\.0\.0 Ok: queued as [0-9A-F]{16}\r\n", f.readline())
    [msg] = inbox(satchel)
    assert msg.endswith(part1 + part2)


def test_sequence_and_syntax_errors(satchel):
    s, f = raw(satchel)
    assert ask(s, f, b"MAIL FROM:<a@remote.test>") == b"503 5.5.1 Say EHLO first.\r\n"
    ask(s, f, b"EHLO c")
    assert ask(s, f, b"RCPT TO:<alice@example.test>") == b"503 5.5.1 MAIL first.\r\n"
    assert ask(s, f, b"DATA") == b"503 5.5.1 MAIL first.\r\n"
    assert ask(s, f, b"FROB").startswith(b"500 5.5.1")
    assert ask(s, f, b"MAIL FROM:<a@remote.test> SIZE=99999999999").startswith(b"552 5.3.4")
    assert ask(s, f, b"AUTH PLAIN AGFAYgBj").startswith(b"503 5.5.1 No AUTH here")
    assert ask(s, f, b"MAIL FROM:<a@remote.test>") == b"250 2.1.0 Sender OK.\r\n"
    assert ask(s, f, b"MAIL FROM:<b@remote.test>").startswith(b"503 5.5.1")
    assert ask(s, f, b"DATA") == b"554 5.5.1 No valid recipients.\r\n"
    assert ask(s, f, b"RSET") == b"250 2.0.0 Reset.\r\n"
    assert ask(s, f, b"NOOP") == b"250 2.0.0 OK.\r\n"
    assert ask(s, f, b"VRFY alice").startswith(b"252 2.1.5")
    assert ask(s, f, b"QUIT") == b"221 2.0.0 Bye.\r\n"


def test_too_many_errors_end_the_session(satchel):
    s, f = raw(satchel)
    replies = [ask(s, f, b"FROB") for _ in range(10)]
    assert replies[-1].startswith(b"500")
    assert f.readline().startswith(b"421 4.7.0 Too many errors")
    assert f.readline() == b""


def test_recipient_limit(satchel):
    s, f = raw(satchel)
    ask(s, f, b"EHLO c")
    ask(s, f, b"MAIL FROM:<a@remote.test>")
    for _ in range(100):
        assert ask(s, f, b"RCPT TO:<alice@example.test>").startswith(b"250")
    assert ask(s, f, b"RCPT TO:<bob@example.test>") == b"452 4.5.3 Too many recipients; send the rest in another transaction.\r\n"


def test_oversized_message_is_refused_without_storing_it(satchel):
    s, f = raw(satchel)
    ask(s, f, b"EHLO c")
    ask(s, f, b"MAIL FROM:<a@remote.test>")
    ask(s, f, b"RCPT TO:<alice@example.test>")
    assert ask(s, f, b"DATA").startswith(b"354")
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1000
    for _ in range(55):  # 55 MB > 50 MiB
        s.sendall(chunk)
    s.sendall(b".\r\n")
    assert f.readline().startswith(b"552 5.3.4 ")
    assert ask(s, f, b"NOOP") == b"250 2.0.0 OK.\r\n", "the session goes on"
    assert inbox(satchel) == []


def test_connections_per_address_are_limited(satchel):
    held = [raw(satchel) for _ in range(50)]
    s = socket.create_connection(("127.0.0.1", satchel.ports["smtp"]), timeout=10)
    assert s.makefile("rb").readline().startswith(b"421 4.7.0 Too many connections")
    for sock, f in held:
        f.close()
        sock.close()


def test_line_limits(satchel):
    s, f = raw(satchel)
    assert ask(s, f, b"EHLO " + b"x" * 5000) == b"500 5.5.2 Line too long.\r\n"
    assert ask(s, f, b"EHLO c").startswith(b"250 ")
    ask(s, f, b"MAIL FROM:<a@remote.test>")
    ask(s, f, b"RCPT TO:<alice@example.test>")
    assert ask(s, f, b"DATA").startswith(b"354")
    # Lines up to 64 KiB pass in DATA (RFC 5321 says 1,000; real mail is longer).
    s.sendall(b"Subject: long\r\n\r\n" + b"y" * 20000 + b"\r\n.\r\n")
    assert f.readline().startswith(b"250 2.0.0")
    ask(s, f, b"MAIL FROM:<a@remote.test>")
    ask(s, f, b"RCPT TO:<alice@example.test>")
    ask(s, f, b"DATA")
    s.sendall(b"Subject: too long\r\n\r\n" + b"z" * 70000 + b"\r\n.\r\n")
    assert f.readline().startswith(b"552 5.3.4")
    assert len(inbox(satchel)) == 1


def test_size_that_overflows_is_refused(satchel):
    """MAIL FROM with a SIZE no number can hold is a syntax error, not a
    sender accepted (RFC 1870 6: the size is a decimal number)."""
    s, f = raw(satchel)
    ask(s, f, b"EHLO client.remote.test")
    reply = ask(s, f, b"MAIL FROM:<> SIZE=99999999999999999999999")
    assert reply.startswith(b"5"), reply
    reply = ask(s, f, b"MAIL FROM:<> SIZE=999999999")
    assert reply.startswith(b"552 "), reply
    assert ask(s, f, b"MAIL FROM:<> SIZE=1000").startswith(b"250 ")
