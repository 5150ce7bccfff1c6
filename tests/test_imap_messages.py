"""IMAP: the selected state (RFC 9051 6.4) with UIDPLUS, MOVE, ESEARCH,
SEARCHRES, MULTIAPPEND."""
import imaplib
import re
import time

import pytest

from conftest import message

ALICE = "alice@example.test"

MULTIPART = (
    b"From: Dana <dana@remote.test>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached\r\n"
    b"Date: Wed, 03 Jan 2024 12:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, see the attachment.\r\n"
    b'--b1\r\nContent-Type: application/pdf; name="cv.pdf"\r\nContent-Disposition: attachment; filename="cv.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago=\r\n--b1--\r\n"
)


def untagged(c, name):
    return c.untagged_responses.pop(name, [])


@pytest.fixture
def box(satchel):
    """Alice's INBOX with three messages, selected."""
    satchel.put(ALICE, message("First", "alpha body", sender="Bob <bob@remote.test>"))
    satchel.put(ALICE, MULTIPART)
    satchel.put(ALICE, message("Third", "gamma body", extra="Cc: eve@remote.test\r\n"))
    c = satchel.imap(ALICE)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    return c


def test_select_answers(satchel):
    satchel.deliver(ALICE, message("x"))
    c = satchel.imap(ALICE)
    typ, _ = c.select("INBOX")
    assert typ == "OK"
    assert untagged(c, "EXISTS") == [b"1"]
    assert untagged(c, "RECENT") == [b"1"]
    assert untagged(c, "FLAGS") == [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft)"]
    oks = b" ".join(untagged(c, "OK"))
    for code in [b"PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)", b"UIDVALIDITY ",
                 b"UIDNEXT 2", b"UNSEEN 1"]:
        assert code in oks, oks
    assert untagged(c, "READ-WRITE") == [b""]
    # \Recent goes to one session only.
    d = satchel.imap(ALICE)
    d.select("INBOX")
    assert untagged(d, "RECENT") == [b"0"]
    typ, _ = d.select("INBOX", readonly=True)
    assert untagged(d, "READ-ONLY") == [b""]
    assert b"[CLOSED]" in b" ".join(untagged(d, "OK"))
    typ, data = d.select("Nope")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    c.logout()
    d.logout()


def test_fetch_items(box):
    c = box
    typ, data = c.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
    line = data[0]
    assert re.match(rb'1 \(UID 1 FLAGS \(\\Recent\) RFC822.SIZE \d+ INTERNALDATE "\d\d-\w{3}-\d{4} [\d:]{8} \+0000" '
                    rb'ENVELOPE \("Tue, 02 Jan 2024 10:00:00 \+0000" "First" \(\("Bob" NIL "bob" "remote.test"\)\)', line), line
    typ, data = c.fetch("2", "(BODYSTRUCTURE)")
    assert b'"mixed" ("boundary" "b1")' in data[0]
    assert b'("application" "pdf" ("name" "cv.pdf") NIL NIL "base64" 32 NIL ("attachment" ("filename" "cv.pdf")) NIL NIL)' in data[0]
    typ, data = c.fetch("2", "(BODY)")
    assert data[0].endswith(b'"mixed"))')
    typ, data = c.fetch("2", "(BODY.PEEK[2]<0.8> BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (Subject)])")
    parts = {re.search(rb"(BODY\[[^\]]*\](?:<\d+>)?) \{\d+\}$", k).group(1): v for k, v in data[:-1]}
    assert parts[b"BODY[2]<0>"] == b"JVBERi0x"
    assert parts[b"BODY[1.MIME]"].startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    assert parts[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached\r\n\r\n"
    typ, data = c.fetch("1", "(RFC822.HEADER)")
    assert data[0][1].startswith(b"From: Bob") and data[0][1].endswith(b"\r\n\r\n")
    typ, data = c.fetch("1", "FAST")
    assert re.match(rb"1 \(FLAGS \(\\Recent\) INTERNALDATE \"[^\"]+\" RFC822.SIZE \d+\)", data[0]), data
    typ, data = c.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 1)", b"2 (UID 2)", b"3 (UID 3)"]
    with pytest.raises(imaplib.IMAP4.error, match="no message 9"):
        c.fetch("9", "(UID)")
    typ, data = c.uid("FETCH", "2:99", "(FLAGS)")
    assert len(data) == 2 and data[0].startswith(b"2 (UID 2 FLAGS")


