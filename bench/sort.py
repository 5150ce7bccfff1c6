#!/usr/bin/env python3
"""SORT, THREAD and a QRESYNC resync on one big mailbox, Satchel against
the reference Dovecot on the same mail in the same run (issue 18).

    cargo build --release -p satchel && python3 bench/sort.py
        # MESSAGES=100000 ROUNDS=3 REPEAT=3

Both get the same MESSAGES small messages (the shape of
tests/test_imap_big_mailbox.py: 97 senders, 5,000 subjects, two thirds of
them replies to the message before). Satchel imports them; Dovecot gets
them as Maildir files and indexes them at its first SELECT. Each command
runs once on each side to warm up (Dovecot fills its cache with the sort
keys then), and then the rounds go A B A B: in each, REPEAT timed runs of
the command on one logged-in connection with INBOX selected, the median
kept. The resync: a client remembers HIGHESTMODSEQ, another changes the
flags of 1% of the messages, and the timed command is SELECT INBOX
(QRESYNC (uidvalidity modseq)), which answers those 1,000 FETCHes.
Prints each command's median per side and Dovecot's time / Satchel's
(above 1: Satchel is faster). Needs root for Dovecot's mail user."""
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("MESSAGES", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
REPEAT = int(os.environ.get("REPEAT", "3"))
SATCHEL = ROOT / "target" / "release" / "satchel"
DOVECOT_IMAP = 10443
COMMANDS = [
    ("SORT by date", "UID SORT (DATE) UTF-8 ALL"),
    ("SORT by subject", "UID SORT (SUBJECT) UTF-8 ALL"),
    ("THREAD REFERENCES", "UID THREAD REFERENCES UTF-8 ALL"),
]


def message(i):
    reply = f"In-Reply-To: <m{i - 1}@example.org>\r\n" if i % 3 else ""
    return (
        f"From: Sender {i % 97} <s{i % 97}@example.org>\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: {'Re: ' if i % 3 else ''}Topic {i % 5000}\r\n"
        f"Date: Mon, {1 + i % 28:02d} Apr 2024 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <m{i}@example.org>\r\n{reply}\r\nBody of message {i}.\r\n"
    ).encode()


class Client:
    def __init__(self, port, user, password):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.f = self.s.makefile("rb", buffering=1 << 20)
        self.f.readline()
        self.n = 0
        self.cmd(f"LOGIN {user} {password}")

    def cmd(self, line):
        self.n += 1
        tag = f"b{self.n}".encode()
        self.s.sendall(tag + b" " + line.encode() + b"\r\n")
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                raise ConnectionError("closed")
            lines.append(l)
            if l.startswith(tag + b" "):
                if b" OK" not in l[:len(tag) + 4]:
                    raise RuntimeError(f"{line}: {l!r}")
                return lines

    def timed(self, line):
        t = time.perf_counter()
        self.cmd(line)
        return time.perf_counter() - t


def start_satchel(work):
    data = work / "satchel"
    conf = work / "satchel.toml"
    conf.write_text('hostname = "mail.example.test"\ndomains = ["example.test"]\n'
                    '[listen]\nimap = ["127.0.0.1:0"]\n')
    run = lambda *a, **k: subprocess.run([str(SATCHEL), "--config", str(conf), "--data", str(data), *a],
                                        check=True, capture_output=True, **k)
    run("user", "add", "alice@example.test", "--password-stdin", input=b"pass\n")
    mbox = work / "big.mbox"
    with open(mbox, "wb") as f:
        for i in range(MESSAGES):
            f.write(b"From sender@example.org Mon Apr  1 07:30:00 2024\n")
            f.write(message(i).replace(b"\r\n", b"\n") + b"\n")
    t = time.perf_counter()
    run("import", "alice@example.test", "--mailbox", "INBOX", str(mbox))
    print(f"satchel: imported {MESSAGES} messages in {time.perf_counter() - t:.1f} s")
    mbox.unlink()
    proc = subprocess.Popen([str(SATCHEL), "--config", str(conf), "--data", str(data), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()
    port = int(proc.stdout.readline().decode().split()[1].rsplit(":", 1)[1])
    return proc, port


def start_dovecot(work):
    ref = work / "dovecot"
    env = dict(os.environ, DOVECOT_REF_DIR=str(ref), USERS="2", IMAP_PORT=str(DOVECOT_IMAP),
               POP3_PORT=str(DOVECOT_IMAP + 1))
    subprocess.run([str(ROOT / "scripts/reference-dovecot/start.sh")], env=env, check=True,
                   capture_output=True)
    cur = ref / "mail" / "user1" / "Maildir" / "cur"
    for d in ("cur", "new", "tmp"):
        (cur.parent / d).mkdir(parents=True, exist_ok=True)
    base = 1711958400
    for i in range(MESSAGES):
        name = cur / f"{base + i}.M{i}P1.bench:2,"
        name.write_bytes(message(i))
        os.utime(name, (base + i, base + i))
    subprocess.run(["chown", "-R", "5000:5000", str(ref / "mail")], check=True)
    return env


def resync_setup(port, user):
    """Remembers (uidvalidity, modseq), then flags 1% of the messages from
    another connection; returns the resync command."""
    c = Client(port, user, "pass")
    c.cmd("ENABLE QRESYNC")
    lines = b"".join(c.cmd("SELECT INBOX"))
    uv = int(re.search(rb"UIDVALIDITY (\d+)", lines).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", lines).group(1))
    every = ",".join(str(u) for u in range(1, MESSAGES + 1, 100))
    c.cmd(f"UID STORE {every} +FLAGS.SILENT (\\Flagged)")
    c.cmd("LOGOUT")
    return f"SELECT INBOX (QRESYNC ({uv} {modseq}))"


def main():
    if not SATCHEL.exists():
        raise SystemExit("build first: cargo build --release -p satchel")
    work = pathlib.Path(tempfile.mkdtemp(prefix="satchel-sort-"))
    work.chmod(0o755)  # Dovecot's own users read its files under it
    proc = None
    env = None
    try:
        env = start_dovecot(work)
        proc, port = start_satchel(work)
        sides = {"satchel": (port, "alice@example.test"), "dovecot": (DOVECOT_IMAP, "user1")}
        clients = {}
        for name, (p, user) in sides.items():
            t = time.perf_counter()
            c = Client(p, user, "pass")
            c.cmd("ENABLE QRESYNC")
            c.cmd("SELECT INBOX")
            print(f"{name}: first SELECT {time.perf_counter() - t:.1f} s")
            clients[name] = c
        commands = list(COMMANDS)
        resync = {name: resync_setup(p, user) for name, (p, user) in sides.items()}
        commands.append(("QRESYNC resync, 1% changed", resync))
        results = {}
        for label, command in commands:
            cmd = lambda side: command[side] if isinstance(command, dict) else command
            for side in sides:
                clients[side].cmd(cmd(side))  # warm-up
            times = {side: [] for side in sides}
            for _ in range(ROUNDS):
                for side in sides:  # A B A B
                    runs = [clients[side].timed(cmd(side)) for _ in range(REPEAT)]
                    times[side].append(statistics.median(runs))
            s, d = statistics.median(times["satchel"]), statistics.median(times["dovecot"])
            results[label] = (s, d)
            print(f"{label:28} satchel {s * 1000:8.1f} ms  dovecot {d * 1000:8.1f} ms  "
                  f"ratio {d / s:5.2f}x", flush=True)
        for c in clients.values():
            c.cmd("LOGOUT")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        if env:
            subprocess.run([str(ROOT / "scripts/reference-dovecot/stop.sh")], env=env,
                           capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
