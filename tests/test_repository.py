"""The repository stands alone: nothing in it reads a folder beside the clone.

A new user clones the repository and runs `scripts/test.sh` with nothing
next to it; these tests fail the suite if a tracked file points outside the
clone again, and run the project's own test-mail generator and reference
Dovecot starter from a bare export of the tree (no checkout around it)."""
import hashlib
import pathlib
import re
import subprocess
import tarfile
import io

from conftest import ROOT

# Spelled in pieces so this file does not match its own search.
OUTSIDE = [".." + "/shared", "SATCHEL_" + "SHARED", "/work/" + "shared"]


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def test_no_tracked_file_points_outside_the_clone():
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary fixtures hold no paths
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(o in line for o in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == [], "tracked files reach outside the repository:\n" + "\n".join(offenders)


def export_tree(dest):
    """The tracked tree as `git archive` gives it: what a clean clone holds."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest)
    # Uncommitted edits of the generator count too while a change is in progress.
    for rel in ["tests/data/gen_mbox.py", "scripts/reference-dovecot/start.sh",
                "scripts/reference-dovecot/stop.sh"]:
        src = ROOT / rel
        if src.exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(src.read_bytes())


def test_generator_runs_alone_and_is_deterministic(tmp_path):
    clone = tmp_path / "clone"
    clone.mkdir()
    export_tree(clone)
    digests = []
    for run in range(2):
        out = tmp_path / f"run{run}.mbox"
        subprocess.run(["python3", "tests/data/gen_mbox.py", str(out), "24"],
                       cwd=clone, check=True, timeout=60)
        data = out.read_bytes()
        digests.append(hashlib.sha256(data).hexdigest())
    assert digests[0] == digests[1], "two runs of the generator wrote different mail"
    messages = re.findall(rb"^From ", data, flags=re.M)
    assert len(messages) == 24
    # Every kind it promises shows up in any 12 in a row.
    for kind in [b"multipart/alternative", b"multipart/related", b"message/rfc822",
                 b"text/calendar", b"application/pdf"]:
        assert kind in data, kind


def test_reference_dovecot_starter_is_in_the_repository():
    start = ROOT / "scripts" / "reference-dovecot" / "start.sh"
    stop = ROOT / "scripts" / "reference-dovecot" / "stop.sh"
    for script in (start, stop):
        assert script.exists(), script
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True)
        assert check.returncode == 0, check.stderr.decode()
    text = start.read_text()
    for knob in ["PASS_SCHEME", "AUTH_CACHE", "MAIL_FSYNC", "MAX_CONNECTIONS"]:
        assert knob in text, f"start.sh no longer takes {knob}"


def test_wire_crates_do_no_io():
    """The wire crates depend on nothing that does I/O: no sqlx, SQLite or
    tokio under imap-proto, mime, sieve or spam (design.md, the crate graph)."""
    for crate in ["imap-proto", "mime", "sieve", "spam"]:
        out = subprocess.run(
            ["cargo", "tree", "--offline", "--locked", "-p", crate, "-e", "normal", "--prefix", "none"],
            cwd=ROOT, capture_output=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr.decode()
        names = {line.split()[0] for line in out.stdout.decode().splitlines() if line.strip()}
        assert names, crate
        for banned in ["sqlx", "libsqlite3-sys", "tokio", "store"]:
            assert banned not in names, f"{crate} pulls in {banned}"
