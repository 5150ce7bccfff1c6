"""SMTP smuggling (the CVE-2023-51764 class) and the other ways a DATA or
BDAT body can lie about where it ends, tried on the MX door over a raw
socket: only <CRLF>.<CRLF> ends DATA; a bare CR or LF gets the whole
message refused (550 5.6.11) once its real end is read, so a message hidden
inside another is never delivered on its own."""
import socket

import pytest

ALICE = "alice@example.test"

# Every end-of-data look-alike that some server has taken for the real one.
FAKE_ENDS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\n.\r", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\r.\n"]


def connect(satchel):
    s = socket.create_connection(("127.0.0.1", satchel.ports["smtp"]), timeout=30)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    return s, f


def reply(f):
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def ask(s, f, line):
    s.sendall(line + b"\r\n")
    return reply(f)


def open_transaction(s, f):
    assert ask(s, f, b"EHLO client.remote.test").startswith(b"250 ")
    assert ask(s, f, b"MAIL FROM:<sender@remote.test>").startswith(b"250 ")
    assert ask(s, f, b"RCPT TO:<alice@example.test>").startswith(b"250 ")


def stored(satchel):
    """Every message in alice's mailboxes, whatever the spam filter said."""
    c = satchel.imap(ALICE)
    out = []
    for box in ["INBOX", "Junk", '"Possible Junk"']:
        n = int(c.select(box, readonly=True)[1][0])
        out += [c.fetch(str(i), "(BODY.PEEK[])")[1][0][1] for i in range(1, n + 1)]
    c.logout()
    return out


def smuggling(fake_end):
    """A message that carries a second, spoofed one after `fake_end`."""
    return (
        b"From: sender@remote.test\r\nSubject: carrier\r\n\r\nfirst body" + fake_end
        + b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        + b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n"
    )


@pytest.mark.parametrize("fake_end", FAKE_ENDS, ids=lambda e: e.decode().encode("unicode_escape").decode())
def test_a_fake_end_of_data_smuggles_nothing(satchel, fake_end):
    s, f = connect(satchel)
    open_transaction(s, f)
    assert ask(s, f, b"DATA").startswith(b"354 ")
    s.sendall(smuggling(fake_end))
    # One answer for the whole body, read to its real end: a refusal.
    assert reply(f) == (b"550 5.6.11 Bare CR or LF in the message: every line must end with CRLF "
                        b"(RFC 5321 2.3.8); nothing was delivered.\r\n")
    # The session is in step: the next command gets the next answer.
    assert ask(s, f, b"NOOP") == b"250 2.0.0 OK.\r\n"
    assert ask(s, f, b"QUIT").startswith(b"221 ")
    assert stored(satchel) == []


def test_a_clean_message_after_a_refused_one_is_delivered(satchel):
    s, f = connect(satchel)
    open_transaction(s, f)
    ask(s, f, b"DATA")
    s.sendall(smuggling(b"\n.\n"))
    assert reply(f).startswith(b"550 5.6.11 ")
    # The refusal ended the transaction: MAIL starts a new one.
    open_transaction(s, f)
    assert ask(s, f, b"DATA").startswith(b"354 ")
    s.sendall(b"Subject: clean\r\n\r\n..dot-stuffed line\r\n.\r\n")
    assert reply(f).startswith(b"250 2.0.0 ")
    [msg] = stored(satchel)
    assert b"Subject: clean" in msg and msg.endswith(b"\r\n\r\n.dot-stuffed line\r\n")
    assert b"smuggled" not in msg


def test_pipelined_commands_after_a_fake_end_are_not_run(satchel):
    """With PIPELINING a smuggler sends it all in one packet: the commands
    inside the body are body, not commands."""
    s, f = connect(satchel)
    assert ask(s, f, b"EHLO client.remote.test").startswith(b"250 ")
    s.sendall(b"MAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
              + smuggling(b"\r\n.\n") + b"QUIT\r\n")
    assert [reply(f)[:4] for _ in range(5)] == [b"250 ", b"250 ", b"354 ", b"550 ", b"221 "]
    assert stored(satchel) == []


def test_nul_in_data_is_refused(satchel):
    s, f = connect(satchel)
    open_transaction(s, f)
    ask(s, f, b"DATA")
    s.sendall(b"Subject: nul\r\n\r\nbefore\0after\r\n.\r\n")
    assert reply(f).startswith(b"550 5.6.0 NUL octets are not allowed")
    assert ask(s, f, b"NOOP") == b"250 2.0.0 OK.\r\n"
    assert stored(satchel) == []


@pytest.mark.parametrize("content", [b"Subject: b\r\n\r\nx\n.\nMAIL FROM:<a@b>\r\n", b"Subject: b\r\n\r\nx\r.\r\n"],
                         ids=["bare-lf", "bare-cr"])
def test_bdat_with_bare_line_breaks_is_refused(satchel, content):
    s, f = connect(satchel)
    open_transaction(s, f)
    s.sendall(b"BDAT %d LAST\r\n" % len(content) + content)
    assert reply(f).startswith(b"550 5.6.11 ")
    assert ask(s, f, b"NOOP") == b"250 2.0.0 OK.\r\n"
    assert stored(satchel) == []


def test_data_after_bdat_is_refused_and_drops_nothing_silently(satchel):
    """RFC 3030 2: BDAT and DATA do not mix in one transaction."""
    s, f = connect(satchel)
    open_transaction(s, f)
    chunk = b"Subject: chunked\r\n\r\nfirst part "
    s.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
    assert reply(f).startswith(b"250 2.0.0 ")
    assert ask(s, f, b"DATA").startswith(b"503 5.5.1 DATA after BDAT")
    # The transaction is gone: a new one needs MAIL again.
    assert ask(s, f, b"RCPT TO:<alice@example.test>").startswith(b"503 ")
    assert stored(satchel) == []
