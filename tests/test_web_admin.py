"""The admin pages (issue 17), in a real browser (tests/node/web-admin.mjs)
and over HTTP: only an account with the admin role reaches them (403 for
anyone else logged in, on every page and every form); the admin adds an
account the new user then logs in with, removes one only after typing its
address, and retries a message the queue holds for a remote MX that was
down, which then arrives. The same role is set from the command line."""
import smtplib
import socket
import tempfile
import time

import pytest

from conftest import PASSWORD, Satchel
from sink import Sink
from webclient import WebSession, browser_run, steps

ROOT = "root@example.test"
ALICE = "alice@example.test"
GONE = "leaving@example.test"
NEW = "newcomer@example.test"
ADMIN_URLS = ["/admin", "/admin/accounts", f"/admin/accounts/remove?address={ALICE}", "/admin/queue",
              "/admin/server", "/admin/trace", "/admin/domains"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web():
    with tempfile.TemporaryDirectory() as tmp:
        mx_port = free_port()
        s = Satchel(
            tmp,
            'http = ["127.0.0.1:0"]\nsubmission = ["127.0.0.1:0"]\n'
            '[queue]\nretry = ["1h"]\nexpire = "5d"\n',
            doors=8,
        )
        s.env["SATCHEL_MX_PORT"] = str(mx_port)
        s.dns.write_text(
            "MX remote.test 10 mx.remote.test\nA mx.remote.test 127.0.0.1\n"
            # Our own domain: MX and SPF published, DMARC and DKIM not yet.
            "MX example.test 10 mail.example.test\nTXT example.test v=spf1 mx -all\n"
        )
        s.cli("user", "add", ROOT, "--admin", "--password-stdin", stdin=PASSWORD.encode() + b"\n")
        s.add_user(ALICE)
        s.add_user(GONE)
        s.deliver(ALICE, "Subject: kept\r\n\r\nfor the usage column\r\n")
        s.start()
        sink = None
        try:
            # A message for a remote MX that is down: it waits in the queue.
            c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30)
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, ["dave@remote.test"],
                       f"From: {ALICE}\r\nTo: dave@remote.test\r\nSubject: Held\r\n\r\nWaiting.\r\n")
            c.quit()
            qid = wait_for(lambda: queued_with_answer(s), "the first failed try")
            # One delivery through the running server, for the server page.
            c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30)
            c.sendmail("friend@remote.test", [ALICE],
                       f"From: friend@remote.test\r\nTo: {ALICE}\r\nSubject: Hi\r\n"
                       "Message-ID: <hello-1@remote.test>\r\n\r\nHello.\r\n")
            c.quit()
            # The MX comes up; only the admin's retry (the next try is an
            # hour away) sends the message now.
            sink = Sink(port=mx_port)
            want = {
                "newUser": NEW, "newPassword": "fresh-password-1", "removable": GONE,
                "user2": ALICE, "user2Password": PASSWORD, "adminUrls": ADMIN_URLS, "queued": qid,
            }
            run = browser_run(s, "web-admin.mjs", ROOT, want)
            yield {"run": run, "satchel": s, "sink": sink}
        finally:
            s.stop()
            if sink:
                sink.close()


