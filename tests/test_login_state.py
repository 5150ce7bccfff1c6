"""What a restart must not forget about logins (the store keeps both, on
either backend): a web session stays logged in, and a guesser's count of
failed passwords goes on where it was."""
import tempfile

from conftest import DOORS, Satchel, wrong_login
from webclient import WebSession

ALICE = "alice@example.test"


def test_a_restart_keeps_web_sessions_and_the_guessers_count():
    with tempfile.TemporaryDirectory() as tmp:
        s = Satchel(tmp, 'http = ["127.0.0.1:0"]\n', doors=DOORS + 1)
        s.add_user(ALICE)
        s.start()
        try:
            web = WebSession(s.ports["http"], ALICE)
            wrong_login(s, ALICE)
            wrong_login(s, ALICE)
        finally:
            s.stop()
        # Neither the cookie's token nor anything it could be guessed from
        # is kept: the store has its SHA-256 only.
        token = web.cookie.split("=", 1)[1]
        keys = [k for (k,) in s.sql("SELECT key FROM web_sessions")]
        assert len(keys) == 1 and token not in keys[0], keys
        s.start()
        try:
            web.port = s.ports["http"]
            status, _, page = web.get(web.inbox)
            assert status == 200 and web.csrf in page, status
            # The third failure from this address, though the first since
            # the restart: held back three seconds.
            held = wrong_login(s, ALICE)
            assert held >= 2.5, f"held back {held:.1f} s"
            # Logging out still ends it for good.
            status, _, _ = web.request("POST", "/logout", f"csrf={web.csrf}")
            assert status in (200, 303), status
            status, headers, _ = web.get(web.inbox)
            assert (status, headers.get("location")) == (303, "/login"), status
            assert s.sql("SELECT count(*) FROM web_sessions") == [(0,)]
        finally:
            s.stop()