def test_body_fetch_sets_seen_and_peek_does_not(box):
    c = box
    c.fetch("1", "(BODY.PEEK[TEXT])")
    assert c.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Recent))"]
    typ, data = c.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"alpha body\r\n"
    assert data[1] == b" FLAGS (\\Seen \\Recent))"
    typ, data = c.fetch("3", "(RFC822)")
    assert data[0][1].startswith(b"From: Carol")
    assert c.fetch("3", "(FLAGS)")[1] == [b"3 (FLAGS (\\Seen \\Recent))"]
    # EXAMINE never sets \Seen.
    c.select("INBOX", readonly=True)
    c.fetch("2", "(BODY[1])")
    assert c.fetch("2", "(FLAGS)")[1] == [b"2 (FLAGS ())"]


def test_store(box):
    c = box
    typ, data = c.store("1:2", "+FLAGS", "(\\Flagged $Work)")
    assert data == [b"1 (FLAGS (\\Flagged $Work \\Recent))", b"2 (FLAGS (\\Flagged $Work \\Recent))"]
    typ, data = c.store("2", "-FLAGS", "($work)")
    assert data == [b"2 (FLAGS (\\Flagged \\Recent))"]
    c.store("3", "+FLAGS", "($Work)")
    typ, data = c.store("1", "FLAGS", "(\\Answered)")
    assert data == [b"1 (FLAGS (\\Answered \\Recent))"]
    typ, data = c.store("1:3", "+FLAGS.SILENT", "(\\Seen)")
    assert typ == "OK" and data == [None]
    typ, data = c.uid("STORE", "3", "+FLAGS", "(\\Draft)")
    assert data == [b"3 (UID 3 FLAGS (\\Seen \\Draft $Work \\Recent))"]
    with pytest.raises(imaplib.IMAP4.error, match="cannot be set|not a flag"):
        c.store("1", "+FLAGS", "(\\Bogus)")
    # Keywords now show in FLAGS at the next SELECT.
    c.select("INBOX")
    assert untagged(c, "FLAGS") == [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"]
    c.select("INBOX", readonly=True)
    typ, data = c.store("1", "+FLAGS", "(\\Deleted)")
    assert typ == "NO" and b"READ-ONLY" in data[0]


def test_search_keys(box):
    c = box
    c.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    c.store("3", "+FLAGS", "(\\Deleted $Later)")
    cases = {
        "ALL": b"1 2 3",
        "SEEN": b"1",
        "UNSEEN": b"2 3",
        "FLAGGED": b"1",
        "DELETED": b"3",
        "UNDELETED": b"1 2",
        "KEYWORD $Later": b"3",
        "UNKEYWORD $later": b"1 2",
        "FROM bob": b"1",
        "FROM dana@remote": b"2",
        'SUBJECT "résumé"': b"2",
        "SUBJECT third": b"3",
        "CC eve": b"3",
        "TO alice": b"1 2 3",
        "HEADER Message-ID remote.test": b"1 3",
        'HEADER X-Nothing ""': b"",
        "BODY gamma": b"3",
        'BODY "grüße aus köln"': b"2",
        "TEXT carol": b"3",
        "SENTON 2-Jan-2024": b"1 3",
        "SENTSINCE 3-Jan-2024": b"2",
        "SENTBEFORE 3-Jan-2024": b"1 3",
        "SINCE 1-Jan-2024": b"1 2 3",
        "BEFORE 1-Jan-2024": b"",
        "LARGER 400": b"2",
        "SMALLER 400": b"1 3",
        "OR SEEN DELETED": b"1 3",
        "NOT SEEN": b"2 3",
        "(SEEN FLAGGED)": b"1",
        "2:*": b"2 3",
        "UID 1,3": b"1 3",
        "RECENT": b"1 2 3",
        "NEW": b"2 3",
        "OLD": b"",
        "NOT 1:3": b"",
    }
    for key, expected in cases.items():
        charset = "UTF-8" if not key.isascii() else None
        typ, data = c.search(charset, key.encode() if charset else key)
        assert (typ, data) == ("OK", [expected]), (key, data)
    typ, data = c.uid("SEARCH", "FROM", "bob")
    assert data == [b"1"]
    typ, data = c.search("KOI8-R", "ALL")
    assert typ == "NO" and b"[BADCHARSET (UTF-8 US-ASCII)]" in data[0]


def test_esearch_and_searchres(box):
    c = box
    typ, data = c._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert typ == "OK"
    assert untagged(c, "ESEARCH")[0].endswith(b'UID MIN 1 MAX 3 COUNT 3 ALL 1:3')
    typ, _ = c._simple_command("SEARCH", "RETURN", "()", "2:3")
    assert untagged(c, "ESEARCH")[0].endswith(b"ALL 2:3")
    typ, _ = c._simple_command("SEARCH", "RETURN", "(COUNT)", "DELETED")
    assert untagged(c, "ESEARCH")[0].endswith(b"COUNT 0")
    # SAVE, then use $ in the next commands (RFC 5182).
    typ, _ = c._simple_command("UID", "SEARCH", "RETURN", "(SAVE)", "FROM", "carol")
    assert typ == "OK" and untagged(c, "ESEARCH") == []
    typ, data = c.fetch("$", "(UID)")
    assert data == [b"3 (UID 3)"]
    typ, data = c.store("$", "+FLAGS", "(\\Answered)")
    assert data == [b"3 (FLAGS (\\Answered \\Recent))"]


def test_imap4rev2_searches_answer_with_esearch(satchel):
    satchel.deliver(ALICE, message("x"))
    c = satchel.imap(ALICE)
    c._simple_command("ENABLE", "IMAP4rev2")
    c.select("INBOX")
    assert untagged(c, "RECENT") == []
    typ, _ = c._simple_command("SEARCH", "ALL")
    assert untagged(c, "ESEARCH")[0].endswith(b"ALL 1")
    assert c.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS ())"]


