//! Slow clients cannot hold a ManageSieve slot: a line trickled a byte at
//! a time is cut at the line deadline, and a client that never logs in is
//! closed at the login deadline however busy it keeps the session.

use std::sync::Arc;
use std::time::Duration;
use store::prelude::*;

use door::testing::{Client, connect};
use store::SqliteStore;

async fn door(line_ms: u64, login_ms: u64) -> (tempfile::TempDir, Arc<managesieve::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store
        .create_account("a@example.test", "pw", false)
        .await
        .unwrap();
    let settings = managesieve::Settings {
        deadlines: door::Deadlines {
            line: Duration::from_millis(line_ms),
            login: Duration::from_millis(login_ms),
            ..door::Deadlines::default()
        },
        ..managesieve::Settings::default()
    };
    (
        dir,
        managesieve::Server::new(Arc::new(store), None, settings),
    )
}

async fn client(server: &Arc<managesieve::Server>) -> Client {
    let mut c = connect(server.clone(), "127.0.0.1:40000".parse().unwrap())
        .await
        .unwrap();
    c.until("OK").await.unwrap();
    c
}

#[tokio::test]
async fn a_trickled_line_is_cut() {
    let (_dir, server) = door(300, 60_000).await;
    let mut c = client(&server).await;
    let _ = c
        .trickle(b"AUTHENTICATE \"PLAIN\"", Duration::from_millis(60))
        .await;
    assert_eq!(
        c.line().await.unwrap(),
        "BYE \"A line took too long to arrive.\""
    );
    assert!(c.line().await.is_err(), "the connection is closed");
}

#[tokio::test]
async fn no_login_in_time_closes_however_busy() {
    let (_dir, server) = door(60_000, 1_000).await;
    let mut c = client(&server).await;
    let mut noops = 0;
    loop {
        c.send("NOOP").await.unwrap();
        let line = c.line().await.unwrap();
        if line.starts_with("BYE") {
            assert_eq!(line, "BYE \"Log in within 1 seconds of connecting.\"");
            break;
        }
        assert!(line.starts_with("OK"), "{line}");
        noops += 1;
        assert!(noops < 100, "never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(noops > 0);
}
