"""Sieve filters over the real binary: `satchel filter set/get`, and mail
delivered through the SMTP door landing where the user's script says."""
import re

from conftest import message

ALICE = "alice@example.test"
BOB = "bob@example.test"

SCRIPT = r'''require ["fileinto", "mailbox", "imap4flags", "copy", "relational", "comparator-i;ascii-numeric",
         "spamtest", "envelope", "subaddress"];
# Mailing list traffic into its own folder, created on first use.
if header :contains "List-Id" "dev.lists.example.org" {
    fileinto :create "Lists/dev";
    stop;
}
# The boss's mail stays in the inbox, flagged.
if address :is "from" "boss@example.test" {
    addflag "\\Flagged";
}
# Invoices: a copy to the bookkeeper.
if header :contains "subject" "invoice" {
    redirect :copy "bob@example.test";
}
# Mail from my bank is never junk, whatever the spam filter thinks.
if address :domain :is "from" "bank.test" {
    fileinto "INBOX";
}
# Mail to my +shopping address is filed away.
if envelope :detail "to" "shopping" {
    fileinto "Shopping";
}
'''


def set_filter(satchel, user, text):
    path = satchel.dir / "filter.sieve"
    path.write_text(text)
    return satchel.cli("filter", "set", user, str(path), check=False)


def fetch_all(satchel, user, mailbox):
    c = satchel.imap(user)
    typ, data = c.select(f'"{mailbox}"', readonly=True)
    assert typ == "OK", (mailbox, data)
    n = int(data[0])
    out = []
    for i in range(1, n + 1):
        typ, d = c.fetch(str(i), "(FLAGS BODY.PEEK[])")
        out.append((d[0][0].decode(), d[0][1]))
    c.logout()
    return out


def test_filter_set_checks_the_script_and_get_returns_it(satchel):
    bad = set_filter(satchel, ALICE, 'require "fileinto";\nif header :is "subject" "x" {\n  fileinto;\n}\n')
    assert bad.returncode != 0
    assert b"line 3, column 3" in bad.stderr and b"nothing was changed" in bad.stderr, bad.stderr
    missing = satchel.cli("filter", "get", ALICE, check=False)
    assert missing.returncode != 0 and b"no active filter" in missing.stderr
    assert set_filter(satchel, ALICE, SCRIPT).returncode == 0
    assert satchel.cli("filter", "get", ALICE).stdout.decode() == SCRIPT
    unknown = satchel.cli("filter", "get", "nobody@example.test", check=False)
    assert unknown.returncode != 0 and b"no account" in unknown.stderr


def test_smtp_mail_lands_where_the_script_says(satchel):
    assert set_filter(satchel, ALICE, SCRIPT).returncode == 0
    smtp = satchel.smtp()
    smtp.sendmail("dev-bounces@lists.example.org", [ALICE], message(
        "[dev] release branch", "Branch cut tonight.", "Carol <carol@lists.example.org>",
        "List-Id: Developers <dev.lists.example.org>\r\n"))
    smtp.sendmail("boss@example.test", [ALICE], message("Quarterly plan", "See me.", "Boss <boss@example.test>"))
    smtp.sendmail("shop@remote.test", [ALICE], message("Your invoice 42", "Amount due: 10.", "Shop <shop@remote.test>"))
    smtp.sendmail("shop@remote.test", ["alice+shopping@example.test"],
                  message("Order shipped", "On its way.", "Shop <shop@remote.test>"))
    smtp.quit()

    [(flags, listmail)] = fetch_all(satchel, ALICE, "Lists/dev")
    assert b"Branch cut tonight." in listmail
    inbox = fetch_all(satchel, ALICE, "INBOX")
    assert len(inbox) == 3, inbox
    assert b"See me." in inbox[0][1] and "\\Flagged" in inbox[0][0]
    assert b"Amount due" in inbox[1][1] and "\\Flagged" not in inbox[1][0]
    # The redirected copy reached Bob's inbox; the original stayed with Alice.
    [(_, copy)] = fetch_all(satchel, BOB, "INBOX")
    assert b"Your invoice 42" in copy
    # Alice has no Shopping mailbox: fileinto falls back to INBOX.
    assert b"On its way." in inbox[2][1]
    c = satchel.imap(ALICE)
    c.create("Shopping")
    c.logout()
    smtp = satchel.smtp()
    smtp.sendmail("shop@remote.test", ["alice+shopping@example.test"],
                  message("Order delivered", "Arrived.", "Shop <shop@remote.test>"))
    smtp.quit()
    [(_, shopping)] = fetch_all(satchel, ALICE, "Shopping")
    assert b"Order delivered" in shopping
    # The list folder was created and shows in LIST.
    c = satchel.imap(ALICE)
    typ, listing = c.list('""', "Lists/*")
    c.logout()
    assert any(b'"Lists/dev"' in line or b"Lists/dev" in line for line in listing), listing


