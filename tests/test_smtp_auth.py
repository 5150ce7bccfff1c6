"""SPF, DKIM and DMARC verdicts in Authentication-Results (RFC 8601) for
signed, unsigned and forged mail, with DNS answers from a static table."""
import base64
import re
import subprocess

import dkim

ALICE = "alice@example.test"


def make_key(tmp):
    key = tmp / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


def sign(message, private_key):
    sig = dkim.sign(message, b"sel1", b"signer.test", private_key,
                    include_headers=[b"from", b"to", b"subject", b"date"])
    return sig + message


def received_results(satchel, n, mailbox="INBOX"):
    c = satchel.imap(ALICE)
    c.select(f'"{mailbox}"', readonly=True)
    typ, data = c.fetch(str(n), "(BODY.PEEK[HEADER.FIELDS (Authentication-Results)])")
    c.logout()
    return data[0][1].decode().replace("\r\n\t", " ")


def send(satchel, sender, message):
    s = satchel.smtp()
    s.ehlo("mx.signer.test")
    assert s.sendmail(sender, [ALICE], message) == {}
    s.quit()


def test_signed_unsigned_and_forged(satchel):
    private, public = make_key(satchel.dir)
    satchel.dns.write_text(
        "# the sender's domain: SPF allows loopback, DKIM key, strict DMARC\n"
        "TXT signer.test v=spf1 ip4:127.0.0.1 -all\n"
        f"TXT sel1._domainkey.signer.test v=DKIM1; k=rsa; p={public}\n"
        "TXT _dmarc.signer.test v=DMARC1; p=reject\n"
        "TXT mx.signer.test v=spf1 ip4:127.0.0.1 -all\n"
        "# a domain whose mail never comes from here\n"
        "TXT bank.test v=spf1 ip4:192.0.2.1 -all\n"
        "TXT _dmarc.bank.test v=DMARC1; p=reject\n"
        "NX sel1._domainkey.bank.test\n"
        "# (names not in the table do not exist)\n"
    )
    satchel.stop()
    satchel.start()
    base = (b"From: Signer <news@signer.test>\r\nTo: alice@example.test\r\nSubject: signed\r\n"
            b"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <s1@signer.test>\r\n\r\nHello.\r\n")

    send(satchel, "news@signer.test", sign(base, private))
    signed = received_results(satchel, 1)
    assert signed.startswith("Authentication-Results: mail.example.test;"), signed
    assert re.search(r"dkim=pass [^;]*header\.i=@signer\.test header\.s=sel1", signed), signed
    assert re.search(r"spf=pass [^;]*smtp\.mailfrom=news@signer\.test", signed), signed
    assert re.search(r"dmarc=pass [^;]*header\.from=signer\.test", signed), signed

    send(satchel, "news@signer.test", base.replace(b"Subject: signed", b"Subject: unsigned"))
    unsigned = received_results(satchel, 2)
    assert "dkim=none" in unsigned, unsigned
    assert "spf=pass" in unsigned and "dmarc=pass" in unsigned, unsigned

    tampered = sign(base, private).replace(b"Hello.", b"Hello, changed.")
    send(satchel, "news@signer.test", tampered)
    # mail-auth reports a body that changed after signing as neutral.
    changed = received_results(satchel, 3)
    assert re.search(r"dkim=(fail|neutral) \(body hash did not verify\)", changed), changed

    forged = (b"From: Your Bank <security@bank.test>\r\nTo: alice@example.test\r\nSubject: verify your account\r\n"
              b"Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n\r\nClick here.\r\n")
    send(satchel, "security@bank.test", forged)
    # DMARC and SPF fail, no Message-ID: the spam filter doubts it.
    verdict = received_results(satchel, 1, "Possible Junk")
    assert "spf=fail" in verdict and "dmarc=fail" in verdict, verdict
