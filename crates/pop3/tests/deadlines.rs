//! Slow clients cannot hold a POP3 slot: a line trickled a byte at a time
//! is cut at the line deadline, and a client that never logs in is closed
//! at the login deadline however busy it keeps the session.

use std::sync::Arc;
use std::time::Duration;
use store::prelude::*;

use door::testing::connect;
use store::SqliteStore;

const PEER: &str = "127.0.0.1:40000";

async fn door(line_ms: u64, login_ms: u64) -> (tempfile::TempDir, Arc<pop3::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store
        .create_account("a@example.test", "pw", false)
        .await
        .unwrap();
    let settings = pop3::Settings {
        deadlines: door::Deadlines {
            line: Duration::from_millis(line_ms),
            login: Duration::from_millis(login_ms),
            ..door::Deadlines::default()
        },
        ..pop3::Settings::default()
    };
    (dir, pop3::Server::new(Arc::new(store), None, settings))
}

#[tokio::test]
async fn a_trickled_line_is_cut() {
    let (_dir, server) = door(300, 60_000).await;
    let mut c = connect(server, PEER.parse().unwrap()).await.unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    // Each byte well inside any idle limit; the line as a whole is not.
    let _ = c
        .trickle(b"USER a@example.test", Duration::from_millis(60))
        .await;
    let answer = c.line().await.unwrap();
    assert!(answer.starts_with("-ERR A line took too long"), "{answer}");
    assert!(c.line().await.is_err(), "the connection is closed");
}

#[tokio::test]
async fn no_login_in_time_closes_however_busy() {
    let (_dir, server) = door(60_000, 1_000).await;
    let mut c = connect(server.clone(), PEER.parse().unwrap())
        .await
        .unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    let mut answers = Vec::new();
    let closed = loop {
        c.send("NOOP").await.unwrap();
        match c.line().await {
            Ok(line) if line.starts_with("-ERR [AUTH] Log in within") => break line,
            Ok(line) => answers.push(line),
            Err(e) => panic!("closed without a word after {answers:?}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(answers.len() < 100, "never closed");
    };
    assert!(closed.contains("1 seconds"), "{closed}");
    assert!(
        !answers.is_empty(),
        "NOOPs were answered until the deadline"
    );

    // Logged in, the login deadline no longer applies.
    let mut c = connect(server, PEER.parse().unwrap()).await.unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    c.send("USER a@example.test").await.unwrap();
    c.line().await.unwrap();
    c.send("PASS pw").await.unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    c.send("NOOP").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "+OK");
}
