"""The webmail (the `http` door) in a real browser: Debian's chromium driven by
tests/node/web-check.mjs (playwright-core). One browser run per module walks
what a person does (a wrong password, the right one, the list, a plain
message, a hostile HTML message, a phone-width list, another user trying
Alice's URLs, logout) and reports what it saw; each test here checks one part
of it. Screenshots go to tests/artifacts/web/."""
import http.client
import http.server
import json
import re
import struct
import subprocess
import tempfile
import threading
import urllib.parse
from html.parser import HTMLParser

import pytest

from conftest import PASSWORD, ROOT, Satchel

ALICE = "alice@example.test"
BOB = "bob@example.test"
NODE_DIR = ROOT / "tests" / "node"
SHOTS = ROOT / "tests" / "artifacts" / "web"

READ = "Quarterly report"
PLAIN = "Lunch on Friday?"
PLAIN_TEXT = "Shall we meet on Friday at <b>noon</b> & share a table?"
HOSTILE = "Hostile"  # the subject also carries markup; rows are found by this word
BOB_ONLY = "For Bob only"


def mail(subject, body, sender, to=ALICE, content_type="text/plain; charset=utf-8", n=1):
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 02 Jan 2024 1{n}:00:00 +0000\r\nMessage-ID: <web-{n}@remote.test>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}\r\n"
    ).encode()


def hostile_html(remote):
    r = f"http://127.0.0.1:{remote}"
    return "\r\n".join([
        "<!DOCTYPE html>",
        "<html><head>",
        f'<meta http-equiv="refresh" content="0;url={r}/refresh">',
        f'<base href="{r}/">',
        f'<link rel=stylesheet href="{r}/link.css">',
        "<style>",
        f"@import url('{r}/import.css');",
        f"@font-face {{ font-family: Remote; src: url('{r}/font.woff2') format('woff2'); }}",
        # \68 is an 'h' in CSS: a filter that looks for "http" misses it.
        f"body {{ background: url('\\68ttp://127.0.0.1:{remote}/esc.png'); }}",
        "p.greeting { font-family: Remote, serif; }",
        "</style>",
        f"<script>document.title = 'pwned'; fetch('{r}/script');</script>",
        "</head><body>",
        '<p class="greeting">Hello hostile</p>',
        f'<img src="{r}/img.png" onerror="alert(\'img\')">',
        '<img src="relative.png" alt="">',  # goes to the remote if <base> is kept
        '<a href="javascript:alert(1)">js link</a>',
        '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">data link</a>',
        f'<form action="{r}/form"><input type=submit value="Go"></form>',
        '<svg><script>alert(1)</script><a><animate attributeName="href" to="javascript:alert(1)"/>'
        '<set attributeName="href" to="javascript:alert(1)"/><text y="20">svg link</text></a></svg>',
        "</body></html>",
    ])


class Recorder(http.server.BaseHTTPRequestHandler):
    """A remote web server that records every request it gets."""

    def _any(self):
        self.server.hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"x")

    do_GET = do_POST = do_HEAD = do_OPTIONS = _any

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    remote = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    remote.hits = []
    threading.Thread(target=remote.serve_forever, daemon=True).start()
    rport = remote.server_address[1]
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()  # a screenshot this run did not take must not pass
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        s.add_user(BOB)
        s.put(ALICE, mail(READ, "Numbers attached.", "Carol <carol@remote.test>", n=1))
        s.put(ALICE, mail(PLAIN, PLAIN_TEXT + "\r\n\r\n-- \r\nDana", "Dana <dana@remote.test>", n=2))
        s.put(ALICE, mail(
            f'Hostile <img src="http://127.0.0.1:{rport}/subject.png" onerror="alert(\'subject\')"> HTML',
            hostile_html(rport), "Mallory <mallory@remote.test>",
            content_type="text/html; charset=utf-8", n=3))
        s.put(BOB, mail(BOB_ONLY, "Just for Bob.", "Carol <carol@remote.test>", to=BOB, n=4))
        s.start()
        try:
            c = s.imap(ALICE)
            c.select("INBOX")
            typ, data = c.uid("SEARCH", "SUBJECT", '"Quarterly"')
            assert typ == "OK" and data[0], data
            c.uid("STORE", data[0].decode(), "+FLAGS", "(\\Seen)")
            c.logout()
            base = f"http://127.0.0.1:{s.ports['http']}"
            want = {"other": {"user": BOB, "password": PASSWORD}, "read": READ, "plain": PLAIN, "hostile": HOSTILE}
            out = subprocess.run(
                ["node", str(NODE_DIR / "web-check.mjs"), base, ALICE, PASSWORD, str(SHOTS), json.dumps(want)],
                capture_output=True, timeout=120, cwd=NODE_DIR,
            )
            stdout = out.stdout.decode()
            assert stdout.strip(), f"web-check.mjs printed nothing (exit {out.returncode}): {out.stderr.decode()}"
            run = json.loads(stdout.strip().splitlines()[-1])
            run["_stderr"] = out.stderr.decode()
            run["_exit"] = out.returncode
            yield {"run": run, "satchel": s, "base": base, "port": s.ports["http"], "remote": remote}
        finally:
            s.stop()
            remote.shutdown()


