// Shared by several test files, each of which uses part of it.
#![allow(dead_code)]

//! A throwaway PostgreSQL for the tests: one server per test process, in
//! a temporary folder, on a loopback port, started with Debian's `initdb`
//! and `postgres` (under `/usr/lib/postgresql/*/bin`) as the `postgres`
//! user when the tests run as root (PostgreSQL refuses root). It stops
//! when the test process ends: a watcher shell polls for the process.
//! Each caller gets a database of its own.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Server {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<&'static str>,
    /// The shell that stops the server after this process: never waited
    /// for, it outlives us by design.
    watcher: Option<std::process::Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The URL of a new, empty database on the test server.
pub fn fresh_database() -> String {
    let server = SERVER.get_or_init(start);
    let name = format!("t{}", DATABASES.fetch_add(1, Ordering::SeqCst));
    server.psql("postgres", &format!("CREATE DATABASE {name}"));
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

/// One value from a query on the database of `url`.
pub fn query(url: &str, sql: &str) -> String {
    let server = SERVER.get_or_init(start);
    let db = url.rsplit('/').next().unwrap_or("postgres");
    server.psql(db, sql)
}

impl Server {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-tAc", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn start() -> Server {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql; scripts/test.sh does)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .max()
        .expect("an initdb under /usr/lib/postgresql/*/bin");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false);
    let user = root.then_some("postgres");
    let dir = std::env::temp_dir().join(format!("satchel-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(user) = user {
        assert!(
            Command::new("chown")
                .arg(user)
                .arg(&dir)
                .status()
                .unwrap()
                .success()
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Server {
        port,
        dir: dir.clone(),
        bin,
        user,
        watcher: None,
    };
    let data = dir.join("data");
    let init = server
        .command("initdb")
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // fsync off: a test server's durability is not under test, its speed is
    // the suite's. The watcher stops the server once this process is gone.
    let postgres = server.bin.join("postgres");
    let script = format!(
        "{} -D {} -p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=200 -c shared_buffers=32MB > {}/log 2>&1 & pid=$!; \
         while [ -d /proc/{parent} ] && kill -0 $pid 2>/dev/null; do sleep 1; done; \
         kill -INT $pid 2>/dev/null; wait $pid; rm -rf {}",
        postgres.display(),
        data.display(),
        dir.display(),
        dir.display(),
        dir.display(),
        parent = std::process::id(),
    );
    let mut watcher = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "sh", "-c", &script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        }
    };
    server.watcher = Some(watcher.spawn().expect("the PostgreSQL watcher starts"));
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && server
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(server.dir.join("log")).unwrap_or_default();
    panic!("PostgreSQL did not start on port {port}: {log}");
}
