#!/usr/bin/env python3
"""Writes a deterministic test mbox of realistic mail, the same bytes on every
run and every machine (Python 3.9+; stdlib only).

    python3 tests/data/gen_mbox.py OUT.mbox [N]     # N defaults to 100

Message i is of kind i % 12, so any 12 in a row hold every kind:
 0 short plain text           6 text with a binary attachment
 1 long plain text            7 alternative, then a PDF and a PNG attached
 2 UTF-8 quoted-printable     8 CSV attached under a non-ASCII file name
 3 UTF-8 base64, 8-bit names  9 a forwarded message/rfc822 with its attachment
 4 text + HTML alternative   10 HTML with an inline image (multipart/related)
 5 UTF-8 text + HTML         11 a calendar invitation (text/calendar)
About a third of the messages reply to an earlier one (In-Reply-To and
References), subjects and names use encoded words, and every Message-ID is
unique. Multipart boundaries are set here, never drawn from Python's global
random generator, so the output does not depend on anything but N.
"""
import datetime
import email.utils
import mailbox
import os
import random
import sys
from email.headerregistry import Address
from email.message import EmailMessage

SEED = 0x5A7C4E1
PEOPLE = [
    ("Ana Lima", "ana", "example.com.br"),
    ("Björn Åkesson", "bjorn", "example.se"),
    ("Chloé Martin", "chloe", "example.fr"),
    ("Dmitri Volkov", "dmitri", "example.ru"),
    ("Eve Adams", "eve", "lists.example.org"),
    ("Farid Haddad", "farid", "example.net"),
    ("王芳", "wangfang", "example.cn"),
    ("Grace O'Brien", "grace", "example.ie"),
    ("Hiro Tanaka", "hiro", "example.jp"),
]
SUBJECTS = [
    "Status update", "Quarterly numbers", "Release checklist", "Invoice #{n}",
    "Your order {n} has shipped", "Agenda for Thursday", "Résumé attached",
    "Προσφορά για το έργο", "Отчёт за неделю", "Server migration window",
    "Lunch on Friday?", "Question about the mailbox quota",
]
WORDS = (
    "the a mailbox server message folder client flag search index quota backup "
    "release schedule meeting budget invoice report draft review deploy patch "
    "network storage latency thread reply forward attachment calendar invite "
    "project team weekly monthly customer order shipping delivery account"
).split()
UNICODE_LINES = [
    "Viele Grüße aus München", "À bientôt, et merci pour le café",
    "Привет из Санкт-Петербурга", "日本語の本文です", "Ευχαριστώ πολύ",
    "Pozdrawiam serdecznie, Łukasz", "📎 see the attachment ✅",
]
START = datetime.datetime(2024, 3, 4, 7, 30, tzinfo=datetime.timezone.utc)


