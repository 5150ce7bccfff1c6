"""CONTEXT=SEARCH, CONTEXT=SORT and PARTIAL (RFC 5267, issue 18), over a
raw socket: a SEARCH or SORT with RETURN (UPDATE) is kept up to date with
ADDTO and REMOVEFROM as other sessions and this one add, flag and expunge
messages, until CANCELUPDATE or the mailbox is left; a search's changes at
position 0 (its result has no order), a sort's at their places in it.
PARTIAL answers the results at some positions. For SEARCH, the lines and
their order are those the reference Dovecot 2.3 answers (it has no
CONTEXT=SORT)."""
from test_imap_qresync import session
from test_imap_small_extensions import append, server  # noqa: F401 (a fixture)


def filled(server, n=5):
    r = session(server, enable=False)
    for i in range(n):
        append(r, f"From: x{i}@example.org\r\nSubject: s{i % 2}\r\n\r\nbody {i}\r\n")
    return r


def esearch(untagged):
    return [l.decode().strip() for l in untagged if l.startswith(b"* ESEARCH")]


def test_partial_answers_positions_of_the_result(server):
    r = filled(server)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" CONTEXT=SEARCH" in untagged[0], untagged
    r.cmd("SELECT INBOX")
    untagged, ok = r.cmd("SEARCH RETURN (PARTIAL 1:2) ALL")
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") PARTIAL (1:2 1:2)'], untagged
    untagged, _ = r.cmd("UID SEARCH RETURN (PARTIAL 2:4 COUNT) SUBJECT s0")
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") UID PARTIAL (2:4 3,5) COUNT 3']
    untagged, _ = r.cmd("SEARCH RETURN (PARTIAL 1:2 COUNT) SUBJECT zzz")
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") PARTIAL (1:2 NIL) COUNT 0']
    # In SORT, the positions are those of the sorted result: REVERSE
    # SUBJECT puts 2 and 4 (s1) first.
    untagged, _ = r.cmd("UID SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 ALL")
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") UID PARTIAL (1:2 2,4)']
    _, bad = r.cmd("SEARCH RETURN (PARTIAL -1:-2) ALL")
    assert b" BAD " in bad, bad
    _, bad = r.cmd("SEARCH RETURN (PARTIAL 0:2) ALL")
    assert b" BAD " in bad, bad
    # CONTEXT is a hint: the answer is as without it.
    untagged, _ = r.cmd("SEARCH RETURN (CONTEXT COUNT) ALL")
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") COUNT 5']


