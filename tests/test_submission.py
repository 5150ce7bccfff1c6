"""Sending mail: the submission doors (RFC 6409, RFC 8314), the Sent copy,
the outbound queue delivering to a remote MX (a sink on loopback found
through the static DNS table), retries, bounces (RFC 3464) and restarts."""
import email
import imaplib
import os
import signal
import smtplib
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import PASSWORD, Satchel, insecure_tls
from sink import Sink, free_port
from test_imap_sync import Raw

ALICE = "alice@example.test"
BOB = "bob@example.test"


def mx_table(port_hosts):
    """DNS lines: each remote domain's MX (host, ip, preference)."""
    lines = []
    for domain, hosts in port_hosts.items():
        for pref, host, ip in hosts:
            lines.append(f"MX {domain} {pref} {host}")
            lines.append(f"A {host} {ip}")
    return "\n".join(lines) + "\n"


def start_sending(tmp, port, table, queue='retry = ["1s"]\nexpire = "1h"\n', extra=""):
    s = Satchel(
        tmp,
        'submission = ["127.0.0.1:0"]\nsubmissions = ["127.0.0.1:0"]\n'
        f"[queue]\n{queue}{extra}",
        doors=8,
    )
    s.env["SATCHEL_MX_PORT"] = str(port)
    s.dns.write_text(table)
    s.add_user(ALICE)
    s.add_user(BOB)
    s.start()
    return s


@pytest.fixture
def sending():
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(
            tmp,
            sink.port,
            mx_table({
                "remote.test": [(10, "mx.remote.test", "127.0.0.1")],
                "other.test": [(10, "mx.other.test", "127.0.0.1")],
            }),
        )
        s.sink = sink
        try:
            yield s
        finally:
            s.stop()
            sink.close()


def submit(s, user=ALICE):
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
    c.ehlo("client.example.test")
    c.login(user, PASSWORD)
    return c


def mail(subject, to="dave@remote.test", sender=ALICE, extra="", message_id=None):
    mid = message_id or f"<{subject.replace(' ', '.')}@client.example.test>"
    return (
        f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: {mid}\r\n{extra}\r\n"
        "Hello from Alice.\r\n"
    )


def wait_for(check, timeout=15, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def mailbox_subjects(s, user, mailbox):
    c = s.imap(user)
    typ, _ = c.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK", mailbox
    _, data = c.search(None, "ALL")
    subjects = []
    for n in data[0].split():
        _, parts = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects.append(parts[0][1].decode().split(":", 1)[1].strip())
    c.logout()
    return subjects


def test_a_message_to_a_remote_address_reaches_the_mx_and_sent(sending):
    s = sending
    # An IMAP client waits on Sent.
    r = Raw(s)
    r.cmd(f"LOGIN {ALICE} {PASSWORD}")
    r.cmd("SELECT Sent")
    r.send("i1 IDLE")
    assert r.readline(5) == b"+ idling\r\n"
    c = submit(s)
    refused = c.sendmail(ALICE, ["dave@remote.test"], mail("to dave", extra="Bcc: secret@remote.test\r\n"))
    assert refused == {}
    c.quit()
    line = None
    end = time.monotonic() + 5
    while time.monotonic() < end and not (line and b"EXISTS" in line):
        line = r.readline(5)
    assert line == b"* 1 EXISTS\r\n", line
    got = wait_for(lambda: s.sink.received("dave@remote.test"), what="the sink")
    assert len(got) == 1
    sender, rcpts, data = got[0]
    assert sender == ALICE and rcpts == ["dave@remote.test"]
    msg = email.message_from_bytes(data)
    assert msg["Subject"] == "to dave"
    assert msg["Bcc"] is None, "Bcc is not sent"
    assert "ESMTPSA" in msg["Received"] or "ESMTPA" in msg["Received"]
    # The Sent copy keeps Bcc, as clients do.
    c = s.imap(ALICE)
    c.select("Sent", readonly=True)
    _, data = c.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (BCC)])")
    assert b"\\Seen" in data[0][0]
    assert b"secret@remote.test" in data[0][1]
    c.logout()