def test_copy_move_and_junk_training(satchel, box):
    c = box
    typ, data = c.copy("1:2", "Sent")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0])
    typ, data = c.copy("1", "Nope")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = c._simple_command("MOVE", "2", "Junk")
    assert typ == "OK"
    assert re.match(rb"\[COPYUID \d+ 2 1\] Moved.", untagged(c, "OK")[-1])
    assert untagged(c, "EXPUNGE") == [b"2"]
    typ, data = c.fetch("1:*", "(UID)")
    assert data == [b"1 (UID 1)", b"2 (UID 3)"]
    typ, data = c.uid("MOVE", "3", '"Possible Junk"')
    assert typ == "OK"
    assert c.select("Junk")[1] == [b"1"]
    typ, data = c.uid("MOVE", "1", "INBOX")
    assert typ == "OK"
    rows = satchel.sql("SELECT CAST(spam AS INTEGER) FROM training ORDER BY id")
    # INBOX -> Junk is spam; Junk -> INBOX is ham; INBOX -> Possible Junk is neither.
    assert rows == [(1,), (0,)]
    c.select('"Possible Junk"')
    c.uid("MOVE", "1", "Trash")
    assert satchel.sql("SELECT COUNT(*) FROM training") == [(2,)], "Possible Junk -> Trash is not ham"
    # COPY into Junk and EXPUNGE of the original (what clients without MOVE
    # do): exactly one spam event, from the COPY.
    c.select("INBOX")
    typ, data = c.uid("COPY", "1", "Junk")
    assert typ == "OK"
    c.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")
    assert c.expunge()[0] == "OK"
    rows = satchel.sql("SELECT CAST(spam AS INTEGER) FROM training ORDER BY id")
    assert rows == [(1,), (0,), (1,)]


def test_append_and_multiappend(satchel):
    c = satchel.imap(ALICE)
    typ, data = c.append("Drafts", "(\\Draft $Todo)", '"07-Feb-1994 21:52:25 -0800"', b"Subject: draft\r\n\r\nwip\r\n")
    assert typ == "OK" and re.match(rb"\[APPENDUID \d+ 1\]", data[0])
    c.select("Drafts")
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE)")
    assert data == [b'1 (FLAGS (\\Draft $Todo \\Recent) INTERNALDATE "07-Feb-1994 21:52:25 -0800" RFC822.SIZE 23)']
    typ, data = c.append("Nope", None, None, b"x\r\n")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    # MULTIAPPEND: two messages, one command, UIDs in one APPENDUID.
    c.send(b"m1 APPEND Drafts (\\Seen) {3+}\r\none ~{4+}\r\ntw\x00o\r\n")
    reply = c.readline()
    while reply.startswith(b"*"):
        reply = c.readline()
    assert re.match(rb"m1 OK \[APPENDUID \d+ 2:3\]", reply), reply
    c.logout()


def test_expunge_close_unselect(box):
    c = box
    c.store("1,3", "+FLAGS", "(\\Deleted)")
    typ, data = c.expunge()
    assert data == [b"1", b"2"], "the second one renumbered after the first went"
    assert c.fetch("1:*", "(UID)")[1] == [b"1 (UID 2)"]
    c.append("INBOX", None, None, b"Subject: a\r\n\r\na\r\n")
    c.append("INBOX", None, None, b"Subject: b\r\n\r\nb\r\n")
    c.noop()
    c.store("1:*", "+FLAGS", "(\\Deleted)")
    typ, data = c.uid("EXPUNGE", "4")
    assert typ == "OK" and untagged(c, "EXPUNGE") == [b"2"]
    assert c.unselect()[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error):
        c.fetch("1", "(UID)")
    c.select("INBOX")
    assert untagged(c, "EXISTS") == [b"2"], "UNSELECT left the deleted ones"
    assert c.close()[0] == "OK"
    typ, data = c.select("INBOX")
    assert data == [b"0"], "CLOSE expunged them"


