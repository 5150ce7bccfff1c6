"""NOTIFY (RFC 5465, issue 18), over raw sockets: one connection watches
every mailbox and hears of other sessions' changes as they happen, with
no command in progress and no IDLE: the selected mailbox's as EXISTS,
EXPUNGE and FETCH (with the items MessageNew asked for), another's as
STATUS, names and subscriptions as LIST. Shaped on what the reference
Dovecot 2.3 sends for the same steps."""
import re
import select
import socket

from test_imap_qresync import session
from test_imap_small_extensions import append, server  # noqa: F401 (a fixture)

MSG = "From: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


def append_to(r, mailbox, body):
    """APPENDs to `mailbox`, passing over untagged lines."""
    data = body.encode()
    _, ok = r.cmd_parts([f'APPEND "{mailbox}" {{{len(data)}+}}\r\n'.encode() + data])
    assert b" OK " in ok, ok


def heard(r, until, timeout=5):
    """Unsolicited lines until one starts with `until` (no command sent)."""
    r.s.settimeout(timeout)
    lines = []
    try:
        while True:
            l = r.f.readline()
            assert l, "connection closed"
            lines.append(l.decode().strip())
            if lines[-1].startswith(until):
                return lines
    except (socket.timeout, TimeoutError):
        raise AssertionError(f"no {until!r} within {timeout} s; heard {lines}")


def quiet(r, wait=0.5):
    """Nothing unsolicited arrives for a while (select, not a read: a read
    that times out spoils the socket's file for later reads)."""
    readable, _, _ = select.select([r.s], [], [], wait)
    assert not readable, r.s.recv(4096, socket.MSG_PEEK)


def test_notify_tells_of_changes_between_commands(server):
    b = session(server, enable=False)
    b.cmd("CREATE Other")
    b.cmd("CREATE Gone")
    append(b, MSG)
    a = session(server, enable=False)
    untagged, _ = a.cmd("CAPABILITY")
    assert b" NOTIFY" in untagged[0], untagged
    a.cmd("SELECT INBOX")
    untagged, ok = a.cmd(
        "NOTIFY SET STATUS (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
        "(personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))"
    )
    assert b" OK " in ok, ok
    statuses = [l.decode().strip() for l in untagged if l.startswith(b"* STATUS")]
    assert '* STATUS "Other" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)' in statuses, statuses
    # The selected mailbox has its own events: no STATUS for it.
    assert not any(s.startswith('* STATUS "INBOX"') for s in statuses), statuses

    # New mail in the selected mailbox: EXISTS and the asked-for FETCH.
    append(session(server, enable=False), MSG)
    lines = heard(a, "* 2 FETCH")
    assert "* 2 EXISTS" in lines, lines
    assert lines[-1] == "* 2 FETCH (UID 2 FLAGS (\\Recent))", lines

    # Another mailbox: STATUS.
    c = session(server, enable=False)
    c.cmd("SELECT Other")
    append_to(c, "Other", MSG)
    assert heard(a, "* STATUS")[-1] == '* STATUS "Other" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)'
    c.cmd("STORE 1 +FLAGS (\\Seen)")
    assert heard(a, "* STATUS")[-1] == '* STATUS "Other" (MESSAGES 1 UIDNEXT 2 UNSEEN 0)'

    # Names and subscriptions: LIST.
    b.cmd("CREATE New")
    assert heard(a, "* LIST")[-1] == '* LIST () "/" "New"'
    b.cmd("SUBSCRIBE New")
    assert heard(a, "* LIST")[-1] == '* LIST (\\Subscribed) "/" "New"'
    b.cmd("RENAME New Newer")
    assert heard(a, "* LIST")[-1] == '* LIST () "/" "Newer" ("OLDNAME" ("New"))'
    b.cmd("DELETE Gone")
    assert heard(a, "* LIST")[-1] == '* LIST (\\NonExistent) "/" "Gone"'

    # An expunge in the selected mailbox is told at once (SELECTED, not
    # SELECTED-DELAYED), and a flag change too.
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    assert heard(a, "* 1 EXPUNGE")[-1] == "* 1 EXPUNGE"
    b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    assert heard(a, "* 1 FETCH")[-1].startswith("* 1 FETCH (UID 2 FLAGS (\\Flagged")

    # Commands still work between notifications, and NOTIFY NONE stops them.
    untagged, ok = a.cmd("NOOP")
    assert b" OK " in ok, ok
    _, ok = a.cmd("NOTIFY NONE")
    assert b" OK " in ok, ok
    append_to(c, "Other", MSG)
    append_to(c, "INBOX", MSG)
    quiet(a)


def test_selected_delayed_waits_for_a_command_to_tell_expunges(server):
    a = session(server, enable=False)
    append(a, MSG)
    append(a, MSG)
    a.cmd("SELECT INBOX")
    _, ok = a.cmd("NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
    assert b" OK " in ok, ok
    b = session(server, enable=False)
    b.cmd("SELECT INBOX")
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    # A flag change after it comes now; the expunge waits for a command.
    b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")
    lines = heard(a, "* 2 FETCH")
    assert not any("EXPUNGE" in l for l in lines), lines
    untagged, _ = a.cmd("NOOP")
    assert b"* 1 EXPUNGE\r\n" in untagged, untagged


def test_notify_refuses_what_it_cannot_watch(server):
    a = session(server, enable=False)
    _, bad = a.cmd("NOTIFY SET (selected (MessageNew))")
    assert b" BAD " in bad, bad
    _, no = a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))")
    assert no.startswith(f"r{a.n} NO [BADEVENT (AnnotationChange)]".encode()), no
    _, bad = a.cmd("NOTIFY SET (personal (MessageNew (UID) MessageExpunge))")
    assert b" BAD " in bad, bad
    _, bad = a.cmd("NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)")
    assert b" BAD " in bad, bad
    _, bad = a.cmd("NOTIFY LATER")
    assert b" BAD " in bad, bad
    # Watching nothing is fine, and so is a subtree that does not exist yet.
    # With CONDSTORE on, STATUS carries HIGHESTMODSEQ too.
    a.cmd("ENABLE CONDSTORE")
    _, ok = a.cmd('NOTIFY SET (subtree "Lists" (MessageNew MessageExpunge)) (inboxes NONE)')
    assert b" OK " in ok, ok
    b = session(server, enable=False)
    b.cmd("CREATE Lists/rust")
    append(session(server, enable=False), MSG)  # INBOX: watched for nothing
    quiet(a)
    append_to(b, "Lists/rust", MSG)
    status = heard(a, "* STATUS")[-1]
    assert re.fullmatch(r'\* STATUS "Lists/rust" \(MESSAGES 1 UIDNEXT 2 UNSEEN 1 HIGHESTMODSEQ \d+\)',
                        status), status
