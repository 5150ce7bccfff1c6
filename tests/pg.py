"""A throwaway PostgreSQL for the suite's PostgreSQL run
(SATCHEL_TEST_BACKEND=postgres): one server per pytest process, in a
temporary folder on a loopback port, from Debian's initdb and postgres
(under /usr/lib/postgresql/*/bin), as the `postgres` user when the suite
runs as root (PostgreSQL refuses root). A watcher shell stops it once the
pytest process is gone, however that ends. Every Satchel of a test gets a
database of its own."""
import glob
import itertools
import os
import socket
import subprocess
import tempfile
import time

_server = None
_names = itertools.count()


class Server:
    def __init__(self, tls=None):
        """With `tls` (a folder holding server.crt and server.key), the
        server speaks TLS with that pair and refuses connections without."""
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; "
                               "scripts/test.sh does it)")
        self.bin = os.path.dirname(bins[-1])
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dir = tempfile.mkdtemp(prefix="satchel-pytest-pg-")
        if self.user:
            subprocess.run(["chown", self.user, self.dir], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        data = os.path.join(self.dir, "data")
        self.run("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D", data)
        options = ""
        if tls:
            for name in ("server.crt", "server.key"):
                dest = os.path.join(self.dir, name)
                with open(os.path.join(tls, name), "rb") as src, open(dest, "wb") as out:
                    out.write(src.read())
                os.chmod(dest, 0o600)
                if self.user:
                    subprocess.run(["chown", self.user, dest], check=True)
            options = (f"-c ssl=on -c ssl_cert_file={self.dir}/server.crt "
                       f"-c ssl_key_file={self.dir}/server.key ")
            hba = os.path.join(data, "pg_hba.conf")
            with open(hba, "w") as f:
                f.write("local all all trust\n"
                        "hostssl all all 127.0.0.1/32 trust\n"
                        "hostnossl all all 127.0.0.1/32 reject\n")
        # fsync off: the test server's durability is not under test.
        script = (
            f"{self.bin}/postgres -D {data} -p {self.port} -k {self.dir} "
            f"-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 "
            f"-c shared_buffers=64MB {options}> {self.dir}/log 2>&1 & pid=$!; "
            f"while [ -d /proc/{os.getpid()} ] && kill -0 $pid 2>/dev/null; do sleep 1; done; "
            f"kill -INT $pid 2>/dev/null; wait $pid; rm -rf {self.dir}"
        )
        self.watcher = subprocess.Popen(self.wrap(["sh", "-c", script]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            ready = subprocess.run(self.wrap([f"{self.bin}/pg_isready", "-h", "127.0.0.1",
                                              "-p", str(self.port)]), capture_output=True)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {open(self.dir + '/log').read()}")

    def wrap(self, argv):
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def run(self, program, *args):
        subprocess.run(self.wrap([f"{self.bin}/{program}", *args]), check=True,
                       capture_output=True)

    def psql(self, database, sql):
        # Through the socket folder: a TLS-only server takes it too.
        out = subprocess.run(self.wrap([f"{self.bin}/psql", "-h", self.dir, "-p", str(self.port),
                                        "-U", "postgres", "-d", database, "-qtAc", sql]),
                             check=True, capture_output=True)
        return out.stdout.decode().strip()


def server():
    global _server
    if _server is None:
        _server = Server()
    return _server


def fresh_database():
    """The URL of a new, empty database."""
    s = server()
    name = f"t{os.getpid()}_{next(_names)}"
    s.psql("postgres", f"CREATE DATABASE {name}")
    return f"postgres://postgres@127.0.0.1:{s.port}/{name}"