def test_binary(box):
    """RFC 3516: parts with their transfer encoding undone."""
    c = box
    typ, data = c.fetch("2", "(BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2]<1.3>)")
    assert typ == "OK", data
    # The line break before the boundary belongs to the boundary.
    assert data[0][0].endswith(b"BINARY[1] {38}")
    assert data[0][1] == "Grüße aus Köln, see the attachment.".encode()
    assert b"BINARY.SIZE[2] 23" in data[1][0]
    assert data[1][0].endswith(b"BINARY[2]<1> {3}") and data[1][1] == b"PDF"
    typ, data = c.fetch("2", "(FLAGS)")
    assert b"\\Seen" not in data[0], "BINARY.PEEK leaves \\Seen alone"
    # A message with NUL goes in as literal8 and comes back as one.
    c.send(b"b1 APPEND INBOX ~{14+}\r\nSubject: \x00\r\n\r\n\r\n")
    reply = c.readline()
    while reply.startswith(b"*"):  # EXISTS and RECENT for the new message
        reply = c.readline()
    assert reply.startswith(b"b1 OK [APPENDUID"), reply
    c.send(b"b2 FETCH 4 (BINARY.PEEK[])\r\n")
    line = c.readline()
    assert line.endswith(b"BINARY[] ~{14}\r\n"), line
    assert c.read(14) == b"Subject: \x00\r\n\r\n"
    assert c.readline() == b")\r\n"
    assert c.readline().startswith(b"b2 OK")
    typ, data = c.fetch("4", "(BODY.PEEK[])")
    assert data[0][1] == b"Subject: \x80\r\n\r\n", "NUL goes out as 0x80 outside BINARY"
    # In a plain literal NUL is refused, in words a client's parser cannot
    # take for a literal (no "{"), and the session goes on.
    c.send(b"b3 APPEND INBOX {14+}\r\nSubject: \x00\r\n\r\n\r\n")
    reply = c.readline()
    assert reply.startswith(b"b3 NO ") and b"{" not in reply, reply
    assert c.noop()[0] == "OK"


