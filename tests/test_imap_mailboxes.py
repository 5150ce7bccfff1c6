"""IMAP: mailbox commands (RFC 9051 6.3) with LIST-EXTENDED, SPECIAL-USE,
LIST-STATUS, CHILDREN, and mailbox names in modified UTF-7 and UTF-8."""
import imaplib
import re

import pytest

# imaplib refuses commands it does not know; XLIST is Gmail's old LIST.
imaplib.Commands.setdefault("XLIST", ("AUTH", "SELECTED"))


def answer(c, *args):
    """(status, data) of a command; imaplib raises on BAD, this returns it."""
    try:
        return c._simple_command(*args)
    except imaplib.IMAP4.error as e:
        return "BAD", [str(e).encode()]


def listing(c, *args):
    typ, data = c._simple_command(*args)
    assert typ == "OK", data
    name = args[0]
    return [d.decode() for d in c.untagged_responses.pop(name, []) if d is not None]


def names(lines):
    return [re.sub(r'^\(.*?\) "/" ', "", l).strip('"') for l in lines]


def test_list_forms(satchel):
    c = satchel.imap("alice@example.test")
    c.create("Work/Projects")
    every = listing(c, "LIST", '""', '"*"')
    assert every[0] == '(\\HasNoChildren) "/" INBOX'
    assert names(every) == ["INBOX", "Drafts", "Junk", "Possible Junk", "Sent", "Trash", "Work", "Work/Projects"]
    assert '(\\HasNoChildren \\Junk) "/" "Junk"' in every
    assert '(\\HasChildren) "/" "Work"' in every
    top = names(listing(c, "LIST", '""', "%"))
    assert "Work" in top and "Work/Projects" not in top
    assert names(listing(c, "LIST", '""', '"Work/%"')) == ["Work/Projects"]
    sub = listing(c, "LIST", "(SUBSCRIBED)", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert names(sub) == ["INBOX", "Drafts", "Junk", "Possible Junk", "Sent", "Trash"]
    assert all("\\Subscribed" in l for l in sub)
    special = listing(c, "LIST", "(SPECIAL-USE)", '""', '"*"')
    assert names(special) == ["Drafts", "Junk", "Sent", "Trash"]
    typ, _ = c._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))")
    assert typ == "OK"
    statuses = [s.decode() for s in c.untagged_responses.pop("STATUS", [])]
    c.untagged_responses.pop("LIST", None)
    assert 'INBOX (MESSAGES 0 UNSEEN 0)' in statuses
    assert '"Possible Junk" (MESSAGES 0 UNSEEN 0)' in statuses
    assert len(statuses) == 8
    assert listing(c, "LIST", '""', '""') == ['(\\Noselect) "/" ""']
    assert names(listing(c, "LIST", '""', "(INBOX Work)")) == ["INBOX", "Work"]
    assert names(listing(c, "LSUB", '""', '"*"')) == ["INBOX", "Drafts", "Junk", "Possible Junk", "Sent", "Trash"]
    xlist = listing(c, "XLIST", '""', '"*"')
    assert '(\\HasNoChildren \\Inbox) "/" INBOX' in xlist
    assert names(listing(c, "LIST", '""', '"inbox"')) == ["INBOX"]
    c.logout()


def test_create_delete_rename_subscribe(satchel):
    c = satchel.imap("alice@example.test")
    assert c.create("Archive/2024")[0] == "OK"
    typ, data = c.create("Archive/2024")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    assert c.create("Trailing/")[0] == "OK"
    assert "Trailing" in names(listing(c, "LIST", '""', "*"))
    assert c._simple_command("CREATE", "Receipts", "(USE (\\Archive))")[0] == "OK"
    assert '(\\HasNoChildren \\Archive) "/" "Receipts"' in listing(c, "LIST", '""', "Receipts")
    typ, data = c._simple_command("CREATE", "Odd", "(USE (\\Nonsense))")
    assert typ == "NO" and b"[USEATTR]" in data[0]
    assert c.rename("Archive", "Old/Archive")[0] == "OK"
    assert "Old/Archive/2024" in names(listing(c, "LIST", '""', "*"))
    typ, data = c.rename("Nope", "X")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    assert c.delete("Old/Archive/2024")[0] == "OK"
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    assert c.subscribe("Old")[0] == "OK"
    assert "Old" in names(listing(c, "LSUB", '""', "*"))
    assert c.unsubscribe("Old")[0] == "OK"
    assert "Old" not in names(listing(c, "LSUB", '""', "*"))
    # A subscription outlives its mailbox (RFC 9051 6.3.7).
    c.subscribe("Trailing")
    c.delete("Trailing")
    assert "Trailing" in names(listing(c, "LSUB", '""', "*"))
    c.logout()