def test_the_users_rules_override_the_spam_verdict(satchel):
    assert set_filter(satchel, ALICE, SCRIPT).returncode == 0
    exe = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n", "--b\r\nContent-Type: text/plain\r\n\r\n"
           "Statement attached.\r\n--b\r\nContent-Type: application/octet-stream; name=statement.exe\r\n"
           "Content-Disposition: attachment; filename=statement.exe\r\n\r\nMZ\r\n--b--\r\n")
    bank = (f"From: Bank <alerts@bank.test>\r\nTo: {ALICE}\r\nSubject: statement\r\n"
            f"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <s1@bank.test>\r\n{exe[0]}\r\n{exe[1]}")
    other = bank.replace("bank.test", "shady.test")
    smtp = satchel.smtp()
    smtp.sendmail("alerts@bank.test", [ALICE], bank.encode())
    smtp.sendmail("alerts@shady.test", [ALICE], other.encode())
    smtp.quit()
    # Same score (an executable: Possible Junk), different places.
    [(_, doubtful)] = fetch_all(satchel, ALICE, "Possible Junk")
    assert b"shady.test" in doubtful
    [(_, kept)] = fetch_all(satchel, ALICE, "INBOX")
    assert b"bank.test" in kept and re.search(rb"X-Spam-Score: 60\r\n", kept), kept[:400]


def test_deliver_prints_every_copy_and_a_discard(satchel):
    assert set_filter(satchel, ALICE, 'require "copy";\nif header :is "subject" "drop" { discard; }\n'
                                      'if header :is "subject" "share" { redirect :copy "bob@example.test"; }\n'
                      ).returncode == 0
    out = satchel.cli("deliver", "--from", "x@remote.test", "--to", ALICE,
                      stdin=b"Subject: drop\r\n\r\nbye\r\n").stdout.decode()
    assert out.splitlines() == [f"{ALICE} - discarded"]
    out = satchel.cli("deliver", "--from", "x@remote.test", "--to", ALICE,
                      stdin=b"Subject: share\r\n\r\nhi\r\n").stdout.decode()
    assert out.splitlines() == [f"{ALICE} INBOX 1", f"{BOB} INBOX 1"]


def test_server_script_and_includes(satchel):
    from test_managesieve import ManageSieve

    # The admin's scripts: one before every user's, and one users may include.
    before = satchel.dir / "before.sieve"
    before.write_text('require ["fileinto", "imap4flags"];\n'
                      'if header :contains "subject" "[quarantine]" { fileinto "Junk"; stop; }\n'
                      'addflag "$Scanned";\n')
    shared = satchel.dir / "global"
    shared.mkdir()
    (shared / "lists.sieve").write_text('require ["fileinto", "mailbox"];\n'
                                        'if exists "list-id" { fileinto :create "Lists"; }\n')
    satchel.stop()
    with open(satchel.config, "a") as f:
        f.write(f'[sieve]\nbefore = "{before}"\nglobal_dir = "{shared}"\n')
    satchel.start()

    # Alice's own: a personal script, and the active one that includes both.
    c = ManageSieve(satchel.ports["managesieve"])
    assert c.login()[0].startswith("OK")
    vip = 'require ["imap4flags"];\r\nif address :is "from" "vip@remote.test" { addflag "\\\\Flagged"; }\r\n'
    main = 'require ["include"];\r\ninclude :personal "vip";\r\ninclude :global "lists";\r\n'
    assert c.command('PUTSCRIPT "vip"', vip)[0].startswith("OK")
    assert c.command('PUTSCRIPT "main"', main)[0].startswith("OK")
    assert c.command('SETACTIVE "main"')[0].startswith("OK")
    c.close()

    smtp = satchel.smtp()
    smtp.sendmail("vip@remote.test", [ALICE, BOB], message("hello", "Hi.", "VIP <vip@remote.test>"))
    smtp.sendmail("x@remote.test", [ALICE], message("digest", "News.", "X <x@remote.test>", "List-Id: <l.remote.test>\r\n"))
    smtp.sendmail("x@remote.test", [ALICE, BOB], message("[quarantine] y", "Bad.", "X <x@remote.test>"))
    smtp.quit()

    [(flags, msg)] = fetch_all(satchel, ALICE, "INBOX")
    assert b"Hi." in msg and "\\Flagged" in flags and "$Scanned" in flags, flags
    [(flags, msg)] = fetch_all(satchel, ALICE, "Lists")
    assert b"News." in msg and "$Scanned" in flags
    # The server's script applies to everyone; Alice's to her alone.
    [(flags, msg)] = fetch_all(satchel, BOB, "INBOX")
    assert "$Scanned" in flags and "\\Flagged" not in flags
    assert len(fetch_all(satchel, ALICE, "Junk")) == 1 and len(fetch_all(satchel, BOB, "Junk")) == 1

    # A server script with an error stops the server at start, saying where.
    satchel.stop()
    before.write_text('require "fileinto";\nfileinto;\n')
    out = satchel.cli("serve", check=False)
    assert out.returncode != 0 and b"sieve.before" in out.stderr and b"line 2, column 1" in out.stderr, out.stderr
    before.write_text("keep;\n")
    satchel.start()