def test_update_follows_other_sessions_and_this_one(server):
    b = filled(server)
    a = session(server, enable=False)
    a.cmd("SELECT INBOX")
    untagged, _ = a.cmd("UID SEARCH RETURN (UPDATE ALL) SUBJECT s1")
    live = f"r{a.n}"
    assert esearch(untagged) == [f'* ESEARCH (TAG "{live}") UID ALL 2,4']
    # UPDATE alone answers nothing now, only changes later.
    untagged, _ = a.cmd("SEARCH RETURN (UPDATE) UNSEEN")
    unseen = f"r{a.n}"
    assert esearch(untagged) == [f'* ESEARCH (TAG "{unseen}")']

    append(b, "From: y@example.org\r\nSubject: s1\r\n\r\nnew\r\n")
    untagged, _ = a.cmd("NOOP")
    lines = [l.decode().strip() for l in untagged]
    assert lines.index("* 6 EXISTS") < lines.index(f'* ESEARCH (TAG "{live}") UID ADDTO (0 6)'), lines
    assert f'* ESEARCH (TAG "{unseen}") ADDTO (0 6)' in lines, lines

    # This session's own STORE: \Seen takes messages 1 and 2 out of UNSEEN.
    untagged, _ = a.cmd("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    assert esearch(untagged) == [f'* ESEARCH (TAG "{unseen}") REMOVEFROM (0 1:2)'], untagged
    # Another session's: 2 unseen again.
    b.cmd("SELECT INBOX")
    b.cmd("STORE 2 -FLAGS.SILENT (\\Seen)")
    untagged, _ = a.cmd("NOOP")
    assert esearch(untagged) == [f'* ESEARCH (TAG "{unseen}") ADDTO (0 2)'], untagged

    # An expunge elsewhere: REMOVEFROM before the EXPUNGE, numbered as
    # the client knew the messages.
    b.cmd("STORE 4 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    untagged, _ = a.cmd("NOOP")
    lines = [l.decode().strip() for l in untagged]
    assert lines.index(f'* ESEARCH (TAG "{live}") UID REMOVEFROM (0 4)') < lines.index("* 4 EXPUNGE"), lines
    assert lines.index(f'* ESEARCH (TAG "{unseen}") REMOVEFROM (0 4)') < lines.index("* 4 EXPUNGE"), lines

    # Its own EXPUNGE too.
    a.cmd("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    untagged, _ = a.cmd("EXPUNGE")
    lines = [l.decode().strip() for l in untagged]
    assert lines.index(f'* ESEARCH (TAG "{live}") UID REMOVEFROM (0 6)') < lines.index("* 5 EXPUNGE"), lines

    # And its own MOVE.
    a.cmd("CREATE Archive")
    untagged, _ = a.cmd("UID MOVE 2 Archive")
    lines = [l.decode().strip() for l in untagged]
    assert lines.index(f'* ESEARCH (TAG "{live}") UID REMOVEFROM (0 2)') < lines.index("* 2 EXPUNGE"), lines

    # CANCELUPDATE ends one; an unknown tag is refused.
    _, ok = a.cmd(f'CANCELUPDATE "{live}"')
    assert b" OK " in ok, ok
    _, no = a.cmd('CANCELUPDATE "nothing"')
    assert b" NO " in no, no
    append(session(server, enable=False), "From: y@example.org\r\nSubject: s1\r\n\r\nnewer\r\n")
    untagged, _ = a.cmd("NOOP")
    assert esearch(untagged) == [f'* ESEARCH (TAG "{unseen}") ADDTO (0 4)'], untagged

    # Leaving the mailbox ends them all.
    a.cmd("SELECT INBOX")
    append(session(server, enable=False), "From: y@example.org\r\nSubject: s1\r\n\r\nnewest\r\n")
    untagged, _ = a.cmd("NOOP")
    assert esearch(untagged) == [], untagged


def test_update_keeps_a_sort_in_order(server):
    b = session(server, enable=False)
    for subject in ["b", "d", "a", "c"]:
        append(b, f"Subject: {subject}\r\n\r\nbody\r\n")
    a = session(server, enable=False)
    untagged, _ = a.cmd("CAPABILITY")
    assert b" CONTEXT=SORT" in untagged[0], untagged
    a.cmd("SELECT INBOX")
    untagged, _ = a.cmd("UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL")
    live = f"r{a.n}"
    assert esearch(untagged) == [f'* ESEARCH (TAG "{live}") UID ALL 3,1,4,2'], untagged
    untagged, _ = a.cmd("SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNSEEN")
    unseen = f"r{a.n}"
    # A new message goes where its subject sorts: third of a, b, bb, c, d.
    append(session(server, enable=False), "Subject: bb\r\n\r\nbody\r\n")
    untagged, _ = a.cmd("NOOP")
    lines = esearch(untagged)
    assert f'* ESEARCH (TAG "{live}") UID ADDTO (3 5)' in lines, lines
    # REVERSE SUBJECT: d, c, bb, b, a; numbered by sequence.
    assert f'* ESEARCH (TAG "{unseen}") ADDTO (3 5)' in lines, lines
    # Two expunged at once: from the last position to the first, so each
    # position holds in the list as it shrinks.
    b.cmd("SELECT INBOX")
    b.cmd("UID STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    untagged, _ = a.cmd("NOOP")
    lines = esearch(untagged)
    assert f'* ESEARCH (TAG "{live}") UID REMOVEFROM (5 2) REMOVEFROM (1 3)' in lines, lines
    assert f'* ESEARCH (TAG "{unseen}") REMOVEFROM (5 3) REMOVEFROM (1 2)' in lines, lines
    # Flags take a message out of an UNSEEN sort: c, first of c, bb, b,
    # now message 2.
    untagged, _ = a.cmd("UID STORE 4 +FLAGS.SILENT (\\Seen)")
    assert esearch(untagged) == [f'* ESEARCH (TAG "{unseen}") REMOVEFROM (1 2)'], untagged
    untagged, _ = a.cmd("UID SORT (SUBJECT) UTF-8 ALL")
    assert untagged[0] == b"* SORT 1 5 4\r\n", untagged


def test_updates_are_bounded(server):
    r = filled(server, 2)
    r.cmd("SELECT INBOX")
    for _ in range(10):
        untagged, ok = r.cmd("SEARCH RETURN (UPDATE) ALL")
        assert not any(b"NOUPDATE" in l for l in untagged), untagged
    untagged, ok = r.cmd("SEARCH RETURN (UPDATE COUNT) ALL")
    assert b" OK " in ok, ok
    assert any(l.startswith(f'* NO [NOUPDATE "r{r.n}"]'.encode()) for l in untagged), untagged
    assert esearch(untagged) == [f'* ESEARCH (TAG "r{r.n}") COUNT 2'], untagged
    untagged, _ = r.cmd("UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL")
    assert any(l.startswith(f'* NO [NOUPDATE "r{r.n}"]'.encode()) for l in untagged), untagged
