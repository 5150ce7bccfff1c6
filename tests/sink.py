"""A small SMTP server that plays a remote MX for tests of sending: it
keeps every message it accepts, and answers RCPT and DATA as a test tells
it to (a script of replies, used up in order, then 250). With `tls` (a
server ssl.SSLContext) it offers STARTTLS; with `auth` (user, password) it
offers AUTH PLAIN and records each login."""
import base64
import socket
import socketserver
import threading


class Sink:
    def __init__(self, host="127.0.0.1", port=0, tls=None, auth=None, eight_bit=True):
        self.tls = tls
        self.eight_bit = eight_bit
        self.auth = auth
        self.logins = []          # (user, password, over TLS)
        self.messages = []        # (mail_from, [rcpts], data bytes)
        self.rcpt_replies = {}    # address -> list of replies, used in order
        self.data_replies = []    # replies to the end of DATA, used in order
        self.sessions = 0
        self.open = 0             # sessions open now, and the most at once
        self.max_open = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with sink.lock:
                    sink.sessions += 1
                    sink.open += 1
                    sink.max_open = max(sink.max_open, sink.open)
                try:
                    sink._session(self.request, self.rfile, self.wfile)
                finally:
                    with sink.lock:
                        sink.open -= 1

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _next(self, replies, default="250 2.0.0 ok"):
        with self.lock:
            return replies.pop(0) if replies else default

    def _session(self, sock, rfile, wfile):
        secure = False

        def say(line):
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        say("220 sink.remote.test ESMTP sink")
        mail_from, rcpts = None, []
        while True:
            line = rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                extra = ""
                if self.tls and not secure:
                    extra += "250-STARTTLS\r\n"
                if self.auth:
                    extra += "250-AUTH PLAIN\r\n"
                if self.eight_bit:
                    extra += "250-8BITMIME\r\n250-SMTPUTF8\r\n"
                say("250-sink.remote.test\r\n250-PIPELINING\r\n" + extra + "250 SIZE 10000000")
            elif verb == "STARTTLS" and self.tls and not secure:
                say("220 2.0.0 go ahead")
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except OSError:
                    return  # the client refused our certificate
                rfile, wfile = sock.makefile("rb"), sock.makefile("wb")
                secure = True
            elif verb == "AUTH" and self.auth:
                parts = cmd.split()
                _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                with self.lock:
                    self.logins.append((user, password, secure))
                say("235 2.7.0 ok" if (user, password) == tuple(self.auth) else "535 5.7.8 no")
            elif verb == "HELO":
                say("250 sink.remote.test")
            elif verb == "MAIL":
                mail_from, rcpts = cmd.split(":", 1)[1].split(">")[0].strip(" <"), []
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = cmd.split(":", 1)[1].split(">")[0].strip(" <")
                with self.lock:
                    script = self.rcpt_replies.setdefault(addr.lower(), [])
                reply = self._next(script, "250 2.1.5 ok")
                if reply.startswith("2"):
                    rcpts.append(addr)
                say(reply)
            elif verb == "DATA":
                say("354 go ahead")
                data = b""
                while True:
                    l = rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b"..") else l
                reply = self._next(self.data_replies)
                if reply.startswith("2"):
                    with self.lock:
                        self.messages.append((mail_from, list(rcpts), data))
                say(reply)
            elif verb == "RSET":
                mail_from, rcpts = None, []
                say("250 ok")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("502 5.5.1 not here")

    def received(self, rcpt=None):
        with self.lock:
            return [m for m in self.messages if rcpt is None or rcpt in m[1]]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