def test_the_queued_copy_shares_the_sent_copys_body_unless_bcc_differs():
    # Nothing listens at the MX: both messages stay queued.
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, free_port(), mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}))
        try:
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"], mail("shared body"))
            # One file: the Sent copy's, which the queue names too (our
            # Received: and the signatures travel in the queue's row).
            assert s.bodies() == 1
            c.sendmail(ALICE, ["dave@remote.test"], mail("blind", extra="Bcc: eve@remote.test\r\n"))
            c.quit()
            # With Bcc: the Sent copy keeps it and the queued one does not.
            assert s.bodies() == 3
            queued = s.cli("queue", "list").stdout.decode()
            assert queued.count("dave@remote.test") == 2, queued
            s.cli("check")
        finally:
            s.stop()


def test_date_and_message_id_are_added_when_missing(sending):
    s = sending
    c = submit(s)
    c.sendmail(ALICE, ["dave@remote.test"], f"From: {ALICE}\r\nTo: dave@remote.test\r\nSubject: bare\r\n\r\nhi\r\n")
    c.quit()
    got = wait_for(lambda: s.sink.received("dave@remote.test"), what="the sink")
    msg = email.message_from_bytes(got[0][2])
    assert msg["Message-ID"].endswith("@mail.example.test>"), msg["Message-ID"]
    assert msg["Date"]


def test_one_local_and_two_remote_recipients_each_once(sending):
    s = sending
    c = submit(s)
    body = mail("three ways", to="bob@example.test, x@remote.test, y@other.test")
    c.sendmail(ALICE, [BOB, "x@remote.test", "y@other.test"], body)
    c.quit()
    wait_for(lambda: len(s.sink.received()) >= 2, what="both remote copies")
    time.sleep(1.5)
    assert len(s.sink.received("x@remote.test")) == 1
    assert len(s.sink.received("y@other.test")) == 1
    assert mailbox_subjects(s, BOB, "INBOX") == ["three ways"]
    assert mailbox_subjects(s, ALICE, "Sent") == ["three ways"]
    # The client also APPENDs its own copy to Sent (Thunderbird does):
    # still one copy, and the APPEND is answered with it.
    c = s.imap(ALICE)
    typ, resp = c.append("Sent", "(\\Seen)", None, body.encode())
    assert typ == "OK", resp
    c.logout()
    assert mailbox_subjects(s, ALICE, "Sent") == ["three ways"]
    # Another message APPENDed first and submitted after: one copy too.
    other = mail("appended first")
    c = s.imap(ALICE)
    c.append("Sent", "(\\Seen)", None, other.encode())
    c.logout()
    c = submit(s)
    c.sendmail(ALICE, ["dave@remote.test"], other)
    c.quit()
    wait_for(lambda: s.sink.received("dave@remote.test"), what="the sink")
    assert sorted(mailbox_subjects(s, ALICE, "Sent")) == ["appended first", "three ways"]


def test_the_sent_copy_rule_is_per_account(sending):
    s = sending
    out = s.cli("user", "sent-copy", ALICE, "never").stdout
    assert out == b"alice@example.test never\n"
    assert s.cli("user", "sent-copy", BOB, "always").returncode == 0
    bad = s.cli("user", "sent-copy", BOB, "sometimes", check=False)
    assert bad.returncode == 1 and b"not a Sent-copy rule" in bad.stderr
    for user in (ALICE, BOB):
        c = submit(s, user)
        c.sendmail(user, ["dave@remote.test"], mail(f"from {user}", sender=user))
        c.quit()
    wait_for(lambda: len(s.sink.received("dave@remote.test")) == 2, what="both at the sink")
    # Alice's client keeps its own copies: the server files none.
    assert mailbox_subjects(s, ALICE, "Sent") == []
    # Bob's rule is always: his client's APPEND of the same message is a
    # second copy, as he asked.
    c = s.imap(BOB)
    assert c.append("Sent", "(\\Seen)", None, mail(f"from {BOB}", sender=BOB).encode())[0] == "OK"
    c.logout()
    assert mailbox_subjects(s, BOB, "Sent") == [f"from {BOB}"] * 2
    # Back to the server's rule (unless-appended).
    s.cli("user", "sent-copy", BOB, "default")
    c = submit(s, BOB)
    c.sendmail(BOB, ["dave@remote.test"], mail("again", sender=BOB))
    c.quit()
    c = s.imap(BOB)
    c.append("Sent", "(\\Seen)", None, mail("again", sender=BOB).encode())
    c.logout()
    assert mailbox_subjects(s, BOB, "Sent").count("again") == 1


