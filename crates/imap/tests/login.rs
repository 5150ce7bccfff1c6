//! Logging in to the IMAP door through the kit, in process: the plaintext
//! policy for a client off loopback and on it, and SASL PLAIN with an
//! initial response and without (RFC 9051 6.2.2, RFC 4959).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use door::testing::{Client, connect};
use store::{MailStore, SqliteStore};

const USER: &str = "alice@example.test";
const PASSWORD: &str = "secret";

async fn door(plaintext_anywhere: bool) -> (tempfile::TempDir, Arc<imap::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store.create_account(USER, PASSWORD, false).await.unwrap();
    let settings = imap::Settings {
        plaintext_anywhere,
        ..imap::Settings::default()
    };
    (dir, imap::Server::new(Arc::new(store), None, settings))
}

async fn client(server: &Arc<imap::Server>, peer: &str) -> Client {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut c = connect(server.clone(), peer).await.unwrap();
    assert!(c.line().await.unwrap().starts_with("* OK"));
    c
}

fn plain() -> String {
    B64.encode(format!("\0{USER}\0{PASSWORD}"))
}

#[tokio::test]
async fn off_loopback_without_tls_no_password_is_taken() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    c.send("a CAPABILITY").await.unwrap();
    let caps = c.until("a ").await.unwrap();
    assert!(caps[0].contains("LOGINDISABLED"), "{caps:?}");
    assert!(!caps[0].contains("AUTH=PLAIN"), "{caps:?}");
    c.send(&format!("b LOGIN {USER} {PASSWORD}")).await.unwrap();
    let done = c.until("b ").await.unwrap();
    assert!(
        done.last().unwrap().starts_with("b NO [PRIVACYREQUIRED]"),
        "{done:?}"
    );
    c.send(&format!("c AUTHENTICATE PLAIN {}", plain()))
        .await
        .unwrap();
    let done = c.until("c ").await.unwrap();
    assert!(
        done.last().unwrap().starts_with("c NO [PRIVACYREQUIRED]"),
        "{done:?}"
    );
    c.send("d SELECT INBOX").await.unwrap();
    assert!(
        c.until("d ")
            .await
            .unwrap()
            .last()
            .unwrap()
            .starts_with("d BAD")
    );
}

#[tokio::test]
async fn off_loopback_with_plaintext_anywhere_logs_in() {
    let (_dir, server) = door(true).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    c.send(&format!("a AUTHENTICATE PLAIN {}", plain()))
        .await
        .unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(done.last().unwrap().starts_with("a OK"), "{done:?}");
}

#[tokio::test]
async fn on_loopback_plain_with_and_without_initial_response() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "127.0.0.1:40000").await;
    c.send(&format!("a AUTHENTICATE PLAIN {}", plain()))
        .await
        .unwrap();
    assert!(
        c.until("a ")
            .await
            .unwrap()
            .last()
            .unwrap()
            .starts_with("a OK")
    );

    let mut c = client(&server, "[::1]:40000").await;
    c.send("a AUTHENTICATE PLAIN").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "+ ");
    c.send(&plain()).await.unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(
        done.last().unwrap().starts_with("a OK [CAPABILITY"),
        "{done:?}"
    );

    // A wrong password and a cancelled exchange, through the same kit.
    let mut c = client(&server, "127.0.0.1:40001").await;
    let wrong = B64.encode(format!("\0{USER}\0nope"));
    c.send(&format!("a AUTHENTICATE PLAIN {wrong}"))
        .await
        .unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(
        done.last()
            .unwrap()
            .starts_with("a NO [AUTHENTICATIONFAILED]")
    );
    c.send("b AUTHENTICATE PLAIN").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "+ ");
    c.send("*").await.unwrap();
    assert!(
        c.until("b ")
            .await
            .unwrap()
            .last()
            .unwrap()
            .starts_with("b BAD")
    );
}
