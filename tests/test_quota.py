"""Quotas (issue 17; the IMAP QUOTA extension is issue 18's): an account's
storage and message limits, set with `satchel user quota`, refuse mail
that would pass them, with nothing half-stored: SMTP says `452 4.2.2` at
RCPT once the mailbox is full (temporary, so the sender retries while the
owner makes room; other recipients still get the message) and at the end
of DATA when this message would pass it; IMAP APPEND and COPY say
`NO [OVERQUOTA]`; EXPUNGE frees room; GETQUOTA and GETQUOTAROOT report
the account's one quota root "" (RFC 9208)."""
import imaplib
import smtplib
import tempfile

import pytest

from conftest import PASSWORD, Satchel

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.add_user(BOB)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def quota(s, *args):
    return s.cli("user", "quota", ALICE, *args).stdout.decode().strip()


def count(s, user, mailbox="INBOX"):
    c = s.imap(user)
    typ, data = c.select(f'"{mailbox}"', readonly=True)
    c.logout()
    return int(data[0])


def mail(subject, size=0, to=ALICE):
    return (f"From: friend@remote.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n" + "x" * size + "\r\n")


def test_smtp_refuses_a_full_mailbox_at_rcpt_and_others_still_get_it(server):
    s = server
    assert quota(s, "--messages", "2") == f"{ALICE}: 0 messages, 0 bytes; quota no limit bytes, 2 messages"
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    for n in (1, 2):
        c.sendmail("friend@remote.test", [ALICE], mail(f"fits {n}"))
    # Full now: refused at RCPT with the temporary code; Bob still gets it.
    refused = c.sendmail("friend@remote.test", [ALICE, BOB], mail("to both"))
    assert refused == {ALICE: (452, f"4.2.2 The mailbox of {ALICE} is full; try again later.".encode())}, refused
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        c.sendmail("friend@remote.test", [ALICE], mail("again"))
    assert e.value.recipients[ALICE][0] == 452
    c.quit()
    assert count(s, ALICE) == 2 and count(s, BOB) == 1
    assert "quota" in s.log() and "over quota" in s.log()


def test_a_message_that_would_pass_the_storage_quota_is_refused_whole_at_data(server):
    s = server
    quota(s, "--storage", "2K")
    c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    c.sendmail("friend@remote.test", [ALICE], mail("small", 100))
    # Not full yet, so RCPT takes it; the message itself would pass 2 KiB.
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail("friend@remote.test", [ALICE, BOB], mail("big", 3000))
    assert e.value.smtp_code == 452 and b"4.2.2" in e.value.smtp_error, e.value
    c.quit()
    # Nothing of it stored, for anyone: the sender will try again.
    assert count(s, ALICE) == 1 and count(s, BOB) == 0


def test_imap_append_and_copy_say_overquota_and_expunge_frees_room(server):
    s = server
    quota(s, "--messages", "1")
    c = s.imap(ALICE)
    msg = mail("first").encode()
    assert c.append("INBOX", None, None, msg)[0] == "OK"
    typ, data = c.append("INBOX", None, None, mail("second").encode())
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    c.select("INBOX")
    typ, data = c.copy("1", "Trash")
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    # A move adds nothing; expunging frees the room for a new message.
    assert c.uid("MOVE", "1", "Trash")[0] == "OK"
    c.select("Trash")
    c.store("1:*", "+FLAGS", "\\Deleted")
    c.expunge()
    assert c.append("INBOX", None, None, mail("after").encode())[0] == "OK"
    c.logout()
    assert quota(s, "--none").endswith("quota no limit bytes, no limit messages")
    c = s.imap(ALICE)
    assert c.append("INBOX", None, None, mail("free").encode())[0] == "OK"
    c.logout()


def test_bad_sizes_and_unknown_accounts_are_refused(server):
    s = server
    bad = s.cli("user", "quota", ALICE, "--storage", "lots", check=False)
    assert bad.returncode != 0 and b"500M" in bad.stderr
    bad = s.cli("user", "quota", "nobody@example.test", "--messages", "3", check=False)
    assert bad.returncode != 0 and b"nobody@example.test" in bad.stderr


def test_imap_reports_the_quota_rfc_9208(server):
    s = server
    c = s.imap(ALICE)
    caps = c.capabilities
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps and "QUOTA=RES-MESSAGE" in caps, caps
    # No limits: the mailbox has no quota root.
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK" and data[0][0] in (b'"INBOX"', b"INBOX"), data
    typ, data = c.getquota('""')
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    c.append("INBOX", None, None, mail("one", 3000).encode())
    c.logout()

    quota(s, "--storage", "2M", "--messages", "10")
    c = s.imap(ALICE)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK", data
    roots, quotas = data
    assert roots[0] in (b'INBOX ""', b'"INBOX" ""'), roots
    # STORAGE in KiB (rounded up), then MESSAGE.
    assert quotas == [b'"" (STORAGE 3 2048 MESSAGE 1 10)'], quotas
    typ, data = c.getquota('""')
    assert typ == "OK" and data == [b'"" (STORAGE 3 2048 MESSAGE 1 10)'], data
    typ, data = c.getquota('"other"')
    assert typ == "NO", data
    typ, data = c._simple_command("SETQUOTA", '""', "(STORAGE 99999)")
    assert typ == "NO" and b"[NOPERM]" in data[0], data
    c.logout()