def test_an_outgoing_sieve_rule_files_into_a_client_mailbox(sending):
    s = sending
    script = s.dir / "out.sieve"
    script.write_text(
        'require ["fileinto", "mailbox", "environment"];\n'
        'if environment :is "phase" "outgoing" {\n'
        '  if address :domain :is "to" "acme.test" { fileinto :create "Clients/ACME"; }\n'
        "}\n"
    )
    s.cli("filter", "set", ALICE, str(script))
    s.dns.write_text(s.dns.read_text() + "MX acme.test 10 mx.acme.test\nA mx.acme.test 127.0.0.1\n")
    c = submit(s)
    c.sendmail(ALICE, ["boss@acme.test"], mail("for acme", to="boss@acme.test"))
    c.quit()
    assert mailbox_subjects(s, ALICE, "Clients/ACME") == ["for acme"]
    assert mailbox_subjects(s, ALICE, "Sent") == []


def test_a_sieve_redirect_to_an_outside_address_reaches_the_sink(sending):
    s = sending
    script = s.dir / "fwd.sieve"
    script.write_text('if header :contains "subject" "invoice" { redirect "books@remote.test"; }\n')
    s.cli("filter", "set", BOB, str(script))
    smtp = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    smtp.sendmail("vendor@other.test", [BOB],
                  "From: vendor@other.test\r\nTo: bob@example.test\r\nSubject: invoice 7\r\n\r\nPay.\r\n")
    smtp.sendmail("vendor@other.test", [BOB],
                  "From: vendor@other.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi.\r\n")
    smtp.quit()
    got = wait_for(lambda: s.sink.received("books@remote.test"), what="the redirect")
    assert len(got) == 1
    sender, rcpts, data = got[0]
    # From Bob's address (SPF holds at the far end, failures come back to him).
    assert sender == BOB and rcpts == ["books@remote.test"]
    msg = email.message_from_bytes(data)
    assert msg["Subject"] == "invoice 7" and msg["From"] == "vendor@other.test"
    assert msg["DKIM-Signature"] and "d=example.test" in msg["DKIM-Signature"]
    # A redirect without :copy keeps nothing; the other message is kept.
    assert mailbox_subjects(s, BOB, "INBOX") == ["hello"]


def test_a_vacation_reply_to_an_outside_sender_goes_out_from_the_null_sender(sending):
    s = sending
    script = s.dir / "away.sieve"
    script.write_text('require "vacation";\nvacation :days 1 :subject "Away" "Back on Monday.";\n')
    s.cli("filter", "set", BOB, str(script))
    smtp = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    for n in range(2):
        smtp.sendmail("frank@remote.test", [BOB],
                      f"From: Frank <frank@remote.test>\r\nTo: bob@example.test\r\nSubject: q{n}\r\n"
                      f"Message-ID: <q{n}@remote.test>\r\n\r\nThere?\r\n")
    smtp.quit()
    wait_for(lambda: s.sink.received("frank@remote.test"), what="the reply")
    wait_for(lambda: s.cli("queue", "list").stdout == b"", what="an empty queue")
    got = s.sink.received("frank@remote.test")
    assert len(got) == 1, "one reply per sender within :days"
    sender, _, data = got[0]
    assert sender == ""
    msg = email.message_from_bytes(data)
    assert msg["Subject"] == "Away" and msg["Auto-Submitted"].startswith("auto-replied")
    assert msg["In-Reply-To"] == "<q0@remote.test>"
    assert len(mailbox_subjects(s, BOB, "INBOX")) == 2
    # A :from that is not one of Bob's addresses is not used (RFC 5230 4.3).
    script.write_text('require "vacation";\nvacation :handle "h2" :from "alice@example.test" "Back soon.";\n')
    s.cli("filter", "set", BOB, str(script))
    smtp = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
    smtp.sendmail("gina@remote.test", [BOB], "From: gina@remote.test\r\nTo: bob@example.test\r\n"
                  "Subject: hi\r\n\r\nThere?\r\n")
    smtp.quit()
    [(_, _, data)] = wait_for(lambda: s.sink.received("gina@remote.test"), what="the second reply")
    assert email.message_from_bytes(data)["From"] == "<bob@example.test>"