def steps(web, *names):
    """The facts of these browser steps, failing the test with the step's own
    error (and the server's log tail) when one did not complete."""
    run = web["run"]
    for name in names:
        if name in run["errors"] or name not in run:
            raise AssertionError(
                f"browser step {name!r} failed: {run['errors'].get(name)}\n"
                f"--- web-check.mjs stderr ---\n{run['_stderr'][-2000:]}\n"
                f"--- serve.log tail ---\n{web['satchel'].log()[-3000:]}"
            )
    return [run[n] for n in names]


def row(facts, text):
    found = [r for r in facts["rows"] if r["subject"] and text in r["subject"]]
    assert len(found) == 1, (text, facts["rows"])
    return found[0]


def http_request(web, method, path, cookie=None, body=None):
    """One request without following redirects: (status, Location path, body)."""
    c = http.client.HTTPConnection("127.0.0.1", web["port"], timeout=30)
    headers = {"Origin": web["base"]}
    if cookie:
        headers["Cookie"] = f"satchel_session={cookie}"
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    location = r.getheader("Location")
    text = r.read().decode(errors="replace")
    c.close()
    return r.status, urllib.parse.urlsplit(location).path if location else None, text


class LogoutCsrf(HTMLParser):
    """The csrf value inside form#logout."""

    def __init__(self):
        super().__init__()
        self.in_form = False
        self.csrf = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.in_form = a.get("id") == "logout"
        elif tag == "input" and self.in_form and a.get("name") == "csrf":
            self.csrf = a.get("value")

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False


INBOX_PATH = re.compile(r"^/mail/[^/]+$")


def test_login_wrong_then_right_password(web):
    page, wrong, login = steps(web, "loginPage", "wrongPassword", "login")
    assert page["status"] == 200 and page["path"] == "/login"
    form = page["form"]
    assert (form["method"] or "").lower() == "post" and form["action"] == "/login", form
    inputs = {i["name"]: i for i in form["inputs"]}
    assert inputs["address"]["type"] in ("text", "email"), inputs
    assert inputs["password"]["type"] == "password", inputs
    assert inputs["csrf"]["type"] == "hidden" and inputs["csrf"]["filled"], inputs
    assert form["submit"]

    assert wrong["method"] == "POST" and wrong["status"] == 401, wrong
    assert wrong["path"] == "/login", wrong
    assert wrong["errorVisible"] and wrong["error"], wrong
    assert wrong["formAgain"], "the refusal shows the login form again"

    # POST /login 303 -> /mail 303 -> /mail/{inbox}.
    assert login["status"] == 200 and INBOX_PATH.match(login["path"]), login
    assert [(h["method"], h["path"], h["status"]) for h in login["chain"]] == [
        ("POST", "/login", 303), ("GET", "/mail", 303), ("GET", login["path"], 200)], login["chain"]


