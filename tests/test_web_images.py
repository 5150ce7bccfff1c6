"""Remote images in the webmail, over HTTP: left out of a message's HTML
(and counted on its page) until the user asks, then let through by both
the cleaner and the frame's policy for that message only, or for every
message of a sender the user always wants them from."""
import tempfile

import pytest

from conftest import Satchel
from webclient import WebSession

ALICE = "alice@example.test"
HTML = (
    '<p>Newsletter</p><img src="http://images.remote.test/a.png">'
    '<img src="https://images.remote.test/b.png"><img src="cid:logo">'
)


@pytest.fixture
def web():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=7)
        s.add_user(ALICE)
        for sender, subject in [("news@remote.test", "Pictures"), ("news@remote.test", "More pictures"),
                                ("ads@other.test", "Other pictures")]:
            s.put(ALICE, (
                f"From: News <{sender}>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
                f"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{HTML}\r\n"
            ).encode())
        s.start()
        try:
            yield WebSession(s.ports["http"], ALICE)
        finally:
            s.stop()


def test_remote_images_wait_until_asked_for(web):
    message = f"{web.inbox}/1"
    status, _, page = web.get(message)
    assert status == 200
    assert "2 remote images were not loaded" in page and 'id="show-images"' in page, page
    assert f'src="{message}/html"' in page
    status, headers, frame = web.get(f"{message}/html")
    assert "images.remote.test" not in frame and "Newsletter" in frame
    assert "img-src" not in headers["content-security-policy"]
    # Asked for: this message's frame has them, and its policy allows them.
    status, _, page = web.get(f"{message}?images=1")
    assert f'src="{message}/html?images=1"' in page and 'id="show-images"' not in page
    status, headers, frame = web.get(f"{message}/html?images=1")
    assert 'src="http://images.remote.test/a.png"' in frame
    assert 'src="https://images.remote.test/b.png"' in frame
    assert "cid:" not in frame
    assert "img-src http: https:" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]


def shows_images(web, uid):
    status, _, page = web.get(f"{web.inbox}/{uid}")
    assert status == 200
    return f'src="{web.inbox}/{uid}/html?images=1"' in page, page


def test_images_always_shown_for_a_sender_until_taken_off(web):
    assert shows_images(web, 1)[0] is False
    _, page = shows_images(web, 1)
    assert "Always show images from news@remote.test" in page
    status, headers, _ = web.post("/senders", {
        "list": "images", "op": "add", "pattern": "news@remote.test", "back": f"{web.inbox}/1"})
    assert status == 303 and headers["location"] == f"{web.inbox}/1"
    # This message and the sender's other one; not another sender's.
    shown, page = shows_images(web, 1)
    assert shown and "Images from news@remote.test are always shown" in page, page
    assert "Stop showing images from news@remote.test" in page
    assert shows_images(web, 2)[0] is True
    assert shows_images(web, 3)[0] is False

    # The settings page lists it, and takes it off.
    _, _, settings = web.get("/settings")
    assert '<span class="pattern">news@remote.test</span>' in settings
    status, headers, _ = web.post("/senders", {
        "list": "images", "op": "remove", "pattern": "news@remote.test", "back": "/settings?done=senders"})
    assert status == 303
    assert shows_images(web, 2)[0] is False


def test_a_whole_domain_and_bad_entries(web):
    status, _, _ = web.post("/senders", {"list": "images", "op": "add", "pattern": "@Other.TEST"})
    assert status == 303
    assert shows_images(web, 3)[0] is True
    assert shows_images(web, 1)[0] is False
    status, _, body = web.post("/senders", {"list": "images", "op": "add", "pattern": "other.test"})
    assert status == 400 and "cannot go on a list" in body, body
    # Without the form's token nothing changes.
    status, _, _ = web.post("/senders", {"list": "images", "op": "add", "pattern": "news@remote.test"}, csrf=False)
    assert status == 403
    assert shows_images(web, 1)[0] is False
