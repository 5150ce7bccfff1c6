"""The ManageSieve door (RFC 5804) driven by a small client written for
the suite: capabilities, STARTTLS, AUTHENTICATE PLAIN, and the script
commands; an activated script then files mail delivered over SMTP."""
import base64
import re
import socket

from conftest import PASSWORD, insecure_tls, message

ALICE = "alice@example.test"


class ManageSieve:
    """Just enough of a ManageSieve client: commands out, responses in
    (lines and literals up to the final OK/NO/BYE)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.greeting = self.response()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        data = self.file.readline()
        assert data.endswith(b"\r\n"), data
        return data[:-2]

    def response(self):
        """(status line, [lines and literals before it])."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m and not line.startswith((b"OK", b"NO", b"BYE")):
                lines.append(self.file.read(int(m.group(1))))
                # The line the literal sits in ends after it.
                assert self.line() == b"", "text after a literal"
                continue
            if line.startswith((b"OK", b"NO", b"BYE")):
                return line.decode(), lines
            lines.append(line)

    def command(self, text, literal=None):
        if literal is None:
            self.send(text + "\r\n")
        else:
            body = literal.encode() if isinstance(literal, str) else literal
            self.send(f"{text} {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
        return self.response()

    def login(self, user=ALICE, password=PASSWORD):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.command(f'AUTHENTICATE "PLAIN" "{token}"')

    def starttls(self):
        status, _ = self.command("STARTTLS")
        assert status.startswith("OK"), status
        self.sock = insecure_tls().wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        return self.response()

    def close(self):
        self.sock.close()


def caps(lines):
    out = {}
    for line in lines:
        parts = re.findall(rb'"([^"]*)"', line)
        out[parts[0].decode()] = parts[1].decode() if len(parts) > 1 else ""
    return out


GOOD = 'require ["fileinto", "mailbox"];\r\nif header :contains "subject" "[dev]" {\r\n  fileinto :create "Lists/dev";\r\n}\r\n'
BAD = 'require "fileinto";\r\nif header :contains "subject" {\r\n  fileinto "x";\r\n}\r\n'


def test_capabilities_and_login(satchel):
    c = ManageSieve(satchel.ports["managesieve"])
    status, lines = c.greeting
    assert status.startswith("OK"), status
    found = caps(lines)
    assert found["IMPLEMENTATION"] == "Satchel" and found["VERSION"] == "1.0"
    assert found["SASL"] == "PLAIN LOGIN" and "STARTTLS" in found
    assert {"fileinto", "imap4flags", "variables", "mailbox"} <= set(found["SIEVE"].split())
    assert c.command("LISTSCRIPTS")[0].startswith("NO")
    # Before login, strings are small: a big literal is read and refused.
    c.send(b'AUTHENTICATE "PLAIN" {20000+}\r\n' + b"A" * 20000 + b"\r\n")
    status, _ = c.response()
    assert status.startswith("NO") and "at most 8192 bytes" in status, status
    assert c.login(password="wrong")[0].startswith("NO")
    assert c.login()[0].startswith("OK")
    assert c.command("LISTSCRIPTS") == ('OK "Listscripts completed."', [])
    assert c.command('NOOP "t1"')[0] == 'OK (TAG "t1") "Done."'
    assert c.command("FROBNICATE")[0].startswith("NO")
    assert c.command("LOGOUT")[0].startswith("OK")
    c.close()

    # PLAIN with the response after an empty challenge, over TLS.
    c = ManageSieve(satchel.ports["managesieve"])
    status, lines = c.starttls()
    assert status.startswith("OK") and "STARTTLS" not in caps(lines), lines
    c.send('AUTHENTICATE "PLAIN"\r\n')
    assert c.line() == b'""'
    token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert c.command(f'"{token}"')[0].startswith("OK")
    c.close()

    # LOGIN: the name, then the password, each answering a string challenge;
    # "*" cancels.
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    c = ManageSieve(satchel.ports["managesieve"])
    c.send('AUTHENTICATE "LOGIN"\r\n')
    assert c.line() == b'"VXNlcm5hbWU6"'
    c.send(f'"{b64(ALICE)}"\r\n')
    assert c.line() == b'"UGFzc3dvcmQ6"'
    assert c.command(f'"{b64(PASSWORD)}"')[0].startswith("OK")
    c.close()
    c = ManageSieve(satchel.ports["managesieve"])
    c.send('AUTHENTICATE "PLAIN"\r\n')
    assert c.line() == b'""'
    status, _ = c.command('"*"')
    assert status.startswith("NO") and "cancelled" in status, status
    assert c.command('AUTHENTICATE "CRAM-MD5"')[0].startswith("NO")
    c.close()


def test_upload_check_activate_list_and_use(satchel):
    c = ManageSieve(satchel.ports["managesieve"])
    assert c.login()[0].startswith("OK")
    # Errors come with their line.
    status, _ = c.command("CHECKSCRIPT", BAD)
    assert status.startswith("NO") and "line 2, column 4" in status, status
    status, _ = c.command('PUTSCRIPT "broken"', BAD)
    assert status.startswith("NO") and "line 2" in status, status
    assert c.command("LISTSCRIPTS")[1] == []
    assert c.command("CHECKSCRIPT", GOOD)[0].startswith("OK")

    assert c.command('HAVESPACE "main" 1000')[0].startswith("OK")
    status, _ = c.command('HAVESPACE "main" 999999999')
    assert status.startswith("NO (QUOTA/MAXSIZE)"), status
    assert c.command('PUTSCRIPT "main"', GOOD)[0].startswith("OK")
    assert c.command('PUTSCRIPT "other"', "keep;\r\n")[0].startswith("OK")
    assert c.command("LISTSCRIPTS")[1] == [b'"main"', b'"other"']
    assert c.command('SETACTIVE "nope"')[0].startswith("NO (NONEXISTENT)")
    assert c.command('SETACTIVE "main"')[0].startswith("OK")
    assert c.command("LISTSCRIPTS")[1] == [b'"main" ACTIVE', b'"other"']
    status, lines = c.command('GETSCRIPT "main"')
    assert status.startswith("OK") and lines == [GOOD.encode()], lines
    assert c.command('GETSCRIPT "gone"')[0].startswith("NO (NONEXISTENT)")
    assert c.command('RENAMESCRIPT "main" "other"')[0].startswith("NO (ALREADYEXISTS)")
    assert c.command('RENAMESCRIPT "main" "lists"')[0].startswith("OK")
    assert c.command('DELETESCRIPT "lists"')[0].startswith("NO (ACTIVE)")
    assert c.command('DELETESCRIPT "other"')[0].startswith("OK")
    assert c.command("LISTSCRIPTS")[1] == [b'"lists" ACTIVE']
    # A literal larger than any script is read, refused, and the session goes on.
    c.send(b'PUTSCRIPT "huge" {300000+}\r\n' + b"#" * 300000 + b"\r\n")
    status, _ = c.response()
    assert status.startswith("NO") and "at most" in status, status
    assert c.command("LISTSCRIPTS")[0].startswith("OK")
    c.command("LOGOUT")
    c.close()

    # The same store as `satchel filter`, and delivery uses it.
    assert satchel.cli("filter", "get", ALICE).stdout.decode() == GOOD
    smtp = satchel.smtp()
    smtp.sendmail("carol@remote.test", [ALICE], message("[dev] branch cut", "Tonight."))
    smtp.quit()
    imap = satchel.imap(ALICE)
    typ, data = imap.select('"Lists/dev"', readonly=True)
    assert typ == "OK" and data == [b"1"], data
    imap.logout()

    # Deactivated: mail stays where the spam verdict put it.
    c = ManageSieve(satchel.ports["managesieve"])
    c.login()
    assert c.command('SETACTIVE ""')[0].startswith("OK")
    c.close()
    smtp = satchel.smtp()
    smtp.sendmail("carol@remote.test", [ALICE], message("[dev] second", "Again."))
    smtp.quit()
    imap = satchel.imap(ALICE)
    assert imap.select('"Lists/dev"', readonly=True)[1] == [b"1"]
    assert imap.select("INBOX", readonly=True)[1] == [b"1"]
    imap.logout()
