"""The small IMAP extensions of issue 18, over a raw socket: WITHIN (RFC
5032: SEARCH OLDER/YOUNGER by seconds against the internal date),
STATUS=SIZE (RFC 8438) and STATUS DELETED-STORAGE (RFC 9208: what an
EXPUNGE would free, in KiB, rounded up)."""
import datetime
import tempfile

import pytest

from conftest import Satchel
from test_imap_qresync import session
from test_imap_sort import one

ALICE = "alice@example.test"


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp)
        s.add_user(ALICE)
        s.start()
        try:
            yield s
        finally:
            s.stop()


def append(r, body, when=None):
    data = body.encode()
    date = f' "{when.strftime("%d-%b-%Y %H:%M:%S +0000")}"' if when else ""
    r.send(f"a APPEND INBOX (){date} {{{len(data)}+}}")
    r.s.sendall(data + b"\r\n")
    line = r.f.readline()
    assert line.startswith(b"a OK"), line


def test_within_and_status_sizes(server):
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" WITHIN" in untagged[0] and b" STATUS=SIZE" in untagged[0], untagged
    two_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    old = "Subject: old\r\n\r\n" + "x" * 3000 + "\r\n"
    new = "Subject: new\r\n\r\nhello\r\n"
    append(r, old, two_days_ago)
    append(r, new)
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID SEARCH YOUNGER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 2", untagged
    untagged, _ = r.cmd("UID SEARCH OLDER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 1", untagged
    untagged, _ = r.cmd("UID SEARCH OLDER 259200")
    assert one(untagged, "* SEARCH") == "* SEARCH", untagged
    untagged, _ = r.cmd("UID SEARCH NOT YOUNGER 3600")
    assert one(untagged, "* SEARCH") == "* SEARCH 1", untagged
    _, ok = r.cmd("SEARCH YOUNGER 0")
    assert b" BAD " in ok, ok

    untagged, _ = r.cmd("STATUS INBOX (SIZE DELETED-STORAGE)")
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (SIZE {len(old) + len(new)} DELETED-STORAGE 0)"
    r.cmd("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = r.cmd("STATUS INBOX (DELETED-STORAGE DELETED)")
    kib = -(-len(old) // 1024)
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (DELETED-STORAGE {kib} DELETED 1)", untagged
    r.cmd("EXPUNGE")
    untagged, _ = r.cmd("STATUS INBOX (SIZE DELETED-STORAGE)")
    assert one(untagged, "* STATUS") == f"* STATUS INBOX (SIZE {len(new)} DELETED-STORAGE 0)"


def ids(untagged, name):
    """{uid: the object ID} of FETCH lines carrying `name`."""
    import re
    out = {}
    for l in untagged:
        m = re.search(rb"UID (\d+)", l)
        v = re.search(name.encode() + rb" (\(([A-Za-z0-9_-]+)\)|NIL)", l)
        if m and v:
            out[int(m.group(1))] = v.group(2).decode() if v.group(2) else None
    return out


def test_object_ids(server):
    """OBJECTID (RFC 8474): MAILBOXID from CREATE, SELECT and STATUS, the
    same after RENAME and new for a mailbox made again; EMAILID the same
    for a copy; THREADID shared by a message and its replies; SEARCH by
    either."""
    import re
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" OBJECTID" in untagged[0]
    _, ok = r.cmd("CREATE Projects")
    made = re.search(rb"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", ok).group(1).decode()
    untagged, _ = r.cmd("STATUS Projects (MAILBOXID)")
    assert one(untagged, "* STATUS") == f"* STATUS \"Projects\" (MAILBOXID ({made}))"
    r.cmd("RENAME Projects Work")
    untagged, _ = r.cmd("EXAMINE Work")
    assert f"* OK [MAILBOXID ({made})]".encode() in b"".join(untagged), untagged
    r.cmd("CLOSE")
    r.cmd("DELETE Work")
    _, ok = r.cmd("CREATE Work")
    assert made.encode() not in ok, ok

    append(r, "Message-ID: <root@x>\r\nSubject: plan\r\n\r\nfirst\r\n")
    append(r, "Message-ID: <reply@x>\r\nReferences: <root@x>\r\nSubject: Re: plan\r\n\r\nsecond\r\n")
    append(r, "Message-ID: <other@x>\r\nSubject: lunch\r\n\r\nthird\r\n")
    append(r, "Subject: no id at all\r\n\r\nfourth\r\n")
    r.cmd("SELECT INBOX")
    r.cmd("UID COPY 1 Work")
    untagged, _ = r.cmd("UID FETCH 1:* (EMAILID THREADID)")
    emails, threads = ids(untagged, "EMAILID"), ids(untagged, "THREADID")
    assert len(set(emails.values())) == 4, emails
    assert threads[1] == threads[2] != threads[3], threads
    assert threads[4] and threads[4] not in (threads[1], threads[3]), threads
    untagged, _ = r.cmd(f"UID SEARCH EMAILID {emails[3]}")
    assert one(untagged, "* SEARCH") == "* SEARCH 3"
    untagged, _ = r.cmd(f"UID SEARCH THREADID {threads[1]}")
    assert one(untagged, "* SEARCH") == "* SEARCH 1 2"
    _, ok = r.cmd("UID SEARCH EMAILID bad.id")
    assert b" BAD " in ok, ok
    # The copy keeps its EMAILID and THREADID.
    r.cmd("SELECT Work")
    untagged, _ = r.cmd("UID FETCH 1 (EMAILID THREADID)")
    assert ids(untagged, "EMAILID") == {1: emails[1]}, untagged
    assert ids(untagged, "THREADID") == {1: threads[1]}, untagged


def test_savedate(server):
    """SAVEDATE (RFC 8514): when the message came into this mailbox, not
    its internal date; SAVEDBEFORE/ON/SINCE by that day (UTC),
    SAVEDATESUPPORTED; messages saved before the date was kept answer
    their internal date."""
    import re
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" SAVEDATE" in untagged[0]
    long_ago = datetime.datetime(2020, 5, 17, 12, 0, tzinfo=datetime.timezone.utc)
    before = datetime.datetime.now(datetime.timezone.utc)
    append(r, "Subject: old\r\n\r\nold\r\n", long_ago)
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID FETCH 1 (INTERNALDATE SAVEDATE)")
    line = untagged[0].decode()
    assert 'INTERNALDATE "17-May-2020 12:00:00 +0000"' in line, line
    saved = re.search(r'SAVEDATE "[ 0]?(\d+-\w+-\d+) \d\d:\d\d:\d\d \+0000"\)', line).group(1)
    # The day it was saved (the append may straddle midnight UTC).
    days = {t.strftime("%-d-%b-%Y") for t in (before, datetime.datetime.now(datetime.timezone.utc))}
    assert saved in days, line
    day = saved
    for key, hit in [("SAVEDON", True), ("SAVEDSINCE", True), ("SAVEDBEFORE", False)]:
        untagged, _ = r.cmd(f"UID SEARCH {key} {day}")
        assert one(untagged, "* SEARCH") == ("* SEARCH 1" if hit else "* SEARCH"), (key, untagged)
    untagged, _ = r.cmd("UID SEARCH SAVEDBEFORE 1-Jan-2021")
    assert one(untagged, "* SEARCH") == "* SEARCH", "the internal date is not the save date"
    untagged, _ = r.cmd("UID SEARCH SAVEDATESUPPORTED")
    assert one(untagged, "* SEARCH") == "* SEARCH 1"
    r.cmd("LOGOUT")
    server.stop()
    server.sql("UPDATE messages SET saved_at = NULL")
    server.start()
    r = session(server, enable=False)
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID FETCH 1 (SAVEDATE)")
    assert b'SAVEDATE "17-May-2020 12:00:00 +0000"' in untagged[0], untagged


def test_preview(server):
    """PREVIEW (RFC 8970): the first text of the body, made at delivery
    (plain text, HTML made plain, white space collapsed, at most 200
    characters), NIL for a message without text; (LAZY) gives the same;
    a copy keeps it; UTF-8 comes as a literal."""
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" PREVIEW" in untagged[0]
    server.deliver(ALICE, "Subject: plain\r\n\r\nHello   Alice,\r\n\r\nthe   report is ready.\r\n")
    append(r, "Content-Type: text/html; charset=utf-8\r\nSubject: html\r\n\r\n"
              "<html><body><p>Menu <b>du jour</b></p></body></html>\r\n")
    append(r, "Content-Type: application/pdf\r\nSubject: pdf\r\n\r\n%PDF-1.4\r\n")
    append(r, "Subject: long\r\n\r\n" + "lorem ipsum " * 100 + "\r\n")
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID FETCH 1:4 (PREVIEW)")
    lines = b"".join(untagged).decode()
    assert 'PREVIEW "Hello Alice, the report is ready.")' in lines, lines
    assert 'PREVIEW "Menu du jour")' in lines, lines
    assert "UID 3 PREVIEW NIL)" in lines, lines
    long = [l for l in untagged if l.startswith(b"* 4 ")][0].decode()
    text = long.split('PREVIEW "', 1)[1].rsplit('"', 1)[0]
    assert len(text) <= 200 and text.startswith("lorem ipsum lorem"), long
    untagged2, _ = r.cmd("UID FETCH 1:4 (PREVIEW (LAZY))")
    assert untagged2 == untagged
    # The drafts' forms, answered as the reference Dovecot answers them.
    caps, _ = r.cmd("CAPABILITY")
    assert b" PREVIEW=FUZZY" in caps[0] and b" SNIPPET=FUZZY" in caps[0], caps
    untagged, _ = r.cmd("UID FETCH 1 (PREVIEW (FUZZY))")
    assert b'PREVIEW (FUZZY "Hello Alice, the report is ready."))' in untagged[0], untagged
    untagged, _ = r.cmd("UID FETCH 3 (SNIPPET (LAZY=FUZZY))")
    assert b"UID 3 SNIPPET (FUZZY NIL))" in untagged[0], untagged
    r.cmd("UID COPY 2 Trash")
    r.cmd("SELECT Trash")
    untagged, _ = r.cmd("UID FETCH 1 (PREVIEW)")
    assert b'PREVIEW "Menu du jour"' in untagged[0], untagged
    server.deliver(ALICE, "Subject: u\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                          "Grüße aus Köln\r\n".encode())
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID FETCH 5 (PREVIEW)")
    data = "Grüße aus Köln".encode()
    assert untagged[0].endswith(b"PREVIEW {%d}\r\n" % len(data)), untagged
    assert untagged[1] == data + b")\r\n", untagged


def test_utf8_accept(server):
    """UTF8=ACCEPT (RFC 6855): once enabled, mailbox names are UTF-8 both
    ways (a client without it sees modified UTF-7) and APPEND takes
    UTF8 (~{n}); before, that APPEND is refused with BAD."""
    name = "Grüße"
    plain = session(server, enable=False)
    raw = "Subject: Grüße aus Köln\r\nFrom: Jörg <jörg@example.test>\r\n\r\nHallo\r\n".encode()
    plain.send(f"a APPEND INBOX UTF8 (~{{{len(raw)}+}}")
    plain.s.sendall(raw + b")\r\n")
    line = plain.f.readline()
    assert line.startswith(b"a BAD") and b"UTF8=ACCEPT" in line, line

    r = session(server, enable=False)
    untagged, _ = r.cmd("ENABLE UTF8=ACCEPT")
    assert untagged == [b"* ENABLED UTF8=ACCEPT\r\n"], untagged
    r.s.sendall(f'c1 CREATE "{name}"\r\n'.encode())
    assert r.f.readline().startswith(b"c1 OK"), "CREATE with a UTF-8 name"
    r.s.sendall(b'c2 LIST "" "Gr*"\r\n')
    listed = r.f.readline()
    assert listed == f'* LIST (\\HasNoChildren) "/" "{name}"\r\n'.encode(), listed
    r.f.readline()
    untagged, _ = plain.cmd('LIST "" "Gr*"')
    assert untagged == [b'* LIST (\\HasNoChildren) "/" "Gr&APwA3w-e"\r\n'], untagged
    r.send(f"a APPEND INBOX UTF8 (~{{{len(raw)}+}}")
    r.s.sendall(raw + b")\r\n")
    line = r.f.readline()
    assert line.startswith(b"a OK"), line
    r.cmd("SELECT INBOX")
    untagged, _ = r.cmd("UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert "Grüße aus Köln".encode() in b"".join(untagged), untagged


def test_i18nlevel_1_search_folds_with_unicode_casemap(server):
    """I18NLEVEL=1 (RFC 5255): SEARCH compares with i;unicode-casemap
    (RFC 5051: titlecase, then NFKD), in the index's header texts and in
    bodies alike."""
    r = session(server, enable=False)
    caps, _ = r.cmd("CAPABILITY")
    assert b" I18NLEVEL=1" in caps[0], caps
    append(r, "Subject: =?utf-8?q?=EF=AC=81nal_caf=C3=A9?=\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n\r\n"
              "Ｗｉｄｅ letters and Stra\u00dfe\r\n")
    append(r, "Subject: other\r\n\r\nnothing\r\n")
    r.cmd("SELECT INBOX")
    for key in ['SUBJECT "FINAL"', 'SUBJECT "cafe\u0301"', 'BODY "wide"', 'BODY "STRASSE"',
                'TEXT "final"']:
        data = key.encode()
        untagged, ok = r.cmd(f"UID SEARCH CHARSET UTF-8 {key}") if data.isascii() else \
            literal_search(r, key)
        assert one(untagged, "* SEARCH") == "* SEARCH 1", (key, untagged)


def literal_search(r, key):
    """UID SEARCH with a non-ASCII string sent as a literal."""
    name, text = key.split(" ", 1)
    data = text.strip('"').encode()
    return r.cmd_parts([f"UID SEARCH CHARSET UTF-8 {name} {{{len(data)}+}}\r\n".encode() + data])