def test_vacation_replies_once_per_sender(satchel):
    assert set_filter(satchel, ALICE, 'require "vacation";\n'
                                      'vacation :days 3 :subject "Away until Monday" "Back on Monday.";\n'
                      ).returncode == 0
    smtp = satchel.smtp()
    for n in range(2):
        smtp.sendmail(BOB, [ALICE], message(f"question {n}", "Quick one?", f"Bob <{BOB}>"))
    # A list message and one from a robot get no reply.
    smtp.sendmail(BOB, [ALICE], message("digest", "x", f"Bob <{BOB}>", "List-Id: <l.example.test>\r\n"))
    smtp.sendmail("", [ALICE], message("bounce", "x", "MAILER-DAEMON <mailer-daemon@example.test>"))
    smtp.quit()
    # Alice keeps everything; Bob has exactly one reply.
    assert len(fetch_all(satchel, ALICE, "INBOX")) == 4
    [(_, reply)] = fetch_all(satchel, BOB, "INBOX")
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"Subject: Away until Monday\r\n" in head and b"Auto-Submitted: auto-replied" in head
    assert b"To: <bob@example.test>" in head and b"In-Reply-To: <" in head and body == b"Back on Monday.\r\n"


def test_reject_is_refused_at_the_smtp_level(satchel):
    import smtplib
    assert set_filter(satchel, ALICE, 'require "reject";\n'
                                      'if header :contains "subject" "unwanted" {\n'
                                      '  reject text:\nNo thanks.\nTake me off your list.\n.\n;\n}\n').returncode == 0
    smtp = satchel.smtp()
    try:
        smtp.sendmail("x@remote.test", [ALICE], message("unwanted offer", "Buy."))
        raise AssertionError("accepted")
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"5.7.1 No thanks. Take me off your list." in e.smtp_error, e
    # With another recipient who takes it: stored for that one only, and
    # the sender (Bob here, local) gets a DSN naming the one who refused.
    smtp.sendmail(BOB, [ALICE, BOB], message("unwanted offer", "Buy."))
    smtp.sendmail("x@remote.test", [ALICE], message("wanted", "Hi."))
    smtp.quit()
    assert len(fetch_all(satchel, ALICE, "INBOX")) == 1
    bobs = [raw for _, raw in fetch_all(satchel, BOB, "INBOX")]
    assert len(bobs) == 2, bobs
    [dsn] = [m for m in bobs if b"multipart/report" in m]
    assert b"Final-Recipient: rfc822; alice@example.test" in dsn, dsn
    assert b"No thanks." in dsn and b"Status: 5.7.1" in dsn
    assert b"Subject: unwanted offer" in dsn, "the original header is in the report"
    out = satchel.cli("deliver", "--from", "x@remote.test", "--to", ALICE,
                      stdin=message("unwanted again", "Buy."), check=False)
    assert out.returncode != 0 and b"No thanks." in out.stderr, out.stderr
    assert len(fetch_all(satchel, ALICE, "INBOX")) == 1


def test_a_mailbox_name_no_mailbox_can_have_means_inbox(satchel):
    assert set_filter(satchel, ALICE, 'require ["fileinto", "mailbox", "variables"];\n'
                                      'if header :matches "subject" "[*]*" { fileinto :create "Tags/${1}"; }\n'
                      ).returncode == 0
    smtp = satchel.smtp()
    # "Tags/" and "Tags/a%b" are no mailbox names: the message still arrives.
    for subject in ("[] empty tag", "[a%b] wildcard", "[work] fine"):
        smtp.sendmail("x@remote.test", [ALICE, BOB], message(subject, "x"))
    smtp.quit()
    assert len(fetch_all(satchel, ALICE, "INBOX")) == 2
    assert len(fetch_all(satchel, ALICE, "Tags/work")) == 1
    assert len(fetch_all(satchel, BOB, "INBOX")) == 3
