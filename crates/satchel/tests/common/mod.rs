//! Helpers shared by the tests that drive the `satchel` binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A data directory of its own for one test.
pub struct Satchel {
    pub dir: tempfile::TempDir,
}

impl Satchel {
    pub fn new() -> Satchel {
        Satchel {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `satchel --data DIR ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_satchel"));
        c.arg("--data").arg(self.data()).args(args);
        c
    }

    /// Runs with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_with_stdin(self.command(args), stdin)
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "satchel {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs, insists on exit status 1 with one clean line on stderr that
    /// contains `needle`, and returns that line.
    pub fn fails(&self, args: &[&str], stdin: &[u8], needle: &str) -> String {
        let out = self.run(args, stdin);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "satchel {args:?}: {err}");
        assert!(err.starts_with("satchel: "), "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        err
    }

    pub fn add_user(&self, address: &str) {
        self.ok(&["user", "add", address, "--password-stdin"], b"secret\n");
    }

    /// Delivers `message` to `to` and returns the UID from the receipt line.
    pub fn deliver(&self, to: &str, message: &[u8]) -> u32 {
        let out = self.ok(
            &["deliver", "--from", "sender@remote.test", "--to", to],
            message,
        );
        receipt_uid(&out, to)
    }

    /// Opens the store the binary wrote, to look inside.
    pub async fn store(&self) -> store::SqliteStore {
        store::SqliteStore::open(&self.data())
            .await
            .expect("open store")
    }
}

pub fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn satchel");
    let mut input = child.stdin.take().expect("stdin");
    // A command may refuse before reading all of it; a broken pipe is fine.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait for satchel")
}

/// The UID of `ADDRESS INBOX UID`.
pub fn receipt_uid(line: &str, to: &str) -> u32 {
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "receipt {line:?}");
    assert_eq!(fields[0], to, "receipt {line:?}");
    assert_eq!(fields[1], "INBOX", "receipt {line:?}");
    fields[2].parse().expect("numeric UID")
}

/// Writes the standard test mbox of `tests/data/gen_mbox.py` (the same
/// bytes on every run: the messages `tests/fixtures/dovecot/` recorded).
pub fn gen_mbox(path: &Path, n: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/gen_mbox.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .arg(n.to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository's `tests/fixtures` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}
