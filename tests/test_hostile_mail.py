"""Messages built to hurt the server, sent by anyone over the MX door: deep
nesting of message/rfc822 and multipart parts. Each is stored and then
walked by every door (SEARCH, FETCH BODYSTRUCTURE and sections, POP3
RETR, the spam filter and Sieve at delivery) at a bounded cost, and the
server stays up for everyone else."""
import smtplib

import pytest

from conftest import figure

ALICE = "alice@example.test"
BOB = "bob@example.test"


def nested_messages(levels):
    """`levels` message/rfc822 parts, each inside the last, with a word only
    the innermost one holds."""
    head = b"From: a@remote.test\r\nSubject: level\r\nContent-Type: message/rfc822\r\n\r\n"
    return (b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: nested\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + head * (levels - 1)
            + b"From: a@remote.test\r\nSubject: innermost\r\n\r\nneedlexyz\r\n")


def nested_multiparts(levels):
    out = [b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: multipart bomb\r\n"]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%05d"\r\n\r\n--b%05d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\nneedlexyz\r\n")
    return b"".join(out)


def send(satchel, raw):
    with smtplib.SMTP("127.0.0.1", satchel.ports["smtp"], timeout=120) as c:
        c.sendmail("a@remote.test", [ALICE], raw)


def mailbox_with_mail(c):
    for box in ["INBOX", "Junk", '"Possible Junk"']:
        typ, data = c.select(box)
        if int(data[0]) > 0:
            return box
    raise AssertionError("the message was not stored")


def still_serving(satchel):
    """Another user on another door is served: the process is alive."""
    assert satchel.proc.poll() is None, "the server died"
    p = satchel.pop3(BOB)
    assert p.stat()[0] == 0
    p.quit()


@pytest.mark.parametrize("levels", [3_000, 10_000])
def test_deeply_nested_messages_are_stored_and_searched(satchel, levels):
    raw = nested_messages(levels)
    figure(f"{levels} nested message/rfc822 parts, {len(raw)} bytes")
    send(satchel, raw)
    c = satchel.imap(ALICE)
    mailbox_with_mail(c)
    # The searches that overflowed the stack and aborted the whole server.
    for key in ["BODY needlexyz", "TEXT needlexyz", "BODY absent", "TEXT nested"]:
        typ, data = c.search(None, key)
        assert typ == "OK", (key, data)
    # The needle is past the depth every walk stops at: not found, not fatal.
    assert c.search(None, "BODY needlexyz")[1] == [b""]
    assert c.search(None, "TEXT nested")[1] == [b"1"]
    typ, data = c.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1.1.1] RFC822.SIZE)")
    assert typ == "OK"
    assert b"application" in data[0][0].lower(), "past the limit the part is opaque"
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1].endswith(b"needlexyz\r\n")
    c.logout()
    still_serving(satchel)


def test_deeply_nested_multiparts_are_stored_and_searched(satchel):
    raw = nested_multiparts(10_000)
    figure(f"10000 nested multiparts, {len(raw)} bytes")
    send(satchel, raw)
    c = satchel.imap(ALICE)
    mailbox_with_mail(c)
    for key in ["BODY needlexyz", "TEXT needlexyz", "HEADER Subject bomb"]:
        assert c.search(None, key)[0] == "OK", key
    assert c.search(None, "HEADER Subject bomb")[1] == [b"1"]
    typ, data = c.fetch("1", "(BODYSTRUCTURE BODY)")
    assert typ == "OK"
    c.logout()
    still_serving(satchel)


def test_pop3_serves_a_nested_message_whole(satchel):
    raw = nested_messages(10_000)
    # POP3 sees INBOX only: file it there whatever the spam score says.
    satchel.cli("spam", "allow", ALICE, "a@remote.test")
    send(satchel, raw)
    p = satchel.pop3(ALICE)
    assert p.stat()[0] == 1
    lines = p.retr(1)[1]
    assert lines[-1] == b"needlexyz"
    p.quit()
    still_serving(satchel)


def test_sieve_body_test_on_a_nested_message(satchel):
    """Sieve's body test walks the message at delivery, in the server."""
    script = satchel.dir / "f.sieve"
    script.write_text('require ["body", "fileinto"];\n'
                      'if body :text :contains "needlexyz" { fileinto "Trash"; }\n')
    satchel.cli("filter", "set", ALICE, str(script))
    send(satchel, nested_messages(10_000))
    c = satchel.imap(ALICE)
    counts = [int(c.select(b, readonly=True)[1][0]) for b in ["INBOX", "Junk", '"Possible Junk"', "Trash"]]
    assert sum(counts) == 1, counts
    c.logout()
    still_serving(satchel)


# Found by the mime_message fuzz target: a multipart holding a
# message/rfc822 whose own body is an empty message/rfc822 trips an internal
# assertion of mail-parser 0.11.9 in builds with debug assertions (the
# ones the test suite runs), which took down the session that parsed it.
TRIPS_MAIL_PARSER = (b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: fuzz find\r\n"
                     b"Content-Type:multipart;boundary=outer\r\n\r\n"
                     b"--outerContent-Type: message/rfc822\r\n\r\n"
                     b"Content-Type:message/rfc822\r\n\r\n\r\n--outer--\r\n")


def test_a_message_that_trips_the_mime_parser_is_stored_and_served(satchel):
    send(satchel, TRIPS_MAIL_PARSER)
    c = satchel.imap(ALICE)
    mailbox_with_mail(c)
    typ, data = c.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[TEXT] PREVIEW)")
    assert typ == "OK", data
    typ, data = c.search(None, "TEXT", "nothing-here")
    assert typ == "OK" and data == [b""], data
    c.logout()
    p = satchel.pop3(ALICE)
    assert p.stat()[0] in (0, 1)
    p.quit()
    still_serving(satchel)
    assert "panicked" not in satchel.log()
