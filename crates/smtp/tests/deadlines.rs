//! Slow clients cannot hold an SMTP slot: a command line trickled a byte
//! at a time is cut at the line deadline, and a transaction whose message
//! trickles in is cut at the transaction deadline (RFC 5321 4.5.3.2 lets a
//! server close on its timeouts with 421).

use std::sync::Arc;
use std::time::Duration;

use door::testing::{Client, connect};
use store::{MailStore, SqliteStore};

async fn door(line_ms: u64, transaction_ms: u64) -> (tempfile::TempDir, Arc<smtp::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store
        .create_account("a@example.test", "pw", false)
        .await
        .unwrap();
    let pipeline = pipeline::Pipeline::new(store, "mx.example.test", &["example.test".into()]);
    let settings = smtp::Settings {
        deadlines: door::Deadlines {
            line: Duration::from_millis(line_ms),
            transaction: Duration::from_millis(transaction_ms),
            ..door::Deadlines::default()
        },
        ..smtp::Settings::default()
    };
    (dir, smtp::Server::new(Arc::new(pipeline), None, settings))
}

async fn client(server: &Arc<smtp::Server>) -> Client {
    let mut c = connect(server.clone(), "127.0.0.1:40000".parse().unwrap())
        .await
        .unwrap();
    assert!(c.line().await.unwrap().starts_with("220 "));
    c
}

/// The final line of a reply.
async fn reply(c: &mut Client, command: &str) -> String {
    c.send(command).await.unwrap();
    loop {
        let line = c.line().await.unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

/// A session past EHLO and MAIL: a transaction is open.
async fn transaction(server: &Arc<smtp::Server>) -> Client {
    let mut c = client(server).await;
    assert!(
        reply(&mut c, "EHLO client.example")
            .await
            .starts_with("250 ")
    );
    assert!(
        reply(&mut c, "MAIL FROM:<s@remote.example>")
            .await
            .starts_with("250 ")
    );
    c
}

#[tokio::test]
async fn a_trickled_command_is_cut() {
    let (_dir, server) = door(300, 60_000).await;
    let mut c = client(&server).await;
    let _ = c
        .trickle(b"EHLO slow.example", Duration::from_millis(60))
        .await;
    let answer = c.line().await.unwrap();
    assert!(
        answer.starts_with("421 4.4.2 A line took too long"),
        "{answer}"
    );
    assert!(c.line().await.is_err(), "the connection is closed");
}

#[tokio::test]
async fn a_trickled_message_is_cut_at_the_transaction_deadline() {
    let (_dir, server) = door(60_000, 1_000).await;
    let mut c = transaction(&server).await;
    assert!(
        reply(&mut c, "RCPT TO:<a@example.test>")
            .await
            .starts_with("250 ")
    );
    assert!(reply(&mut c, "DATA").await.starts_with("354 "));
    // A byte every 100 ms: every read is quick, the message never ends.
    let body = b"Subject: slow\r\n\r\n".repeat(20);
    let trickle = c.trickle(&body, Duration::from_millis(100));
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let answer = c.line().await.unwrap();
    assert!(
        answer.starts_with("421 4.4.2 The message took too long"),
        "{answer}"
    );
    assert!(c.line().await.is_err(), "the connection is closed");
}

#[tokio::test]
async fn an_open_transaction_is_cut_at_its_deadline_between_commands() {
    let (_dir, server) = door(60_000, 1_000).await;
    let mut c = transaction(&server).await;
    let mut noops = 0;
    let last = loop {
        let line = reply(&mut c, "NOOP").await;
        if !line.starts_with("250 ") {
            break line;
        }
        noops += 1;
        assert!(noops < 100, "never closed");
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert!(noops > 0);
    assert!(
        last.starts_with("421 4.4.2 The transaction took too long"),
        "{last}"
    );
}