def test_spoofing_and_unauthenticated_relay_are_refused(sending):
    s = sending
    c = submit(s)
    code, text = c.mail("bob@example.test")
    assert code == 550 and b"5.7.1" in text and b"bob@example.test" in text, text
    c.rset()
    # An envelope of her own with someone else's From: refused at the end.
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail(ALICE, ["dave@remote.test"], mail("spoof", sender="ceo@example.test"))
    assert e.value.smtp_code == 550 and b"ceo@example.test" in e.value.smtp_error
    # An alias of hers is hers to send as.
    s.cli("alias", "add", "sales@example.test", ALICE)
    assert c.sendmail("sales@example.test", ["dave@remote.test"], mail("alias", sender="sales@example.test")) == {}
    c.quit()
    # No AUTH: no mail at all on the submission door.
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
    c.ehlo("x")
    code, text = c.mail(ALICE)
    assert code == 530, text
    c.quit()
    # The MX door relays for nobody.
    c = s.smtp()
    c.ehlo("x")
    c.mail("someone@remote.test")
    code, text = c.rcpt("dave@remote.test")
    assert code == 554 and b"Relay access denied" in text
    code, _ = c.docmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=")
    assert code == 503
    c.quit()
    wait_for(lambda: s.sink.received("dave@remote.test"), what="the alias message")
    subjects = [email.message_from_bytes(m[2])["Subject"] for m in s.sink.received()]
    assert subjects == ["alias"], subjects


def test_the_hourly_limit_refuses_with_452_and_is_logged():
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}),
                          extra="[submission]\nmax_per_hour = 3\n")
        try:
            c = submit(s)
            for n in range(3):
                c.sendmail(ALICE, ["dave@remote.test"], mail(f"n{n}"))
            code, text = c.mail(ALICE)
            assert code == 452 and text.startswith(b"4.7.0 You have sent 3 messages in the last hour"), text
            c.quit()
            # Bob has his own hour.
            c = submit(s, BOB)
            c.sendmail(BOB, ["dave@remote.test"], mail("from bob", sender=BOB))
            c.quit()
            wait_for(lambda: len(sink.received("dave@remote.test")) == 4, what="four at the sink")
            assert "alice@example.test is at its limit of 3 messages an hour" in s.log()
        finally:
            s.stop()
            sink.close()


def test_a_wrong_password_is_refused_and_the_right_one_still_works(sending):
    s = sending
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=60)
    c.ehlo("x")
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        c.login(ALICE, "wrong")
    assert e.value.smtp_code == 535
    c.quit()
    c = submit(s)  # the right one still works
    c.quit()


def test_wrong_passwords_are_delayed_and_counted_with_imaps(sending):
    s = sending
    # One wrong IMAP password from this address, then wrong ones over
    # submission: the delay keeps growing across the doors.
    c = s.imap()
    start = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error):
        c.login(ALICE, "wrong")
    imap_delay = time.monotonic() - start
    c.logout()
    delays = []
    c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=60)
    c.ehlo("x")
    for _ in range(2):
        start = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login(ALICE, "wrong")
        delays.append(time.monotonic() - start)
    c.quit()
    assert imap_delay >= 0.9 and delays[0] >= 1.9 and delays[1] >= 2.9, (imap_delay, delays)
    assert s.log().count("door=submission") >= 2


def test_submissions_is_implicit_tls(sending):
    s = sending
    c = smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], timeout=30, context=insecure_tls())
    c.ehlo("x")
    assert c.has_extn("auth")
    c.login(ALICE, PASSWORD)
    assert c.sendmail(ALICE, ["dave@remote.test"], mail("over tls")) == {}
    c.quit()
    wait_for(lambda: s.sink.received("dave@remote.test"), what="the sink")


def test_a_451_is_retried_and_delivered_once(sending):
    s = sending
    s.sink.data_replies = ["451 4.3.0 try later"]
    c = submit(s)
    c.sendmail(ALICE, ["dave@remote.test"], mail("retried"))
    c.quit()
    wait_for(lambda: s.sink.received("dave@remote.test"), timeout=20, what="the retry")
    time.sleep(2.5)
    assert len(s.sink.received("dave@remote.test")) == 1
    assert s.sink.sessions >= 2
    assert s.cli("queue", "list").stdout == b""


