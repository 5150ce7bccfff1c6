//! Slow clients cannot hold an IMAP slot: a line trickled a byte at a time
//! is cut at the line deadline, and a client that never logs in is closed
//! at the login deadline however busy it keeps the session.

mod common;

use std::time::Duration;

use common::{PASSWORD, USER, status};

async fn door(line_ms: u64, login_ms: u64) -> common::Door {
    common::door(imap::Settings {
        deadlines: door::Deadlines {
            line: Duration::from_millis(line_ms),
            login: Duration::from_millis(login_ms),
            ..door::Deadlines::default()
        },
        ..imap::Settings::default()
    })
    .await
}

#[tokio::test]
async fn a_trickled_line_is_cut() {
    let d = door(300, 60_000).await;
    let mut c = d.client("127.0.0.1:40000").await;
    let _ = c
        .trickle(b"a LOGIN someone", Duration::from_millis(60))
        .await;
    assert_eq!(
        c.line().await.unwrap(),
        "* BYE A line took too long to arrive."
    );
    assert!(c.line().await.is_err(), "the connection is closed");
}

#[tokio::test]
async fn no_login_in_time_closes_however_busy() {
    let d = door(60_000, 1_000).await;
    let mut c = d.client("127.0.0.1:40000").await;
    let mut noops = 0;
    loop {
        c.send("t NOOP").await.unwrap();
        let line = c.line().await.unwrap();
        if line.starts_with("* BYE") {
            assert_eq!(line, "* BYE Log in within 1 seconds of connecting.");
            break;
        }
        assert!(line.starts_with("t OK"), "{line}");
        noops += 1;
        assert!(noops < 100, "never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(noops > 0);

    let mut c = d.client("127.0.0.1:40001").await;
    let done = status(&mut c, &format!("LOGIN {USER} {PASSWORD}")).await;
    assert!(done.starts_with("t OK"), "{done}");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(status(&mut c, "NOOP").await.starts_with("t OK"));
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_at_the_write_deadline() {
    let d = common::door(imap::Settings {
        deadlines: door::Deadlines {
            write: Duration::from_millis(500),
            ..door::Deadlines::default()
        },
        ..imap::Settings::default()
    })
    .await;
    let mut c = d.logged_in().await;
    // One message of 8 MiB: each answer to it is far more than the
    // sockets' buffers hold.
    let line = format!("{}\r\n", "x".repeat(78));
    let message = format!("Subject: big\r\n\r\n{}", line.repeat(8 * 1024 * 1024 / 80));
    c.send_raw(format!("t APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
        .await
        .unwrap();
    c.send_raw(message.as_bytes()).await.unwrap();
    c.send("").await.unwrap();
    assert!(
        c.until("t ")
            .await
            .unwrap()
            .last()
            .unwrap()
            .starts_with("t OK")
    );
    assert!(status(&mut c, "SELECT INBOX").await.starts_with("t OK"));

    // Twenty FETCHes of the whole message, and nothing read.
    for i in 0..20 {
        c.send(&format!("f{i} FETCH 1 BODY.PEEK[]")).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The session ended: what was sent before it gave up is there to read,
    // then the end of the stream, long before the twentieth answer.
    let mut answered = 0;
    while let Ok(line) = c.line().await {
        if line.starts_with('f') && line.contains(" OK ") {
            answered += 1;
        }
    }
    assert!(
        answered < 20,
        "every answer was sent to a client that never read"
    );
}
