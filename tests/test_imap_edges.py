"""IMAP corner cases found in review: each was a bug once."""
import imaplib

from conftest import PASSWORD, message
from test_imap_sync import Raw, login_select

ALICE = "alice@example.test"


def test_flag_news_after_expunges_name_the_right_message(satchel):
    for i in range(4):
        satchel.deliver(ALICE, message(f"m{i}"))
    a, b = login_select(satchel), login_select(satchel)
    b.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    untagged, _ = a.cmd("NOOP")
    assert b"* 1 EXPUNGE\r\n" in untagged, untagged
    # a selected first, so the messages are \\Recent in a.
    assert b"* 2 FETCH (UID 3 FLAGS (\\Seen \\Recent))\r\n" in untagged, untagged


def test_expunge_spares_a_message_another_session_undeleted(satchel):
    satchel.deliver(ALICE, message("keep me"))
    a, b = login_select(satchel), login_select(satchel)
    a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("NOOP")
    b.cmd("STORE 1 -FLAGS.SILENT (\\Deleted)")
    untagged, ok = a.cmd("EXPUNGE")
    assert not any(b"EXPUNGE" in l for l in untagged), untagged
    c = satchel.imap(ALICE)
    assert c.select("INBOX")[1] == [b"1"]


def test_no_big_literals_before_login(satchel):
    r = Raw(satchel)
    r.send("a APPEND INBOX {1000000}")
    assert r.readline(5).startswith(b"a BAD [TOOBIG]")
    r.send("b NOOP")
    assert r.readline(5) == b"b OK NOOP completed.\r\n"


def test_repeated_ranges_name_each_message_once(satchel):
    for i in range(3):
        satchel.deliver(ALICE, message(f"m{i}"))
    r = login_select(satchel)
    sets = ",".join(["1:*"] * 5000)
    untagged, ok = r.cmd(f"UID FETCH {sets} (UID)")
    assert untagged == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"]
    untagged, ok = r.cmd("SEARCH " + " ".join(["1:*"] * 5000))
    assert untagged == [b"* SEARCH 1 2 3\r\n"]


def test_an_overlong_line_gets_a_tagged_answer(satchel):
    r = Raw(satchel)
    r.send("t1 LOGIN " + "x" * 70000)
    assert r.readline(5) == b"t1 BAD [TOOBIG] Command line longer than 65536 bytes.\r\n"


def test_silent_store_still_reports_another_sessions_change(satchel):
    satchel.deliver(ALICE, message("x"))
    a, b = login_select(satchel), login_select(satchel)
    b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    untagged, _ = a.cmd("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert any(b"FLAGS (\\Seen \\Flagged" in l for l in untagged), untagged


def test_list_selection_options(satchel):
    c = satchel.imap(ALICE)
    c.create("Projects/Satchel")
    c.unsubscribe("Projects")
    c.subscribe("Projects/Satchel")
    typ, _ = c._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    lines = c.untagged_responses.pop("LIST")
    assert b'(\\HasChildren) "/" "Projects" ("CHILDINFO" ("SUBSCRIBED"))' in lines, lines
    for bad in ["(BOGUS)", "(RECURSIVEMATCH)"]:
        try:
            typ, data = c._simple_command("LIST", bad, '""', "*")
        except imaplib.IMAP4.error as e:
            typ = "BAD"
        assert typ == "BAD", bad


def test_imap4rev2_select_names_the_mailbox(satchel):
    r = Raw(satchel)
    r.cmd(f"LOGIN {ALICE} {PASSWORD}")
    r.cmd("ENABLE IMAP4rev2")
    untagged, ok = r.cmd("SELECT INBOX")
    assert b'* LIST () "/" INBOX\r\n' in untagged, untagged
    assert not any(b"RECENT" in l for l in untagged)


def test_condstore_commands_are_taken_now_it_is_offered(satchel):
    # These were BAD while CONDSTORE was not offered (RFC 7162 3.1).
    satchel.deliver(ALICE, message("m"))
    r = login_select(satchel)
    untagged, ok = r.cmd("SELECT INBOX (CONDSTORE)")
    assert b" OK " in ok and any(b"[HIGHESTMODSEQ " in u for u in untagged), (untagged, ok)
    untagged, ok = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    assert b" OK " in ok and all(b"MODSEQ (" in u for u in untagged), (untagged, ok)
    untagged, ok = r.cmd("STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert b" OK [MODIFIED 1]" in ok, (untagged, ok)


def test_searchres_save_with_min_saves_only_the_min(satchel):
    for i in range(3):
        satchel.deliver(ALICE, message(f"m{i}"))
    r = login_select(satchel)
    r.cmd("SEARCH RETURN (SAVE MIN) ALL")
    untagged, _ = r.cmd("FETCH $ (UID)")
    assert untagged == [b"* 1 FETCH (UID 1)\r\n"], untagged
