//! `satchel serve` starts on the embedded store and stops cleanly on
//! SIGTERM and SIGINT.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Satchel;

fn serve_then_signal(signal: &str) {
    let s = Satchel::new();
    let mut child = s
        .command(&["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("store embedded "), "{first:?}");
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
