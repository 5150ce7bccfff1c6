"""Remote images in the webmail, over HTTP: left out of a message's HTML
(and counted on its page) until the user asks, then let through by both
the cleaner and the frame's policy for that message only."""
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
        s.put(ALICE, (
            f"From: News <news@remote.test>\r\nTo: {ALICE}\r\nSubject: Pictures\r\n"
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
