"""POP3 with the clients people run: fetchmail (with and without `keep`),
getmail6, and curl's pop3:// URLs."""
import os
import pathlib
import subprocess
import sys

from conftest import PASSWORD, message

ALICE = "alice@example.test"


def mda_script(tmp):
    """An MDA for fetchmail: each message into its own file."""
    out = tmp / "fetched"
    out.mkdir(exist_ok=True)
    script = tmp / "mda.py"
    script.write_text(
        "import sys, os, uuid\n"
        f"open(os.path.join({str(out)!r}, uuid.uuid4().hex), 'wb').write(sys.stdin.buffer.read())\n"
    )
    return out, script


def fetchmail(satchel, keep, fetchall=False):
    out, script = mda_script(satchel.dir)
    rc = satchel.dir / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 service {satchel.ports['pop3']} protocol pop3 uidl\n"
        f'  user "{ALICE}" there with password "{PASSWORD}"\n'
        f"  {'keep' if keep else 'nokeep'}{' fetchall' if fetchall else ''}\n"
        "  sslproto '' \n"
        f'  mda "{sys.executable} {script}"\n'
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(satchel.dir), FETCHMAILHOME=str(satchel.dir))
    run = subprocess.run(
        ["fetchmail", "--nodetach", "--nosyslog", "-f", str(rc), "--idfile", str(satchel.dir / "fetchids")],
        capture_output=True, env=env, timeout=120,
    )
    # fetchmail exits 1 when there was no mail: both are fine here.
    assert run.returncode in (0, 1), run.stderr.decode() + run.stdout.decode()
    return sorted(p.read_bytes() for p in out.iterdir())


def inbox_count(satchel):
    c = satchel.imap(ALICE)
    n = int(c.select("INBOX", readonly=True)[1][0])
    c.logout()
    return n


def test_fetchmail_keep_then_nokeep(satchel):
    for n in range(3):
        satchel.deliver(ALICE, message(f"fetch {n}"))
    got = fetchmail(satchel, keep=True)
    assert len(got) == 3 and all(b"Subject: fetch " in m for m in got)
    assert inbox_count(satchel) == 3, "keep leaves the mail on the server"
    assert len(fetchmail(satchel, keep=True)) == 3, "a second run with keep fetches nothing new"

    satchel.deliver(ALICE, message("fetch 3"))
    watcher = satchel.imap(ALICE)
    watcher.select("INBOX")
    got = fetchmail(satchel, keep=False, fetchall=True)
    assert len(got) == 3 + 4, "all four fetched, and deleted"
    assert inbox_count(satchel) == 0, "without keep the mail is gone from INBOX"
    watcher.noop()
    assert len(watcher.untagged_responses.pop("EXPUNGE", [])) == 4, "IMAP saw them expunged"


def test_getmail6(satchel):
    for n in range(2):
        satchel.deliver(ALICE, message(f"getmail {n}"))
    maildir = satchel.dir / "Maildir"
    for sub in ["cur", "new", "tmp"]:
        (maildir / sub).mkdir(parents=True)
    # getmail refuses to deliver as root (CI runs as root): deliver as nobody.
    for d in [satchel.dir, maildir, *(maildir / sub for sub in ["cur", "new", "tmp"])]:
        d.chmod(0o777)
    rc = satchel.dir / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
        f"port = {satchel.ports['pop3']}\nusername = {ALICE}\npassword = {PASSWORD}\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\n"
        + ("user = nobody\n" if os.geteuid() == 0 else "")
        + "[options]\nread_all = false\ndelete = false\nverbose = 0\n"
    )
    gdir = satchel.dir / "getmail"
    gdir.mkdir()
    for run in range(2):
        out = subprocess.run(["getmail", "--rcfile", str(rc), "--getmaildir", str(gdir)],
                             capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr.decode() + out.stdout.decode()
        assert len(list((maildir / "new").iterdir())) == 2, f"run {run}: getmail remembers what it has"
    assert inbox_count(satchel) == 2


def test_curl_pop3(satchel):
    satchel.put(ALICE, b"Subject: curl\r\n\r\n.dotted line\r\n")
    base = f"pop3://127.0.0.1:{satchel.ports['pop3']}"
    curl = ["curl", "--silent", "--show-error", "--user", f"{ALICE}:{PASSWORD}"]
    listing = subprocess.run(curl + [f"{base}/"], capture_output=True, check=True).stdout
    assert listing == b"1 31\r\n"
    body = subprocess.run(curl + [f"{base}/1"], capture_output=True, check=True).stdout
    assert body == b"Subject: curl\r\n\r\n.dotted line\r\n", "curl undoes the dot-stuffing"
    uidl = subprocess.run(curl + ["-X", "UIDL", f"{base}/"], capture_output=True, check=True).stdout
    assert uidl.startswith(b"1 00000001")
    tls = subprocess.run(curl + ["--ssl-reqd", "--insecure", f"{base}/1"], capture_output=True, check=True).stdout
    assert tls == body
