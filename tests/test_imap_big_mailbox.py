"""A 100,000-message mailbox (made here, not shipped): SELECT, a QRESYNC
resync with nothing changed, header SEARCHes, SORT by date and subject and
THREAD REFERENCES are answered from the index, which the store's own
counter of message bodies read (/metrics' satchel_store_body_reads_total)
shows: it does not move. Then a BODY search, which must read the
messages, moves it by the mailbox's size (the counter is not stuck). The
server's own memory (RssAnon) while it answers is printed and held under
256 MiB; the index file SQLite maps is page cache, printed beside it."""
import http.client
import re
import tempfile
import time

from conftest import Satchel, figure
from test_imap_qresync import session
from test_imap_sort import one

ALICE = "alice@example.test"
COUNT = 100_000


def body_reads(s):
    c = http.client.HTTPConnection("127.0.0.1", s.ports["http"], timeout=60)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return int(re.search(r"^satchel_store_body_reads_total (\d+)$", text, re.M).group(1))


def memory_kib(s):
    """(the server's own memory, RssAnon; the index file as mapped,
    RssFile), in KiB. Each of SQLite's connections maps the index file,
    so RssFile counts the same page-cache pages once per mapping."""
    status = open(f"/proc/{s.proc.pid}/status").read()
    field = lambda name: int(re.search(name + r":\s+(\d+) kB", status).group(1))
    return field("RssAnon"), field("RssFile")


def test_a_100k_mailbox_is_answered_from_the_index():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n[web]\nmetrics = true\n', doors=7)
        s.add_user(ALICE)
        mbox = s.dir / "big.mbox"
        with open(mbox, "w") as f:
            for i in range(COUNT):
                f.write(
                    "From sender@example.org Mon Mar  4 07:30:00 2024\n"
                    f"From: Sender {i % 97} <s{i % 97}@example.org>\n"
                    f"To: {ALICE}\n"
                    f"Subject: {'Re: ' if i % 3 else ''}Topic {i % 5000}\n"
                    f"Date: Mon, {1 + i % 28:02d} Apr 2024 {i % 24:02d}:{i % 60:02d}:00 +0000\n"
                    f"Message-ID: <m{i}@example.org>\n"
                    + (f"In-Reply-To: <m{i - 1}@example.org>\n" if i % 3 else "")
                    + f"\nBody of message {i}.\n\n"
                )
        # 100,000 messages: tens of seconds, more on a busy machine.
        s.cli("import", ALICE, "--mailbox", "INBOX", str(mbox), timeout=600)
        mbox.unlink()
        s.start()
        try:
            baseline, _ = memory_kib(s)
            r = session(s)
            # Reading 100,000 bodies from a cold disk can take minutes on a
            # busy CI machine: a bound for a hang, not a timing.
            r.s.settimeout(600)
            untagged, ok = r.cmd("SELECT INBOX")
            assert f"* {COUNT} EXISTS".encode() in b"".join(untagged), untagged
            uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(untagged)).group(1))
            modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(untagged)).group(1))
            # Keys for mail imported before the server ran were made at
            # import; the first sort finds them all there.
            before = body_reads(s)
            untagged, ok = r.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")
            assert b"OK" in ok
            assert not any(b"VANISHED" in l or b" FETCH " in l for l in untagged), untagged[-3:]
            untagged, _ = r.cmd("UID SEARCH RETURN (ALL) HEADER Message-ID <m77777@example.org>")
            assert one(untagged, "* ESEARCH").endswith(" UID ALL 77778"), untagged
            untagged, _ = r.cmd("SEARCH RETURN (COUNT) FROM \"sender 13\" SUBJECT \"topic 4\"")
            count = int(one(untagged, "* ESEARCH").rsplit(" ", 1)[1])
            assert 0 < count < COUNT
            untagged, _ = r.cmd("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
            assert one(untagged, "* ESEARCH").endswith(f" COUNT {COUNT}"), untagged
            untagged, _ = r.cmd("UID SORT RETURN (MIN) (REVERSE SUBJECT) UTF-8 ALL")
            # "TOPIC 999" is the greatest subject; its first message is 999.
            assert one(untagged, "* ESEARCH").endswith(" UID MIN 1000"), untagged
            untagged, _ = r.cmd("UID THREAD REFERENCES UTF-8 SENTON 1-Apr-2024")
            assert one(untagged, "* THREAD").startswith("* THREAD ("), untagged
            peak, mapped = memory_kib(s)
            after = body_reads(s)
            assert after == before, f"{after - before} message bodies were read"
            figure(f"100,000 messages: own memory (RssAnon) {baseline // 1024} MiB at start, "
                   f"{peak // 1024} MiB after SELECT, resync, searches, sorts and THREAD; "
                   f"index file mapped (RssFile) {mapped // 1024} MiB")
            assert peak < 256 * 1024, f"RssAnon {peak} KiB"
            # A search the index cannot answer reads every message.
            untagged, _ = r.cmd("SEARCH RETURN (COUNT) BODY \"message 99999.\"")
            assert one(untagged, "* ESEARCH").endswith(" COUNT 1"), untagged
            assert body_reads(s) - after == COUNT
            r.cmd("LOGOUT")
        finally:
            s.stop()