def test_status(satchel):
    satchel.put("alice@example.test", b"Subject: one\r\n\r\nx\r\n")
    satchel.put("alice@example.test", b"Subject: two\r\n\r\nyy\r\n")
    c = satchel.imap("alice@example.test")
    typ, data = c.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE APPENDLIMIT)")
    assert typ == "OK"
    m = re.match(rb"INBOX \(MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY (\d+) UNSEEN 2 DELETED 0 SIZE (\d+) "
                 rb"APPENDLIMIT 52428800\)", data[0])
    assert m, data
    assert int(m.group(2)) == len(b"Subject: one\r\n\r\nx\r\n") + len(b"Subject: two\r\n\r\nyy\r\n")
    typ, data = c.status("Nope", "(MESSAGES)")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    c.logout()


def test_international_names(satchel):
    c = satchel.imap("alice@example.test")
    # Modified UTF-7 for IMAP4rev1 clients...
    assert c._simple_command("CREATE", '"Entw&APw-rfe"')[0] == "OK"
    assert '"Entw&APw-rfe"' in " ".join(listing(c, "LIST", '""', "*"))
    # A name that is not valid modified UTF-7 is a bad argument to a good
    # command: NO (as Dovecot), and the session goes on; a LIST pattern
    # like it matches nothing.
    for command in ("CREATE", "SELECT", "DELETE"):
        typ, data = answer(c, command, '"Bad&-name&AGE-"')
        assert typ == "NO" and b"modified UTF-7" in data[0], (command, data)
    c.untagged_responses.pop("LIST", None)
    typ, data = answer(c, "LIST", '""', '"Bad&-name&AGE-*"')
    assert typ == "OK" and not c.untagged_responses.pop("LIST", []), data
    c.logout()
    # ...UTF-8 once IMAP4rev2 is enabled: the same mailbox.
    c = satchel.imap("alice@example.test")
    assert c._simple_command("ENABLE", "IMAP4rev2")[0] == "OK"
    assert c.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
    every = listing(c, "LIST", '""', "*")
    assert '(\\HasNoChildren) "/" "Entwürfe"' in every
    c.logout()


@pytest.mark.parametrize("bad", ['"a/../b"', '".."', '"a//b"', '"/lead"', '"x\x01y"', '"tab\there"'])
def test_hostile_names_are_refused(satchel, bad):
    c = satchel.imap("alice@example.test")
    typ, data = answer(c, "CREATE", bad)
    assert typ in ("NO", "BAD"), (bad, typ, data)
    assert names(listing(c, "LIST", '""', "*")) == ["INBOX", "Drafts", "Junk", "Possible Junk", "Sent", "Trash"]
    c.logout()


def test_namespace(satchel):
    c = satchel.imap("alice@example.test")
    typ, data = c.namespace()
    assert typ == "OK" and data == [b'(("" "/")) NIL NIL']
    c.logout()


