"""Offline reading in the webmail, in a real browser
(tests/node/web-offline.mjs): the service worker keeps the list's recent
messages without marking them read; with the network cut, a kept message
opens and one never kept says so; a logout clears what was kept."""
import json
import subprocess
import tempfile

import pytest

from conftest import PASSWORD, ROOT, Satchel

ALICE = "alice@example.test"
NODE_DIR = ROOT / "tests" / "node"
SHOTS = ROOT / "tests" / "artifacts" / "web"
SUBJECTS = ["Newest", "Middle", "Oldest"]


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        for n, subject in enumerate(reversed(SUBJECTS)):
            s.put(ALICE, (
                f"From: Carol <carol@remote.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
                f"Date: Tue, 02 Jan 2024 1{n}:00:00 +0000\r\n\r\nOffline text {subject}.\r\n"
            ).encode())
        s.start()
        try:
            base = f"http://127.0.0.1:{s.ports['http']}"
            out = subprocess.run(
                ["node", str(NODE_DIR / "web-offline.mjs"), base, ALICE, PASSWORD, str(SHOTS), "{}"],
                capture_output=True, timeout=120, cwd=NODE_DIR,
            )
            stdout = out.stdout.decode().strip()
            assert stdout, f"web-offline.mjs printed nothing (exit {out.returncode}): {out.stderr.decode()}"
            run = json.loads(stdout.splitlines()[-1])
            run["_stderr"] = out.stderr.decode()
            yield {"run": run, "satchel": s}
        finally:
            s.stop()


def steps(web, *names):
    run = web["run"]
    for name in names:
        if name in run["errors"] or name not in run:
            raise AssertionError(
                f"browser step {name!r} failed: {run['errors'].get(name)}\n{run['_stderr'][-2000:]}\n"
                f"--- serve.log tail ---\n{web['satchel'].log()[-3000:]}"
            )
    return [run[n] for n in names]


def test_recent_messages_are_kept_without_being_read(web):
    (kept,) = steps(web, "kept")
    assert len(kept["wanted"]) == 3 and set(kept["wanted"]) <= set(kept["have"]), kept
    assert kept["unreadAfter"] == 3, kept


def test_a_kept_message_opens_with_the_network_cut(web):
    (off,) = steps(web, "offline")
    assert off["fromServiceWorker"] is True, off
    assert off["subject"] == "Middle" and "Offline text Middle." in off["body"], off
    assert off["missing"]["status"] == 503 and "offline" in off["missing"]["text"], off


def test_a_logout_clears_what_was_kept(web):
    (out,) = steps(web, "logout")
    assert out["path"] == "/login" and out["kept"] == [], out