def test_a_550_bounces_into_the_senders_inbox(sending):
    s = sending
    s.sink.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user here"]
    c = submit(s)
    c.sendmail(ALICE, ["nobody@remote.test", "dave@remote.test"], mail("half bounced"))
    c.quit()
    wait_for(lambda: "Undelivered Mail Returned to Sender" in mailbox_subjects(s, ALICE, "INBOX"),
             what="the bounce")
    assert len(s.sink.received("dave@remote.test")) == 1
    c = s.imap(ALICE)
    c.select("INBOX", readonly=True)
    _, data = c.fetch("1", "(BODY.PEEK[])")
    c.logout()
    dsn = email.message_from_bytes(data[0][1])
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["Auto-Submitted"] == "auto-replied"
    parts = [p.get_content_type() for p in dsn.walk()]
    assert "message/delivery-status" in parts and "text/rfc822-headers" in parts
    report = data[0][1].decode()
    assert "Final-Recipient: rfc822; nobody@remote.test" in report
    assert "Status: 5.1.1" in report
    assert "dave@remote.test" not in report.split("message/delivery-status")[1].split("text/rfc822-headers")[0]


def test_failures_at_two_domains_make_one_dsn_and_a_deferral_does_not_hold_it(sending):
    s = sending
    s.sink.rcpt_replies["nobody@remote.test"] = ["550 5.1.1 no such user here"]
    s.sink.rcpt_replies["gone@other.test"] = ["550 5.1.1 gone"]
    s.sink.rcpt_replies["slow@other.test"] = ["451 4.3.0 later"] * 3
    c = submit(s)
    c.sendmail(ALICE, ["nobody@remote.test", "gone@other.test", "slow@other.test"],
               mail("two failures", to="nobody@remote.test, gone@other.test, slow@other.test"))
    c.quit()
    wait_for(lambda: "Undelivered Mail Returned to Sender" in mailbox_subjects(s, ALICE, "INBOX"),
             what="the bounce")
    # The deferred one still waits (451 three times, a second apart).
    assert b"slow@other.test" in s.cli("queue", "list").stdout
    wait_for(lambda: s.sink.received("slow@other.test"), timeout=30, what="the deferred one")
    wait_for(lambda: s.cli("queue", "list").stdout == b"", what="an empty queue")
    assert mailbox_subjects(s, ALICE, "INBOX") == ["Undelivered Mail Returned to Sender"], "one DSN"
    c = s.imap(ALICE)
    c.select("INBOX", readonly=True)
    _, data = c.fetch("1", "(BODY.PEEK[])")
    c.logout()
    report = data[0][1].decode()
    assert "Final-Recipient: rfc822; nobody@remote.test" in report
    assert "Final-Recipient: rfc822; gone@other.test" in report
    assert "slow@other.test" not in report.split("message/delivery-status")[1].split("text/rfc822-headers")[0]


def test_mx_preference_and_fallback_to_the_second():
    port = free_port()
    first = Sink("127.0.0.3", port)
    second = Sink("127.0.0.4", port)
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, port, mx_table({
            "remote.test": [(20, "mx2.remote.test", "127.0.0.4"), (10, "mx1.remote.test", "127.0.0.3")],
        }))
        try:
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"], mail("preferred"))
            c.quit()
            wait_for(lambda: first.received(), what="the first MX")
            assert second.received() == []
            first.close()  # now it refuses connections
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"], mail("fallback"))
            c.quit()
            wait_for(lambda: second.received(), what="the second MX")
            assert email.message_from_bytes(second.received()[0][2])["Subject"] == "fallback"
        finally:
            s.stop()
            second.close()


def test_undeliverable_mail_expires_into_a_bounce():
    sink = Sink()
    sink.data_replies = ["451 4.3.0 busy"] * 1000
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}),
                          queue='retry = ["1s"]\nexpire = "4s"\ndelay_notice = "0s"\n')
        try:
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"], mail("never arrives"))
            c.quit()
            out = wait_for(lambda: s.cli("queue", "list").stdout, what="the queue line")
            assert b"<alice@example.test>" in out and b"dave@remote.test" in out
            wait_for(lambda: "Undelivered Mail Returned to Sender" in mailbox_subjects(s, ALICE, "INBOX"),
                     timeout=20, what="the expiry bounce")
            assert s.cli("queue", "list").stdout == b""
            assert sink.received() == []
        finally:
            s.stop()
            sink.close()