def test_default_mailboxes_stay(satchel):
    """Junk, Possible Junk, Sent, Drafts and Trash are where filing puts
    mail (by name and role): deleting or renaming one away is refused like
    deleting INBOX, so blocked senders' mail never falls back to INBOX and
    Junk keeps its \\Junk."""
    c = satchel.imap("alice@example.test")
    for name in ("Junk", '"Possible Junk"', "Sent", "Drafts", "Trash"):
        typ, data = c.delete(name)
        assert typ == "NO" and b"[CANNOT]" in data[0], (name, data)
        typ, data = c.rename(name, "Elsewhere")
        assert typ == "NO" and b"[CANNOT]" in data[0], (name, data)
    assert '(\\HasNoChildren \\Junk) "/" "Junk"' in listing(c, "LIST", '""', "Junk")
    # Other mailboxes are not affected.
    assert c.create("Projects")[0] == "OK"
    assert c.rename("Projects", "\"Old Projects\"")[0] == "OK"
    assert c.delete('"Old Projects"')[0] == "OK"
    c.logout()
    # A blocked sender's mail still goes to Junk.
    satchel.cli("spam", "block", "alice@example.test", "@spam.test")
    out = satchel.cli("deliver", "--from", "pest@spam.test", "--to", "alice@example.test",
                      stdin=b"From: pest@spam.test\r\nSubject: x\r\n\r\nbuy\r\n")
    assert out.stdout.decode().startswith("alice@example.test Junk "), out.stdout


def test_lsub_percent_lists_the_hidden_parent_as_noselect(satchel):
    """RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not: LSUB "" % returns
    foo with \\Noselect (whether or not foo exists), LSUB "" * returns
    foo/bar and not foo."""
    c = satchel.imap("alice@example.test")
    for name in ("Clients", "Clients/ACME", "Lists"):
        assert c.create(name)[0] == "OK"
    assert c.subscribe("Clients/ACME")[0] == "OK"
    assert c.subscribe("Ghost/Child")[0] == "OK"  # no such mailboxes at all
    top = listing(c, "LSUB", '""', "%")
    assert '(\\Noselect) "/" "Clients"' in top, top
    assert '(\\Noselect) "/" "Ghost"' in top, top
    assert not any("Lists" in l for l in top), top
    every = names(listing(c, "LSUB", '""', "*"))
    assert "Clients/ACME" in every and "Clients" not in every, every
    c.logout()


def test_list_extended_refuses_what_it_does_not_know(satchel):
    """RFC 5258: unknown selection or return options, and RECURSIVEMATCH
    alone, are BAD, also with the empty pattern that asks for the
    delimiter (which used to answer before the checks ran)."""
    c = satchel.imap("alice@example.test")
    for args in (("(BOGUS)", '""', '""'), ("(RECURSIVEMATCH)", '""', '""'),
                 ("(BOGUS)", '""', "*"), ("(RECURSIVEMATCH)", '""', "*"),
                 ('""', "*", "RETURN", "(BOGUS)"), ('""', '""', "RETURN", "(X-NOPE)")):
        typ, data = answer(c, "LIST", *args)
        assert typ == "BAD", (args, typ, data)
    # What is known still works, the delimiter query included.
    assert listing(c, "LIST", '""', '""') == ['(\\Noselect) "/" ""']
    assert "INBOX" in names(listing(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "*", "RETURN", "(CHILDREN)"))
    c.logout()


def test_childinfo_only_for_a_subscribed_child_no_pattern_lists(satchel):
    """RFC 5258 RECURSIVEMATCH, as the reference Dovecot answers it: an
    unsubscribed parent is listed with CHILDINFO when its subscribed child
    is hidden by the patterns, and not when a pattern lists the child."""
    c = satchel.imap("alice@example.test")
    for name in ("Foo", "Foo/Bar", "Baz", "Baz/Qux"):
        assert c.create(name)[0] == "OK"
    for name in ("Foo/Bar", "Baz/Qux"):
        assert c.subscribe(name)[0] == "OK"
    top = listing(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    assert any(l.endswith('"/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))') for l in top), top
    every = listing(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "*")
    assert not any("CHILDINFO" in l for l in every), every
    assert {"Foo/Bar", "Baz/Qux"} <= set(names(every)), every
    mixed = listing(c, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '("%" "Foo/Bar")')
    assert not any(l.endswith('"Foo" ("CHILDINFO" ("SUBSCRIBED"))') for l in mixed), mixed
    assert any(l.endswith('"/" "Baz" ("CHILDINFO" ("SUBSCRIBED"))') for l in mixed), mixed
    assert "Foo/Bar" in names(mixed), mixed
    c.logout()