def test_a_wrong_password_is_logged_for_fail2ban_like_every_door(web):
    steps(web, "wrongPassword")
    # The same check and throttle as IMAP's (door::login::check_password),
    # so the same line: the delay itself is not timed here.
    log = web["satchel"].log()
    assert f"login failed: door=http user={ALICE} rip=127.0.0.1" in log, log[-2000:]
    assert f"login: door=http user={ALICE} rip=127.0.0.1" in log


def test_inbox_lists_messages_and_reading_marks_seen(web):
    login, lst, plain, after = steps(web, "login", "list", "plain", "listAfter")
    assert lst["path"] == login["path"]
    boxes = lst["mailboxes"]
    assert boxes and boxes[0]["name"] == "INBOX", boxes
    assert boxes[0]["href"] == login["path"], "the INBOX link is the page we landed on"
    assert boxes[0]["unread"] == "2", boxes[0]
    assert all(INBOX_PATH.match(b["href"]) for b in boxes), boxes

    assert len(lst["rows"]) == 3, lst["rows"]
    read, unread, hostile = row(lst, READ), row(lst, PLAIN), row(lst, HOSTILE)
    for r in (read, unread, hostile):
        assert r["visible"], r
        assert r["href"] and r["href"].startswith(login["path"] + "/"), r
        assert r["date"], r
    assert "Dana" in unread["from"] and "Carol" in read["from"], lst["rows"]
    assert "unread" not in read["classes"], read
    assert "unread" in unread["classes"] and "unread" in hostile["classes"], lst["rows"]

    assert plain["status"] == 200 and plain["path"] == unread["href"], plain
    # The script fetched the page and swapped it in: the document stayed.
    assert plain["stayed"] is True, plain
    assert plain["subject"] == PLAIN
    assert not plain["iframe"]
    assert plain["bodyVisible"] and PLAIN_TEXT in plain["body"], plain["body"]
    assert "Dana" in plain["body"]
    assert plain["bodyElements"] == 0, "the text's <b> is shown as text, not markup"
    assert "dana@remote.test" in (plain["headers"] or ""), plain["headers"]

    # Reloaded after reading: only the hostile one is still unread.
    assert after["status"] == 200
    assert "unread" not in row(after, PLAIN)["classes"], after["rows"]
    assert "unread" in row(after, HOSTILE)["classes"], after["rows"]
    assert "unread" not in row(after, READ)["classes"], after["rows"]
    assert after["mailboxes"][0]["unread"] == "1", after["mailboxes"][0]


def test_hostile_html_is_inert(web):
    lst, h = steps(web, "list", "hostile")
    run = web["run"]
    inside = h["inside"]
    # Every problem at once, so one run tells all that is wrong.
    problems = []

    def check(ok, what):
        if not ok:
            problems.append(what)

    check(h["status"] == 200 and h["path"] == row(lst, HOSTILE)["href"], f"message page: {h['status']} {h['path']}")
    check(web["remote"].hits == [], f"the remote server was reached: {web['remote'].hits}")
    check(run["dialogs"] == [], f"dialogs opened: {run['dialogs']}")
    off = [u for u in run["requests"] if not u.startswith("/")]
    check(off == [], f"the page asked for other origins: {off} (failed requests: {run['failedRequests']})")
    check(h["requests"], "no request for the message page was seen")
    # The subject's markup is text, in the list and on the message page.
    check(lst["injected"] == 0, "the subject made elements in the list")
    check(h["subjectInjected"] == 0 and "<img" in (h["subject"] or ""), f"h1.subject: {h['subject']!r}")
    check(h["sandbox"] is not None, "iframe#html-body has no sandbox attribute")
    check("allow-scripts" not in (h["sandbox"] or "").split(), f"sandbox={h['sandbox']!r}")
    check(h["src"] == h["path"] + "/html", f"iframe src {h['src']!r}")
    check(h["frameUrl"] == h["src"], f"the iframe went to {h['frameUrl']!r}")
    check(h["topTitle"] != "pwned" and inside["title"] != "pwned", "a script set the title")
    check(inside["scripts"] == 0, f"{inside['scripts']} script elements in the iframe")
    check(inside["on"] == [], f"event-handler attributes: {inside['on']}")
    check(inside["badUrls"] == [], f"javascript:/data: URLs: {inside['badUrls']}")
    check(inside["forms"] == 0, f"{inside['forms']} forms")
    check(inside["metaRefresh"] == 0, f"{inside['metaRefresh']} meta refresh")
    check(inside["bases"] == 0, f"{inside['bases']} base elements")
    check("Hello hostile" in inside["text"], f"iframe text: {inside['text'][:200]!r}")
    check(h["textVisible"], "Hello hostile is not visible in the iframe")
    check(h["box"] and h["box"]["width"] > 50 and h["box"]["height"] > 20, f"iframe box {h['box']}")
    assert problems == [], "\n".join(problems)