def test_a_delayed_message_draws_one_delay_notice_then_arrives():
    sink = Sink()
    sink.data_replies = ["451 4.3.0 busy"] * 4
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}),
                          queue='retry = ["1s"]\nexpire = "1h"\ndelay_notice = "2s"\n')
        try:
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"], mail("slow one"))
            c.quit()
            wait_for(lambda: sink.received("dave@remote.test"), timeout=30, what="the delivery")
            wait_for(lambda: s.cli("queue", "list").stdout == b"", what="an empty queue")
            inbox = mailbox_subjects(s, ALICE, "INBOX")
            assert inbox == ["Delayed Mail (still being retried)"], inbox
            c = s.imap(ALICE)
            c.select("INBOX", readonly=True)
            _, data = c.fetch("1", "(BODY.PEEK[])")
            c.logout()
            report = data[0][1]
            assert b"Action: delayed" in report and b"Will-Retry-Until:" in report
            assert b"Status: 4.3.0" in report
            assert len(sink.received("dave@remote.test")) == 1
        finally:
            s.stop()
            sink.close()


def test_8bit_mail_to_a_server_without_8bitmime_bounces_unmangled():
    sink = Sink(eight_bit=False)
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}))
        try:
            c = submit(s)
            c.sendmail(ALICE, ["dave@remote.test"],
                       mail("caf\u00e9", extra="Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Transfer-Encoding: 8bit\r\n").replace("Hello", "Gr\u00fc\u00dfe").encode())
            c.quit()
            wait_for(lambda: "Undelivered Mail Returned to Sender" in mailbox_subjects(s, ALICE, "INBOX"),
                     timeout=20, what="the bounce")
            c = s.imap(ALICE)
            c.select("INBOX", readonly=True)
            _, data = c.fetch("1", "(BODY.PEEK[])")
            c.logout()
            assert b"Status: 5.6.3" in data[0][1] and b"8BITMIME" in data[0][1]
            assert sink.received() == []
        finally:
            s.stop()
            sink.close()


def make_ca_and_cert(tmp):
    """A test CA and a certificate it signed for localhost: (ca.pem,
    server context)."""
    tmp = str(tmp)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=tmp)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Satchel Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "relay.key", "-out", "relay.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "relay.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "relay.pem", "-days", "2", "-extfile", "ext.cnf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(tmp, "relay.pem"), os.path.join(tmp, "relay.key"))
    return os.path.join(tmp, "ca.pem"), ctx


def test_a_smarthost_login_needs_tls_with_a_certificate_for_its_name():
    with tempfile.TemporaryDirectory() as certs:
        ca, ctx = make_ca_and_cert(certs)
        for trusted in (True, False):
            sink = Sink(tls=ctx, auth=("relayuser", "relaypass"))
            relay = (f'[relay]\nsmarthost = "localhost:{sink.port}"\n'
                     'smarthost_user = "relayuser"\nsmarthost_password = "relaypass"\n')
            if trusted:
                relay += f'smarthost_ca = "{ca}"\n'
            with tempfile.TemporaryDirectory() as tmp:
                s = start_sending(tmp, sink.port, "", extra=relay)
                try:
                    c = submit(s)
                    c.sendmail(ALICE, ["dave@remote.test"], mail("via the relay"))
                    c.quit()
                    if trusted:
                        wait_for(lambda: sink.received("dave@remote.test"), what="the relay")
                        assert sink.logins == [("relayuser", "relaypass", True)]
                    else:
                        # Not our CA: no login, nothing sent, and the queue says why.
                        out = wait_for(lambda: b"certificate" in s.cli("queue", "list").stdout
                                       and s.cli("queue", "list").stdout, what="the queue's answer")
                        assert b"dave@remote.test" in out, out
                        assert sink.logins == [] and sink.received() == []
                finally:
                    s.stop()
                    sink.close()


def test_kill_9_with_100_queued_each_arrives_exactly_once():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}))
        try:
            c = submit(s)
            for i in range(100):
                c.sendmail(ALICE, ["dave@remote.test"], mail(f"queued {i}"))
            c.quit()
            lines = s.cli("queue", "list").stdout.decode().splitlines()
            assert len(lines) == 100
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait()
            sink = Sink("127.0.0.1", port)
            try:
                s.start()
                wait_for(lambda: len(sink.received()) >= 100, timeout=60, what="all 100")
                time.sleep(3)
                subjects = [email.message_from_bytes(m[2])["Subject"] for m in sink.received()]
                assert sorted(subjects) == sorted(f"queued {i}" for i in range(100))
                assert s.cli("queue", "list").stdout == b""
                # 100 Sent copies, and a whole store after the kill.
                assert len(mailbox_subjects(s, ALICE, "Sent")) == 100
                out = s.cli("check", check=False)
                assert out.returncode == 0 and b": no problems" in out.stdout, out.stdout + out.stderr
            finally:
                sink.close()
        finally:
            s.stop()