class Writer:
    def __init__(self, n):
        self.n = n
        self.rnd = random.Random(SEED)
        self.ids = []

    def person(self):
        name, user, domain = self.rnd.choice(PEOPLE)
        return Address(name, user, domain)

    def sentence(self):
        words = [self.rnd.choice(WORDS) for _ in range(self.rnd.randint(6, 18))]
        return " ".join(words).capitalize() + self.rnd.choice([".", ".", ".", "?", "!"])

    def text(self, paragraphs, unicode=False):
        paras = []
        for _ in range(paragraphs):
            paras.append(" ".join(self.sentence() for _ in range(self.rnd.randint(2, 7))))
        if unicode:
            paras.insert(self.rnd.randrange(len(paras) + 1), self.rnd.choice(UNICODE_LINES))
        return "\n\n".join(paras) + "\n\n-- \nWritten by tests/data/gen_mbox.py\n"

    def html(self, text):
        body = "".join("<p>%s</p>\n" % p.replace("&", "&amp;").replace("<", "&lt;")
                       for p in text.split("\n\n"))
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n%s</body></html>\n" % body

    def blob(self, low, high):
        return self.rnd.randbytes(self.rnd.randint(low, high))

    def message(self, i):
        kind = i % 12
        m = EmailMessage()
        sender = self.person()
        m["From"] = sender
        to = [self.person()]
        if self.rnd.random() < 0.35:
            to.append(self.person())
        m["To"] = to
        if self.rnd.random() < 0.2:
            m["Cc"] = self.person()
        subject = self.rnd.choice(SUBJECTS).format(n=4000 + i)
        message_id = "<%06d.%08x@%s>" % (i, self.rnd.getrandbits(32), sender.domain)
        if self.ids and self.rnd.random() < 0.33:
            parent = self.rnd.choice(self.ids)
            m["In-Reply-To"] = parent
            m["References"] = parent
            subject = "Re: " + subject
        m["Subject"] = subject
        when = START + datetime.timedelta(minutes=83 * i + self.rnd.randrange(45))
        m["Date"] = email.utils.format_datetime(when)
        m["Message-ID"] = message_id
        if self.rnd.random() < 0.25:
            m["List-Id"] = "Team list <team.lists.example.org>"
        if self.rnd.random() < 0.1:
            m["Importance"] = "high"
        self.ids.append(message_id)
        self.body(m, kind, i, subject, m["Date"])
        return m

    def body(self, m, kind, i, subject, date):
        if kind == 0:
            m.set_content(self.text(self.rnd.randint(1, 3)))
        elif kind == 1:
            m.set_content(self.text(self.rnd.randint(20, 70)))
        elif kind == 2:
            m.set_content(self.text(self.rnd.randint(2, 6), unicode=True), cte="quoted-printable")
        elif kind == 3:
            m.set_content(self.text(self.rnd.randint(2, 6), unicode=True), cte="base64")
        elif kind in (4, 5):
            text = self.text(self.rnd.randint(2, 8), unicode=(kind == 5))
            m.set_content(text)
            m.add_alternative(self.html(text), subtype="html")
        elif kind == 6:
            m.set_content(self.text(2))
            m.add_attachment(self.blob(1_500, 100_000), maintype="application",
                             subtype="octet-stream", filename="dump-%d.bin" % i)
        elif kind == 7:
            text = self.text(3)
            m.set_content(text)
            m.add_alternative(self.html(text), subtype="html")
            m.make_mixed()
            pdf = b"%PDF-1.7\n" + self.blob(8_000, 50_000) + b"\n%%EOF\n"
            m.add_attachment(pdf, maintype="application", subtype="pdf", filename="statement-%d.pdf" % i)
            png = b"\x89PNG\r\n\x1a\n" + self.blob(800, 20_000)
            m.add_attachment(png, maintype="image", subtype="png", filename="graph.png")
        elif kind == 8:
            m.set_content(self.text(2, unicode=True))
            rows = "".join("%d;Posten %d;%d,%02d\n" % (k, k, self.rnd.randrange(5000), self.rnd.randrange(100))
                           for k in range(self.rnd.randint(5, 300)))
            m.add_attachment("nr;bezeichnung;betrag\n" + rows, subtype="csv",
                             filename="Übersicht März %d.csv" % i)
        elif kind == 9:
            m.set_content("Forwarded below.\n")
            inner = EmailMessage()
            inner["From"] = self.person()
            inner["To"] = self.person()
            inner["Subject"] = "Fwd: " + subject
            inner["Date"] = date
            inner["Message-ID"] = "<fwd-%06d@example.org>" % i
            inner.set_content(self.text(2))
            inner.add_attachment(self.blob(2_000, 4_000), maintype="application", subtype="zip",
                                 filename="logs-%d.zip" % i)
            m.add_attachment(inner)
        elif kind == 10:
            text = self.text(2)
            m.set_content(text)
            cid = "logo-%d@gen.example" % i
            m.add_alternative(self.html(text).replace(
                "<body>\n", '<body>\n<img src="cid:%s" alt="logo">\n' % cid), subtype="html")
            html = m.get_payload()[1]
            html.add_related(b"\x89PNG\r\n\x1a\n" + self.blob(300, 3_000), maintype="image",
                             subtype="png", cid="<%s>" % cid, filename="logo.png")
        else:
            m.set_content(self.text(1))
            start = START + datetime.timedelta(days=i)
            ics = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Satchel tests//EN\nMETHOD:REQUEST\n"
                   "BEGIN:VEVENT\nUID:event-%d@gen.example\nDTSTART:%s\nSUMMARY:%s\n"
                   "END:VEVENT\nEND:VCALENDAR\n") % (i, start.strftime("%Y%m%dT%H%M%SZ"), subject)
            m.add_attachment(ics, subtype="calendar", params={"method": "REQUEST"},
                             disposition="inline", filename="invite.ics")
        # Fixed boundaries: the email package would draw them from the
        # global random generator.
        for k, part in enumerate(m.walk()):
            if part.is_multipart():
                part.set_boundary("=_gen_%04d_%d" % (i, k))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "test.mbox"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    if os.path.exists(out):
        os.unlink(out)
    writer = Writer(n)
    box = mailbox.mbox(out, create=True)
    try:
        for i in range(n):
            msg = mailbox.mboxMessage(writer.message(i))
            msg.set_from("MAILER-DAEMON", (START + datetime.timedelta(minutes=83 * i)).timetuple())
            box.add(msg)
        box.flush()
    finally:
        box.close()
    print("wrote", n, "messages,", os.path.getsize(out), "bytes to", out)


if __name__ == "__main__":
    main()