def test_session_cookie_flags(web):
    (c,) = steps(web, "cookie")
    assert c["httpOnly"] is True, c
    assert c["sameSite"] == "Strict", c
    assert c["path"] == "/", c
    assert not c["inDocumentCookie"], "document.cookie shows the session"


def test_logout_needs_csrf(web):
    (other,) = steps(web, "other")
    bob = other["cookie"]
    assert bob, "Bob's browser has a session cookie"
    status, location, _ = http_request(web, "GET", "/mail", bob)
    assert status == 303 and location == other["own"]["path"], (status, location)

    for body in ("", "csrf=forged"):
        status, location, _ = http_request(web, "POST", "/logout", bob, body=body)
        assert status == 403, f"POST /logout with body {body!r}: {status} {location}"
    status, location, _ = http_request(web, "GET", "/mail", bob)
    assert status == 303 and location == other["own"]["path"], "a refused logout ended the session"

    # The same request with the page's token does log out.
    status, _, page = http_request(web, "GET", other["own"]["path"], bob)
    assert status == 200
    p = LogoutCsrf()
    p.feed(page)
    assert p.csrf, "form#logout carries a csrf value"
    status, location, _ = http_request(web, "POST", "/logout", bob, body=urllib.parse.urlencode({"csrf": p.csrf}))
    assert status == 303 and location == "/login", (status, location)
    status, location, _ = http_request(web, "GET", "/mail", bob)
    assert status == 303 and location == "/login", (status, location)


def test_other_user_cannot_open_alices_mail(web):
    lst, h, other = steps(web, "list", "hostile", "other")
    own = other["own"]
    assert own["status"] == 200 and INBOX_PATH.match(own["path"]), own
    inbox = lst["mailboxes"][0]["href"]
    assert own["path"] != inbox
    assert [r["subject"] for r in own["rows"]] == [BOB_ONLY], own["rows"]
    foreign = other["foreign"]
    assert set(foreign) == {inbox, row(lst, PLAIN)["href"], h["src"]}, foreign
    for path, answer in foreign.items():
        assert answer["status"] == 404 and answer["path"] == path, (path, answer)
        assert PLAIN not in answer["text"] and "Hello hostile" not in answer["text"], answer


def test_logout_ends_the_session(web):
    lst, c, out = steps(web, "list", "cookie", "logout")
    assert out["status"] == 200 and out["path"] == "/login", out
    assert [(h["method"], h["path"], h["status"]) for h in out["chain"]][0] == ("POST", "/logout", 303), out["chain"]
    assert out["mailAgain"]["path"] == "/login", out["mailAgain"]
    assert out["cookieAfter"] != c["value"], "the browser still holds the old session"
    for path in ("/mail", lst["mailboxes"][0]["href"], row(lst, PLAIN)["href"]):
        status, location, _ = http_request(web, "GET", path, c["value"])
        assert status == 303 and location == "/login", (path, status, location)


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_screenshots(web):
    steps(web, "loginPage", "list", "plain", "hostile", "phone")
    for name in ("login", "list", "plain", "hostile"):
        w, h = png_size(SHOTS / f"{name}.png")
        assert w == 1280 and h >= 800, (name, w, h)
    # At phone width nothing overflows sideways (the mailbox bar scrolls
    # within itself), so the full-page capture is exactly the phone's width.
    w, h = png_size(SHOTS / "list-phone.png")
    assert w == 390 and h >= 844, (w, h)
    assert web["run"]["phone"]["scrollWidth"] <= 390, web["run"]["phone"]
    assert web["run"]["phone"]["rows"] == 3
