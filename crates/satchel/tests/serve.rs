//! `satchel serve` starts on the embedded store and stops cleanly on
//! SIGTERM and SIGINT.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Satchel;

fn serve_then_signal(signal: &str) {
    let s = Satchel::new();
    // Port 0: the system picks free ports, so tests never collide.
    let config = s.dir.path().join("satchel.toml");
    std::fs::write(
        &config,
        "[listen]\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\n",
    )
    .unwrap();
    let mut child = s
        .command(&["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("store embedded "), "{first:?}");
    let mut lines = stdout.lines();
    for door in ["imap 127.0.0.1:", "imaps 127.0.0.1:"] {
        let line = lines.next().unwrap().unwrap();
        assert!(line.starts_with(door), "{line:?}");
        let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0, "the line names the port actually bound");
    }
    assert!(
        s.data().join("cert.pem").exists(),
        "a self-signed certificate was made"
    );
    assert!(s.data().join("index.sqlite").exists());
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "serve exited with {status} on SIG{signal}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve ignored SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The store is intact and usable afterwards.
    s.add_user("after@example.test");
}

#[test]
fn sigterm_stops_serve_cleanly() {
    serve_then_signal("TERM");
}

#[test]
fn sigint_stops_serve_cleanly() {
    serve_then_signal("INT");
}

/// A `serve` running on a config of its own, its first stdout lines read
/// (the store line, then one line per listening address).
struct Running {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    lines: Vec<String>,
}

fn serve(s: &Satchel, config_text: &str, doors: usize) -> Running {
    let config = s.dir.path().join("satchel.toml");
    std::fs::write(&config, config_text).unwrap();
    let mut child = s
        .command(&["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..=doors {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_string());
    }
    assert!(lines[0].starts_with("store embedded "), "{lines:?}");
    Running {
        child,
        stdout,
        lines,
    }
}

impl Running {
    /// The port the `n`th door line names.
    fn port(&self, n: usize) -> u16 {
        self.lines[n].rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGTERM; then what else it printed on stdout, and its log.
    fn stop(mut self) -> (String, String) {
        std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success(), "serve exited with {}", out.status);
        (rest, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// With a config file, `serve` starts only the doors `[listen]` names, and
/// a file that names none is refused before anything opens.
#[test]
fn a_config_file_starts_only_the_doors_it_lists() {
    let s = Satchel::new();
    let config = s.dir.path().join("satchel.toml");
    std::fs::write(&config, "hostname = \"mx.example.test\"\n").unwrap();
    let path = config.to_str().unwrap();
    s.fails(&["--config", path, "serve"], b"", "[listen] names no door");
    assert!(
        !s.data().join("index.sqlite").exists(),
        "refused before the store opened"
    );

    let running = serve(&s, "[listen]\npop3 = [\"127.0.0.1:0\"]\n", 1);
    assert!(
        running.lines[1].starts_with("pop3 127.0.0.1:"),
        "{:?}",
        running.lines
    );
    // Nothing else: stdout closes at exit with no further door line.
    let (rest, _) = running.stop();
    assert!(
        !rest
            .lines()
            .any(|l| l.split(' ').count() == 2 && l.contains("127.0.0.1:")),
        "no other door started: {rest:?}"
    );
}

/// The log an admin reads: no colour codes when it goes to a file or a
/// pipe, and a line saying which certificate the doors serve and how to
/// use one's own.
#[test]
fn the_log_is_plain_and_names_the_certificate() {
    let s = Satchel::new();
    let running = serve(
        &s,
        "hostname = \"mx.example.test\"\n[listen]\nimaps = [\"127.0.0.1:0\"]\n",
        1,
    );
    assert!(
        running.lines[1].starts_with("imaps 127.0.0.1:"),
        "{:?}",
        running.lines
    );
    let (_, log) = running.stop();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
    assert!(
        log.contains("self-signed certificate") && log.contains("[tls] cert and key"),
        "{log}"
    );
    assert!(log.contains("mx.example.test"), "{log}");
}

/// `[log] format = "json"`: one JSON object a line, for collectors.
#[test]
fn the_log_can_be_json() {
    let s = Satchel::new();
    let running = serve(
        &s,
        "hostname = \"mx.example.test\"\n[listen]\nimap = [\"127.0.0.1:0\"]\n[log]\nformat = \"json\"\n",
        1,
    );
    let (_, log) = running.stop();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing logged");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{l}");
    }
    assert!(log.contains("self-signed certificate"), "{log}");
    // A value the loader does not know is refused, naming it.
    let config = s.dir.path().join("satchel.toml");
    std::fs::write(&config, "[log]\nformat = \"xml\"\n").unwrap();
    s.fails(
        &["--config", config.to_str().unwrap(), "user", "list"],
        b"",
        "xml",
    );
}

/// One log line per message taken over SMTP: the id the sender was given,
/// the envelope sender, the client, and each copy's mailbox and score.
#[test]
fn each_delivery_is_one_log_line() {
    use std::io::Write;
    let s = Satchel::new();
    s.add_user("a@example.test");
    let running = serve(
        &s,
        "hostname = \"mx.example.test\"\ndomains = [\"example.test\"]\n[listen]\nsmtp = [\"127.0.0.1:0\"]\n",
        1,
    );
    let tcp = std::net::TcpStream::connect(("127.0.0.1", running.port(1))).unwrap();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut writer = tcp;
    let mut answer = |send: &str| {
        if !send.is_empty() {
            writer.write_all(send.as_bytes()).unwrap();
        }
        let mut last = String::new();
        loop {
            last.clear();
            reader.read_line(&mut last).unwrap();
            if last.as_bytes().get(3) != Some(&b'-') {
                return last.clone();
            }
        }
    };
    assert!(answer("").starts_with("220 "));
    assert!(answer("EHLO client.example\r\n").starts_with("250 "));
    assert!(answer("MAIL FROM:<bob@remote.example>\r\n").starts_with("250 "));
    assert!(answer("RCPT TO:<a@example.test>\r\n").starts_with("250 "));
    assert!(answer("DATA\r\n").starts_with("354 "));
    let done = answer("Subject: hi\r\n\r\nhello\r\n.\r\n");
    let id = done
        .trim()
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("{done}"))
        .to_string();
    answer("QUIT\r\n");
    let (_, log) = running.stop();
    let entry = log
        .lines()
        .find(|l| l.contains(&format!("smtp: {id} ")))
        .unwrap_or_else(|| panic!("no line for {id}: {log}"));
    assert!(
        entry.contains("from <bob@remote.example> via 127.0.0.1: a@example.test INBOX 1 score="),
        "{entry}"
    );
}
