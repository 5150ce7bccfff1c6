//! The submission mode's login policy (RFC 4954 4, RFC 8314): no AUTH
//! offered or taken before TLS from a client off loopback, unless the
//! config allows plaintext anywhere; on loopback, AUTH PLAIN with and
//! without an initial response.

use std::sync::Arc;

use door::testing::{Client, connect};
use store::{MailStore, SqliteStore};

async fn door(plaintext_anywhere: bool) -> (tempfile::TempDir, Arc<smtp::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store
        .create_account("a@example.test", "pw", false)
        .await
        .unwrap();
    let pipeline =
        pipeline::Pipeline::new(store.clone(), "mx.example.test", &["example.test".into()]);
    let submit = smtp::Submit {
        store,
        throttle: door::LoginThrottle::new(),
        sessions: door::Sessions::default(),
        plaintext_anywhere,
        sent_copy: pipeline::SentCopy::default(),
        hourly: std::sync::Arc::new(smtp::HourlyLimit::new(0)),
    };
    let server =
        smtp::Server::submission(Arc::new(pipeline), None, smtp::Settings::default(), submit);
    (dir, server)
}

/// The lines of one reply.
async fn reply(c: &mut Client, command: &str) -> Vec<String> {
    c.send(command).await.unwrap();
    let mut lines = Vec::new();
    loop {
        let line = c.line().await.unwrap();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return lines;
        }
    }
}

async fn client(server: &Arc<smtp::Server>, peer: &str) -> Client {
    let mut c = connect(server.clone(), peer.parse().unwrap())
        .await
        .unwrap();
    assert!(c.line().await.unwrap().starts_with("220 "));
    c
}

// "\0a@example.test\0pw" in base64.
const PLAIN: &str = "AGFAZXhhbXBsZS50ZXN0AHB3";

#[tokio::test]
async fn no_auth_before_tls_off_loopback() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    let ehlo = reply(&mut c, "EHLO client.example").await;
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    let auth = reply(&mut c, &format!("AUTH PLAIN {PLAIN}")).await;
    assert!(auth[0].starts_with("538 5.7.11"), "{auth:?}");
    let mail = reply(&mut c, "MAIL FROM:<a@example.test>").await;
    assert!(mail[0].starts_with("530 5.7.0"), "{mail:?}");
}

#[tokio::test]
async fn plaintext_anywhere_lets_it_in() {
    let (_dir, server) = door(true).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    let ehlo = reply(&mut c, "EHLO client.example").await;
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    let auth = reply(&mut c, &format!("AUTH PLAIN {PLAIN}")).await;
    assert!(auth[0].starts_with("235 "), "{auth:?}");
}

#[tokio::test]
async fn plain_with_and_without_an_initial_response_on_loopback() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "127.0.0.1:40000").await;
    reply(&mut c, "EHLO client.example").await;
    let challenge = reply(&mut c, "AUTH PLAIN").await;
    assert_eq!(challenge, ["334 "]);
    let done = reply(&mut c, PLAIN).await;
    assert!(done[0].starts_with("235 "), "{done:?}");
    let again = reply(&mut c, &format!("AUTH PLAIN {PLAIN}")).await;
    assert!(again[0].starts_with("503 "), "{again:?}");
    let mut c = client(&server, "127.0.0.1:40001").await;
    reply(&mut c, "EHLO client.example").await;
    let bad = reply(&mut c, "AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AG5v").await;
    assert!(bad[0].starts_with("535 5.7.8"), "{bad:?}");
}
