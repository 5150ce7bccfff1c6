"""IMAP with synchronising clients: mbsync (isync) both ways over a
1,000-message account, and curl's imap:// URLs."""
import pathlib
import subprocess

import pytest

from conftest import PASSWORD

ALICE = "alice@example.test"
GEN_MBOX = pathlib.Path(__file__).resolve().parent / "data" / "gen_mbox.py"


def gen_mbox(path, n):
    subprocess.run(["python3", str(GEN_MBOX), str(path), str(n)], check=True,
                   capture_output=True)


def mbsync_config(satchel, local):
    conf = satchel.dir / "mbsyncrc"
    conf.write_text(f"""
IMAPAccount satchel
Host 127.0.0.1
Port {satchel.ports['imap']}
User {ALICE}
Pass {PASSWORD}
SSLType STARTTLS
CertificateFile {satchel.data / 'cert.pem'}

IMAPStore remote
Account satchel

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel mail
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
""")
    return conf


def mbsync(conf):
    out = subprocess.run(["mbsync", "-c", str(conf), "-a"], capture_output=True, timeout=600)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    return out


def local_state(local):
    """Every message file under the local Maildir: (folder, flags) by name."""
    state = {}
    for p in sorted(pathlib.Path(local).rglob("*")):
        if p.is_file() and p.parent.name in ("cur", "new"):
            base, _, info = p.name.partition(":2,")
            state[(p.parent.parent.name, base.split(",U=")[0])] = info
    return state


def server_state(satchel):
    c = satchel.imap(ALICE)
    state = {}
    for box in ["INBOX", "Sent", "Junk"]:
        c.select(box, readonly=True)
        typ, data = c.fetch("1:*", "(UID FLAGS)") if int(c.select(box, readonly=True)[1][0]) else ("OK", [])
        state[box] = sorted(d for d in data if d)
    c.logout()
    return state


def test_mbsync_both_ways_and_a_quiet_second_run(satchel):
    mbox = satchel.dir / "big.mbox"
    gen_mbox(mbox, 1000)
    satchel.cli("import", ALICE, "--mailbox", "INBOX", str(mbox))
    local = satchel.dir / "Maildir"
    local.mkdir()
    conf = mbsync_config(satchel, local)

    mbsync(conf)
    inbox_files = [k for k in local_state(local) if k[0] == "INBOX"]
    assert len(inbox_files) == 1000
    assert {"Drafts", "Junk", "Possible Junk", "Sent", "Trash"} <= {p.name for p in local.iterdir()}

    # Changes on both sides: a new local message, a local flag, a remote delete.
    cur = local / "Sent" / "cur"
    (cur / "1700000000.1.host:2,S").write_bytes(b"Subject: written offline\r\n\r\nhello\r\n")
    # Unseen mail arrives in new/; reading and flagging moves it to cur/.
    first = min((local / "INBOX").glob("*/*"), key=lambda p: int(p.name.split(",U=")[1].split(":")[0].split(",")[0]))
    first.rename(local / "INBOX" / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    c = satchel.imap(ALICE)
    c.select("INBOX")
    c.store("2", "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.logout()

    mbsync(conf)
    c = satchel.imap(ALICE)
    assert c.select("Sent")[1] == [b"1"]
    assert c.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")[1][0][1] == b"Subject: written offline\r\n\r\n"
    assert c.select("INBOX")[1] == [b"999"]
    typ, data = c.search(None, "FLAGGED")
    assert data == [b"1"]
    c.logout()
    assert len([k for k in local_state(local) if k[0] == "INBOX"]) == 999

    # A third run finds nothing to do on either side.
    before = (local_state(local), server_state(satchel))
    mbsync(conf)
    assert (local_state(local), server_state(satchel)) == before


def test_curl_imap_urls(satchel):
    satchel.put(ALICE, b"From: bob@remote.test\r\nSubject: via curl\r\n\r\ncurl body\r\n")
    base = f"imap://127.0.0.1:{satchel.ports['imap']}"
    curl = ["curl", "--silent", "--show-error", "--user", f"{ALICE}:{PASSWORD}"]

    listing = subprocess.run(curl + [f"{base}/"], capture_output=True, check=True).stdout.decode()
    assert '* LIST (\\HasNoChildren \\Junk) "/" "Junk"' in listing
    fetched = subprocess.run(curl + [f"{base}/INBOX;UID=1"], capture_output=True, check=True).stdout
    assert fetched == b"From: bob@remote.test\r\nSubject: via curl\r\n\r\ncurl body\r\n"
    section = subprocess.run(curl + [f"{base}/INBOX;UID=1;SECTION=TEXT"], capture_output=True, check=True).stdout
    assert section == b"curl body\r\n"
    found = subprocess.run(curl + [f"{base}/INBOX?SUBJECT%20curl"], capture_output=True, check=True).stdout
    assert found.strip() == b"* SEARCH 1"
    tls = subprocess.run(curl + ["--ssl-reqd", "--insecure", f"{base}/INBOX;UID=1;SECTION=TEXT"],
                         capture_output=True, check=True).stdout
    assert tls == b"curl body\r\n"
