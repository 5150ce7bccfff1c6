"""TLS to PostgreSQL (issue 20), as libpq users ask for it in the URL: a
server that takes only TLS connections, whose certificate a private CA
signed for 127.0.0.1 alone. `verify-full` with the CA connects
every connection of a node (its pool, its feed, its liveness lock)
encrypted; without the CA, or under a name the certificate lacks, the
node refuses to start and says why; `prefer`, the default, encrypts
without a check, as libpq does; `disable` is refused by this server."""
import os
import subprocess
import tempfile

import pytest

import pg
from conftest import Satchel

ALICE = "alice@example.test"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_server():
    with tempfile.TemporaryDirectory() as certs:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                "-out", "ca.pem", "-days", "2", "-subj", "/CN=Satchel test CA", cwd=certs)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
                "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=certs)
        with open(os.path.join(certs, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
                cwd=certs)
        server = pg.Server(tls=certs)
        try:
            yield server, os.path.join(certs, "ca.pem")
        finally:
            subprocess.run(["pkill", "-INT", "-f", f"postgres -D {server.dir}/data"])


NAMES = iter(range(1000))


def url(server, host="127.0.0.1", **params):
    """A new database's URL with these parameters, and its name."""
    name = f"tls{os.getpid()}_{next(NAMES)}"
    server.psql("postgres", f"CREATE DATABASE {name}")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"postgres://postgres@{host}:{server.port}/{name}" + (f"?{query}" if query else ""), name


def node(tmp, database):
    return Satchel(tmp, database=database[0])


def test_verify_full_with_the_ca_encrypts_every_connection(tls_server):
    server, ca = tls_server
    database = url(server, sslmode="verify-full", sslrootcert=ca)
    with tempfile.TemporaryDirectory() as tmp:
        s = node(tmp, database)
        s.add_user(ALICE)
        s.start()
        try:
            s.deliver(ALICE, "Subject: over TLS\r\n\r\nbody\r\n")
            c = s.imap(ALICE)
            typ, data = c.select("INBOX")
            assert data == [b"1"], data
            c.logout()
            rows = server.psql(database[1], "SELECT a.application_name, s.ssl FROM pg_stat_activity a "
                                     "JOIN pg_stat_ssl s USING (pid) "
                                     "WHERE a.application_name LIKE 'satchel%'").splitlines()
            names = {r.split("|")[0] for r in rows}
            assert {"satchel", "satchel feed", "satchel liveness"} <= names, rows
            assert all(r.endswith("|t") for r in rows), rows
        finally:
            s.stop()


def test_a_certificate_that_cannot_be_checked_stops_the_node(tls_server):
    server, ca = tls_server
    with tempfile.TemporaryDirectory() as tmp:
        # No CA: Mozilla's roots do not know the private one.
        s = node(tmp, url(server, sslmode="verify-full"))
        out = s.cli("user", "list", check=False)
        assert out.returncode != 0
        assert b"certificate" in out.stderr and b"UnknownIssuer" in out.stderr, out.stderr
    with tempfile.TemporaryDirectory() as tmp:
        # The right CA, a name the certificate does not carry.
        s = node(tmp, url(server, host="localhost", sslmode="verify-full", sslrootcert=ca))
        out = s.cli("user", "list", check=False)
        assert out.returncode != 0
        assert b"certificate" in out.stderr, out.stderr


def test_prefer_encrypts_unchecked_and_disable_is_refused_by_a_tls_only_server(tls_server):
    server, _ = tls_server
    with tempfile.TemporaryDirectory() as tmp:
        s = node(tmp, url(server))
        s.add_user(ALICE)
        assert ALICE in s.cli("user", "list").stdout.decode()
    with tempfile.TemporaryDirectory() as tmp:
        s = node(tmp, url(server, sslmode="disable"))
        out = s.cli("user", "list", check=False)
        assert out.returncode != 0 and b"no encryption" in out.stderr, out.stderr
