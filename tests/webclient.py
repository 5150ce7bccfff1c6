"""A small HTTP client for the webmail tests that need no browser: a login
through the form (with its token), then GETs and form POSTs with the
session cookie, redirects not followed."""
import http.client
import re
import urllib.parse

from conftest import PASSWORD


class WebSession:
    def __init__(self, port, user, password=PASSWORD):
        self.port = port
        c = self._conn()
        c.request("GET", "/login")
        r = c.getresponse()
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', r.read().decode()).group(1)
        login_cookie = r.getheader("Set-Cookie").split(";")[0]
        body = urllib.parse.urlencode({"address": user, "password": password, "csrf": token})
        c.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
        r = c.getresponse()
        r.read()
        assert r.status == 303, f"login of {user} answered {r.status}"
        session = [v for k, v in r.getheaders() if k.lower() == "set-cookie" and v.startswith("satchel_session=")]
        self.cookie = session[0].split(";")[0]
        c.close()
        status, headers, _ = self.get("/mail")
        self.inbox = headers["location"]
        _, _, page = self.get(self.inbox)
        self.csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None):
        c = self._conn()
        headers = {"Cookie": self.cookie}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read().decode(errors="replace")
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def get(self, path):
        return self.request("GET", path)

    def post_multipart(self, path, fields, files=(), csrf=True):
        """A multipart/form-data POST as the compose form sends it: `fields`
        a list of (name, value), `files` of (name, filename, bytes, type)."""
        fields = list(fields)
        if csrf:
            fields.insert(0, ("csrf", self.csrf))
        boundary = "satchel-test-boundary-7f3a"
        body = b""
        for k, v in fields:
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, filename, data, ctype in files:
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{filename}"\r\n'
                     f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        c = self._conn()
        c.request("POST", path, body=body, headers={
            "Cookie": self.cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        r = c.getresponse()
        data = r.read().decode(errors="replace")
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def post(self, path, fields, csrf=True):
        fields = dict(fields)
        if csrf:
            fields.setdefault("csrf", self.csrf)
        return self.request("POST", path, urllib.parse.urlencode(fields))


# --- Browser runs ------------------------------------------------------------
# Each browser test file runs one script of tests/node (playwright-core on
# Debian's chromium) once per module and checks the facts it printed.

import json  # noqa: E402
import subprocess  # noqa: E402

from conftest import ROOT  # noqa: E402

NODE_DIR = ROOT / "tests" / "node"
SHOTS = ROOT / "tests" / "artifacts" / "web"


def browser_run(satchel, script, user, want=None, door="http"):
    """Runs tests/node/SCRIPT against the server's http (or https) door as
    `user`; the facts it printed, with its stderr under `_stderr`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = f"{door}://127.0.0.1:{satchel.ports[door]}"
    out = subprocess.run(
        ["node", str(NODE_DIR / script), base, user, PASSWORD, str(SHOTS), json.dumps(want or {})],
        capture_output=True, timeout=120, cwd=NODE_DIR,
    )
    stdout = out.stdout.decode().strip()
    assert stdout, f"{script} printed nothing (exit {out.returncode}): {out.stderr.decode()}"
    run = json.loads(stdout.splitlines()[-1])
    run["_stderr"] = out.stderr.decode()
    return run


def steps(web, *names):
    """The facts of these steps of web["run"], failing with the step's own
    error and the server's log when one did not complete."""
    run = web["run"]
    for name in names:
        if name in run["errors"] or name not in run:
            raise AssertionError(
                f"browser step {name!r} failed: {run['errors'].get(name)}\n{run['_stderr'][-2000:]}\n"
                f"--- serve.log tail ---\n{web['satchel'].log()[-3000:]}"
            )
    return [run[n] for n in names]