def test_a_binary_part_comes_back_byte_for_byte(box):
    """Issue 18, defect 3, as the reference Dovecot answers: a part sent as
    Content-Transfer-Encoding: binary with bare LFs and a NUL comes back
    unchanged from BINARY[] and BINARY[1] (literal8), and BODY[] serves that
    part in base64 (no NUL can travel there, and its LFs stay LFs once
    decoded) with RFC822.SIZE counting what BODY[] sends."""
    c = box
    msg = (b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           b"a\nb\x00c\nd\r\n--b--\r\n")
    c.send(b"x1 APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    reply = c.readline()
    while reply.startswith(b"*"):
        reply = c.readline()
    assert reply.startswith(b"x1 OK [APPENDUID"), reply
    uid = reply.split(b"]")[0].split()[-1]

    def fetch(items):
        c.send(b"x2 UID FETCH " + uid + b" " + items + b"\r\n")
        out = b""
        while True:
            line = c.readline()
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if m:
                out += c.read(int(m.group(1)))
            elif line.startswith(b"x2 "):
                return out

    got = fetch(b"(BINARY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"BINARY[] ~{%d}\r\n" % len(msg) + msg in got, got
    assert b"BINARY[1] ~{7}\r\na\nb\x00c\nd" in got and b"BINARY.SIZE[1] 7" in got, got
    got = fetch(b"(BODY.PEEK[] BODY.PEEK[1] RFC822.SIZE)")
    body = re.search(rb"BODY\[\] \{(\d+)\}\r\n", got)
    served = got[body.end():body.end() + int(body.group(1))]
    assert b"Content-Transfer-Encoding: base64\r\n\r\nYQpiAGMKZA==\r\n--b--" in served, served
    assert b"\x00" not in served and b"\x80" not in served
    assert b"BODY[1] {12}\r\nYQpiAGMKZA==" in got, got
    assert b"RFC822.SIZE %d" % len(served) in got, got


def test_fetch_of_a_message_another_session_expunged_says_so(box, satchel):
    other = satchel.imap(ALICE)
    other.select("INBOX")
    other.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    assert other.expunge()[0] == "OK"
    # `box` has not been told (FETCH may not send EXPUNGE): its message 1
    # is gone from the store.
    typ, data = box.fetch("1", "(BODY.PEEK[])")
    assert typ == "NO", data
    assert b"[EXPUNGEISSUED]" in data[0] and b"no longer exist" in data[0], data
    assert box.noop()[0] == "OK"


def test_append_into_the_selected_mailbox_takes_recent_for_what_it_had_not_seen(satchel):
    # RFC 3501 2.3.2: the session with INBOX selected gets \Recent for its
    # own APPEND and for mail that arrived unclaimed before it, once.
    c = satchel.imap(ALICE)
    c.select("INBOX")
    untagged(c, "RECENT")
    # Delivered while c is not looking (no command from c in between).
    satchel.put(ALICE, message("Arrived meanwhile"))
    typ, _ = c.append("INBOX", None, None, message("My own"))
    assert typ == "OK"
    c.noop()
    assert untagged(c, "EXISTS")[-1:] == [b"2"]
    assert untagged(c, "RECENT")[-1:] == [b"2"]
    assert c.fetch("1:2", "(FLAGS)")[1] == [b"1 (FLAGS (\\Recent))", b"2 (FLAGS (\\Recent))"]
    # Nobody else gets them.
    d = satchel.imap(ALICE)
    d.select("INBOX")
    assert untagged(d, "RECENT") == [b"0"]
    d.logout()
    # What arrives after the APPEND is claimed when c next looks (the CLI
    # is another process: its change reaches c within the watch interval).
    satchel.put(ALICE, message("Later"))
    for _ in range(50):
        c.noop()
        if untagged(c, "EXISTS"):
            break
        time.sleep(0.1)
    assert untagged(c, "RECENT")[-1:] == [b"3"]
    c.logout()


def test_binary_undoes_quoted_printable_as_rfc_2045_says(satchel):
    """RFC 2045 6.7: whitespace a transport added at line ends is dropped,
    and `=` followed by such whitespace is still a soft line break."""
    body = (b"Caf=C3=A9 menu   \r\n"
            b"soup of the day,=  \r\n"
            b" bread\t\r\n"
            b"last line=\r\n")
    raw = (b"From: a@remote.test\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body)
    satchel.put(ALICE, raw)
    c = satchel.imap(ALICE)
    c.select("INBOX")
    want = "Café menu\r\nsoup of the day, bread\r\nlast line".encode()
    typ, data = c.fetch("1", "(BINARY.SIZE[1] BINARY.PEEK[1])")
    assert typ == "OK", data
    assert f"BINARY.SIZE[1] {len(want)}".encode() in data[0][0], data
    assert data[0][1] == want, data


def lines_until(c, tag):
    """The raw lines of one command's answer, up to its tagged line."""
    out = []
    while True:
        line = c.readline()
        out.append(line)
        if line.startswith(tag + b" "):
            return out


def test_a_new_keyword_is_announced_in_flags_before_a_fetch_shows_it(box, satchel):
    """RFC 9051 7.3.5: FLAGS (and PERMANENTFLAGS) list every keyword a
    FETCH can show; a keyword another session or this one makes up is
    announced before the first FETCH that carries it."""
    other = satchel.imap(ALICE)
    other.select("INBOX")
    assert other.store("1", "+FLAGS", "($Important)")[0] == "OK"
    box.send(b"k1 NOOP\r\n")
    got = lines_until(box, b"k1")
    flags = [i for i, l in enumerate(got) if l.startswith(b"* FLAGS (") and b"$Important" in l]
    permanent = [i for i, l in enumerate(got) if b"[PERMANENTFLAGS (" in l and b"$Important" in l]
    fetch = [i for i, l in enumerate(got) if b" FETCH " in l and b"$Important" in l]
    assert flags and permanent and fetch and flags[0] < fetch[0] and permanent[0] < fetch[0], got
    # Its own STORE, even .SILENT: announced in that STORE's answer.
    box.send(b"k2 STORE 2 +FLAGS.SILENT (Project-X)\r\n")
    got = lines_until(box, b"k2")
    assert any(l.startswith(b"* FLAGS (") and b"Project-X" in l for l in got), got
    assert got[-1].startswith(b"k2 OK"), got
    # Announced once: the next command repeats nothing.
    box.send(b"k3 FETCH 2 (FLAGS)\r\n")
    got = lines_until(box, b"k3")
    assert not any(l.startswith(b"* FLAGS") for l in got) and b"Project-X" in got[0], got
    # A fresh SELECT lists both from the start.
    typ, _ = other.select("INBOX")
    assert any(b"$Important" in f and b"Project-X" in f for f in other.untagged_responses["FLAGS"])
