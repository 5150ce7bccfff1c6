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

    def post(self, path, fields, csrf=True):
        fields = dict(fields)
        if csrf:
            fields.setdefault("csrf", self.csrf)
        return self.request("POST", path, urllib.parse.urlencode(fields))
