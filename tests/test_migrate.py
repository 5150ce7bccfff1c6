"""`satchel migrate --to postgres://...` (issue 20): an embedded store
with the 100-message gen_mbox account and a generated 10,000-message
account, changed over IMAP (flags, keywords, expunges, a folder, copies),
is copied into PostgreSQL; a node on that database then shows the same
mailboxes, UIDVALIDITYs, UIDs and flags, and an mbsync cache made against
the embedded store syncs against the new node without moving a message.
A second run of the copy adds nothing."""
import tempfile

import pg
from conftest import PASSWORD, Satchel
from test_imap_sync_clients import gen_mbox, local_state, mbsync, mbsync_config

ALICE = "alice@example.test"
BOB = "bob@example.test"


def imap_state(node, user):
    """Every mailbox of `user`: (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ-free
    list of (UID, sorted flags))."""
    c = node.imap(user)
    state = {}
    typ, boxes = c.list()
    for line in boxes:
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        typ, data = c.status(f'"{name}"', "(UIDVALIDITY UIDNEXT MESSAGES)")
        status = data[0].decode()
        typ, count = c.select(f'"{name}"', readonly=True)
        messages = []
        if int(count[0]):
            typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
            for d in data:
                text = d.decode() if isinstance(d, bytes) else d[0].decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                flags = sorted(text.split("FLAGS (")[1].split(")")[0].split())
                messages.append((uid, flags))
        state[name] = (status.split("(", 1)[1], sorted(messages))
    c.logout()
    return state


def test_migrate_keeps_every_uid_and_flag_and_an_mbsync_cache_stays_valid():
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmp2:
        s = Satchel(tmp, embedded=True)
        s.add_user(ALICE)
        s.add_user(BOB)
        gen_mbox(s.dir / "small.mbox", 100)
        s.cli("import", ALICE, "--mailbox", "INBOX", str(s.dir / "small.mbox"))
        gen_mbox(s.dir / "big.mbox", 10000)
        s.cli("import", BOB, "--mailbox", "INBOX", str(s.dir / "big.mbox"), timeout=600)
        s.cli("alias", "add", "al@example.test", ALICE)
        s.start()
        try:
            c = s.imap(ALICE)
            c.select("INBOX")
            c.uid("STORE", "1:10", "+FLAGS", "(\\Seen \\Flagged)")
            c.uid("STORE", "20:25", "+FLAGS", "($Label1 \\Answered)")
            c.create("Work/2024")
            c.uid("COPY", "30:34", "Work/2024")
            c.uid("STORE", "40:42", "+FLAGS", "(\\Deleted)")
            c.expunge()
            c.logout()
            local = s.dir / "Maildir"
            local.mkdir()
            conf = mbsync_config(s, local)
            mbsync(conf)
            synced = local_state(local)
            assert len([k for k in synced if k[0] == "INBOX"]) == 97
            before = {user: imap_state(s, user) for user in (ALICE, BOB)}
        finally:
            s.stop()

        url = pg.fresh_database()
        out = s.cli("migrate", "--to", url, timeout=900)
        said = out.stdout.decode()
        assert "copied 2 accounts and 10102 messages" in said, said
        assert "checked" in said, said
        # Run again (as after an interruption): nothing is added twice.
        again = s.cli("migrate", "--to", url, timeout=900).stdout.decode()
        assert "copied 2 accounts and 10102 messages (0 bodies new)" in again, again

        n = Satchel(tmp2, database=url)
        n.start()
        try:
            after = {user: imap_state(n, user) for user in (ALICE, BOB)}
            assert after == before
            assert "al@example.test" in n.cli("alias", "list").stdout.decode()
            # The same cache, the new node: mbsync finds nothing to move.
            conf.write_text(conf.read_text()
                            .replace(f"Port {s.ports['imap']}", f"Port {n.ports['imap']}")
                            .replace(str(s.data / "cert.pem"), str(n.data / "cert.pem")))
            run = mbsync(conf)
            assert local_state(local) == synced, run.stdout.decode()
            assert imap_state(n, ALICE) == before[ALICE]
            # Mail still arrives, after the copied UIDs.
            n.deliver(ALICE, b"Subject: after the move\r\n\r\nhello\r\n")
            c = n.imap(ALICE)
            c.select("INBOX")
            typ, data = c.uid("SEARCH", "SUBJECT", "\"after the move\"")
            assert int(data[0]) == 101, data
            c.logout()
            c = n.imap(ALICE, PASSWORD)
            c.logout()
        finally:
            n.stop()