def wait_for(check, what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def queued_with_answer(s):
    for line in s.cli("queue", "list").stdout.decode().splitlines():
        if "dave@remote.test" in line and 'last="-"' not in line:
            return line.split()[0]
    return None


def test_the_admin_adds_an_account_that_then_logs_in(web):
    accounts, new = steps(web, "accounts", "newUserLogsIn")
    assert accounts["linked"], accounts
    before = {a["address"]: a for a in accounts["before"]}
    assert set(before) == {ROOT, ALICE, GONE}, before
    # Two delivered messages and the Sent copy of the held one.
    assert before[ALICE]["usage"].startswith("3 messages, "), before
    # The admin's own login is noted (through the web).
    assert "(http)" in before[ROOT]["login"] and before[GONE]["login"] == "never", before
    assert accounts["status"] == 200 and accounts["path"].startswith("/admin/accounts"), accounts
    assert NEW in accounts["notice"], accounts
    assert NEW in {a["address"] for a in accounts["after"]}, accounts
    assert new["path"].startswith("/mail/") and new["account"] == NEW, new
    assert accounts["quota"] == {"status": 200, "storage": "10M", "messages": "500"}, accounts
    out = web["satchel"].cli("user", "quota", NEW).stdout.decode()
    assert out.strip().endswith(f"quota {10 << 20} bytes, 500 messages"), out


def test_an_account_goes_only_after_its_address_is_typed(web):
    (r,) = steps(web, "remove")
    assert GONE in r["question"], r
    assert r["refused"]["status"] == 400 and "nothing was removed" in r["refused"]["error"], r
    assert r["status"] == 200 and GONE not in r["after"] and ALICE in r["after"], r
    assert web["satchel"].cli("user", "list").stdout.decode().split().count(GONE) == 0


def test_the_queue_page_retries_a_held_message_which_arrives(web):
    (q,) = steps(web, "queue")
    assert q["before"]["state"] == "queued", q
    assert q["before"]["answer"] not in ("", "-"), q
    assert q["status"] == 200 and "tried within a second" in q["notice"], q
    assert q["empty"], q
    got = [m for m in web["sink"].messages if b"Subject: Held" in m[2]]
    assert len(got) == 1 and got[0][1] == ["dave@remote.test"], web["sink"].messages


def test_the_server_page_shows_the_figures(web):
    (f,) = steps(web, "server")
    assert f["status"] == 200 and f["chart"] == 24, f
    doors = dict(row.split("\t") for row in f["doors"])
    assert int(doors["http"]) >= 1, f  # this page's own connection
    delivered = dict(row.split("\t") for row in f["delivered"])
    assert int(delivered["INBOX"]) == 1 and int(delivered["Junk"]) == 0, f
    assert "tokens" in f["model"], f


def test_the_trace_finds_a_message_by_message_id_with_its_verdict_and_mailbox(web):
    (t,) = steps(web, "trace")
    [found] = t["byId"]
    assert found["direction"] == "in" and found["mid"] == "hello-1@remote.test", t
    assert found["from"] == "friend@remote.test" and "smtp" in found["door"], t
    [rcpt] = found["rcpts"]
    assert rcpt["outcome"] == "delivered" and rcpt["mailbox"] == "INBOX", rcpt
    assert rcpt["score"].split()[0].lstrip("-").isdigit(), rcpt
    # The held message: sent by Alice, queued, then what the MX answered.
    [out] = t["byRcpt"]
    assert out["direction"] == "out", t
    outcomes = {r["who"]: r["outcome"] for r in out["rcpts"]}
    assert outcomes["dave@remote.test"] == "queued" and outcomes[ALICE] == "sent-copy", outcomes
    answers = [a.split()[0] for a in out["answers"]]
    assert answers == ["deferred", "delivered"], out["answers"]


def test_the_domains_page_lists_the_records_and_what_dns_has(web):
    (d,) = steps(web, "domains")
    recs = {(r["name"], r["kind"]): r for r in d["records"]}
    assert recs[("example.test.", "MX")]["value"] == "10 mail.example.test."
    assert recs[("example.test.", "MX")]["live"] == "published", recs
    assert recs[("example.test.", "TXT")]["live"] == "published", recs
    assert recs[("_dmarc.example.test.", "TXT")]["live"] == "missing", recs
    # DKIM: the records `satchel dkim show` prints, not in DNS yet.
    shown = web["satchel"].cli("dkim", "show", "example.test").stdout.decode()
    dkim = [r for r in d["records"] if "._domainkey." in r["name"]]
    assert len(dkim) == 2 and all(r["live"] == "missing" for r in dkim), dkim
    for r in dkim:
        assert f"{r['name']} IN TXT {r['value']}" in shown, (r, shown)
    p = web["satchel"].ports
    assert recs[("_imaps._tcp.example.test.", "SRV")]["value"] == f"0 1 {p['imaps']} mail.example.test."
    assert recs[("_submission._tcp.example.test.", "SRV")]["value"] == f"1 1 {p['submission']} mail.example.test."
    # No submissions door here: "not offered" (RFC 6186 3.4).
    assert recs[("_submissions._tcp.example.test.", "SRV")]["value"] == "0 0 0 ."
    assert recs[("autoconfig.example.test.", "CNAME")]["value"] == "mail.example.test."
    # Aliases and the catch-all, as `satchel alias list` sees them.
    assert d["added"] == "@example.test now delivers to its account.", d
    assert any(a.startswith("sales@example.test") for a in d["aliases"]), d
    assert any(a.startswith("everything else at example.test (catch-all)") for a in d["aliases"]), d
    listed = web["satchel"].cli("alias", "list").stdout.decode()
    assert "sales@example.test" in listed and "@example.test" in listed, listed


def test_a_non_admin_gets_403_on_every_admin_page(web):
    (n,) = steps(web, "nonAdmin")
    assert not n["linked"], n
    for url in ADMIN_URLS:
        assert n["seen"][url]["status"] == 403, (url, n["seen"][url])
        assert "for the server's admins" in n["seen"][url]["text"], (url, n["seen"][url])


def test_a_non_admin_cannot_post_to_admin_forms_either(web):
    s = web["satchel"]
    alice = WebSession(s.ports["http"], ALICE)
    for path, fields in [
        ("/admin/accounts", {"op": "add", "address": "sneaky@example.test", "password": "long-enough-1"}),
        ("/admin/accounts", {"op": "admin", "address": ALICE, "on": "1"}),
        ("/admin/accounts/remove", {"address": ROOT, "confirm": ROOT}),
        ("/admin/queue", {"op": "remove", "id": "x"}),
    ]:
        status, _, _ = alice.post(path, fields)
        assert status == 403, (path, status)
    users = s.cli("user", "list").stdout.decode().split()
    assert "sneaky@example.test" not in users and ROOT in users


def test_the_role_from_the_command_line():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.start()
        try:
            w = WebSession(s.ports["http"], ALICE)
            assert w.get("/admin/accounts")[0] == 403
            out = s.cli("user", "admin", ALICE).stdout.decode()
            assert out.strip() == f"{ALICE} is an admin", out
            # The role is read on every request: the same session gets in.
            assert w.get("/admin/accounts")[0] == 200
            s.cli("user", "admin", ALICE, "--off")
            assert w.get("/admin/accounts")[0] == 403
            bad = s.cli("user", "admin", "nobody@example.test", check=False)
            assert bad.returncode != 0 and b"nobody@example.test" in bad.stderr
        finally:
            s.stop()
