"""DKIM signing of what leaves the server (RFC 6376, RFC 8463): a key pair
per local domain made on first use, both signatures on every message,
verified here by dkimpy against the records `satchel dkim show` prints;
`satchel dkim rotate` and what it publishes."""
import re
import subprocess
import tempfile

import dkim
import pytest

from conftest import PASSWORD
from sink import Sink
from test_submission import ALICE, mail, mailbox_subjects, mx_table, start_sending, submit, wait_for


def records(s, domain="example.test"):
    """The TXT records `satchel dkim show` prints: name -> (value, retired)."""
    out = s.cli("dkim", "show", domain).stdout.decode()
    got, retired = {}, False
    for line in out.splitlines():
        if line.startswith(";"):
            retired = retired or "Retired" in line
            continue
        name, rest = line.split(" IN TXT ", 1)
        got[name.rstrip(".").lower()] = ("".join(re.findall(r'"([^"]*)"', rest)), retired)
    return got


def verify_all(message, published):
    """dkimpy's verdict on each DKIM-Signature of the message, in order,
    with keys looked up in `published` only."""

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        value = published.get(name.rstrip(".").lower())
        return value[0].encode() if value else b""

    n = message.count(b"\r\nDKIM-Signature:") + message.startswith(b"DKIM-Signature:")
    d = dkim.DKIM(message)

    def one(i):
        try:
            return d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            return False  # a body hash mismatch raises rather than answers

    return [one(i) for i in range(n)], [sig_tags(message, i) for i in range(n)]


def sig_tags(message, i):
    fields = re.findall(rb"^DKIM-Signature:(.*?)(?=\r\n\S)", message, re.S | re.M)
    tags = {}
    for part in re.sub(rb"\s+", b"", fields[i]).split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            tags[k.decode()] = v.decode()
    return tags


@pytest.fixture
def sending():
    sink = Sink()
    with tempfile.TemporaryDirectory() as tmp:
        s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}))
        s.sink = sink
        try:
            yield s
        finally:
            s.stop()
            sink.close()


def test_swaks_submission_arrives_signed_with_both_keys_and_verifies(sending):
    s = sending
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{s.ports['submission']}", "--auth", "PLAIN",
         "--auth-user", ALICE, "--auth-password", PASSWORD, "--from", ALICE,
         "--to", "dave@remote.test", "--h-Subject", "signed by swaks", "--body", "Hello, signed.\n"],
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    got = wait_for(lambda: s.sink.received("dave@remote.test"), what="the sink")
    assert len(got) == 1
    data = got[0][2]
    published = records(s)
    assert len(published) == 2 and not any(r for _, r in published.values())
    verdicts, tags = verify_all(data, published)
    assert verdicts == [True, True], (verdicts, data[:2000])
    assert sorted(t["a"] for t in tags) == ["ed25519-sha256", "rsa-sha256"]
    assert all(t["d"] == "example.test" for t in tags)
    # From is signed, and so are fields a forger would add (listed though absent).
    for t in tags:
        signed = t["h"].lower().split(":")
        assert "from" in signed and "subject" in signed and "reply-to" in signed
    # The published keys are the ones described: an Ed25519 one and RSA-2048.
    kinds = sorted(re.search(r"k=(\w+)", v).group(1) for v, _ in published.values())
    assert kinds == ["ed25519", "rsa"]
    rsa = next(v for v, _ in published.values() if "k=rsa" in v)
    assert len(rsa.split("p=")[1]) > 350, "a 2048-bit key"
    # A changed body no longer verifies: the check above could fail.
    tampered = data.replace(b"Hello, signed.", b"Hello, forged.")
    assert verify_all(tampered, published)[0] == [False, False]
    assert mailbox_subjects(s, ALICE, "Sent") == ["signed by swaks"]


def test_rotate_signs_with_new_keys_and_keeps_the_old_published(sending):
    s = sending
    before = records(s)
    c = submit(s)
    c.sendmail(ALICE, ["dave@remote.test"], mail("before rotation"))
    c.quit()
    first = wait_for(lambda: s.sink.received("dave@remote.test"), what="the first")[0][2]

    out = s.cli("dkim", "rotate", "example.test").stdout.decode()
    assert "Retired" in out
    after = records(s)
    new = {n for n, (_, retired) in after.items() if not retired}
    old = {n for n, (_, retired) in after.items() if retired}
    assert old == set(before) and len(new) == 2 and not new & old

    # The server takes up the new keys within its cache time (a minute);
    # a restart makes it at once.
    s.stop()
    s.start()
    c = submit(s)
    c.sendmail(ALICE, ["erin@remote.test"], mail("after rotation", to="erin@remote.test"))
    c.quit()
    second = wait_for(lambda: s.sink.received("erin@remote.test"), what="the second")[0][2]
    verdicts, tags = verify_all(second, after)
    assert verdicts == [True, True]
    assert {f"{t['s']}._domainkey.{t['d']}" for t in tags} == new
    # Mail signed before the rotation still verifies with what is published.
    assert verify_all(first, after)[0] == [True, True]


def test_dkim_show_refuses_a_domain_that_is_not_local(sending):
    out = sending.cli("dkim", "show", "remote.test", check=False)
    assert out.returncode == 1
    assert b"not a local domain" in out.stderr
