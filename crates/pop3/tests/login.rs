//! Logging in to the POP3 door through the kit, in process: the plaintext
//! policy for a client off loopback and on it, and SASL PLAIN with an
//! initial response and without (RFC 5034).

use std::net::SocketAddr;
use std::sync::Arc;
use store::prelude::*;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use door::testing::{Client, connect};
use store::SqliteStore;

const USER: &str = "alice@example.test";
const PASSWORD: &str = "secret";

async fn door(plaintext_anywhere: bool) -> (tempfile::TempDir, Arc<pop3::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store.create_account(USER, PASSWORD, false).await.unwrap();
    let settings = pop3::Settings {
        plaintext_anywhere,
        ..pop3::Settings::default()
    };
    (dir, pop3::Server::new(Arc::new(store), None, settings))
}

async fn client(server: &Arc<pop3::Server>, peer: &str) -> Client {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut c = connect(server.clone(), peer).await.unwrap();
    assert!(c.line().await.unwrap().starts_with("+OK"));
    c
}

fn plain() -> String {
    B64.encode(format!("\0{USER}\0{PASSWORD}"))
}

async fn answer(c: &mut Client, command: &str) -> String {
    c.send(command).await.unwrap();
    c.line().await.unwrap()
}

#[tokio::test]
async fn off_loopback_without_tls_no_password_is_taken() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    c.send("CAPA").await.unwrap();
    let caps = c.until(".").await.unwrap();
    assert!(!caps.iter().any(|l| l.starts_with("SASL")), "{caps:?}");
    assert!(!caps.iter().any(|l| l == "USER"), "{caps:?}");
    let user = answer(&mut c, &format!("USER {USER}")).await;
    assert!(user.starts_with("-ERR [AUTH]"), "{user}");
    let auth = answer(&mut c, &format!("AUTH PLAIN {}", plain())).await;
    assert!(auth.starts_with("-ERR [AUTH]"), "{auth}");
    assert!(answer(&mut c, "STAT").await.starts_with("-ERR"));
}

#[tokio::test]
async fn off_loopback_with_plaintext_anywhere_logs_in() {
    let (_dir, server) = door(true).await;
    let mut c = client(&server, "192.0.2.7:40000").await;
    let auth = answer(&mut c, &format!("AUTH PLAIN {}", plain())).await;
    assert!(auth.starts_with("+OK"), "{auth}");
}

#[tokio::test]
async fn on_loopback_plain_with_and_without_initial_response() {
    let (_dir, server) = door(false).await;
    let mut c = client(&server, "127.0.0.1:40000").await;
    let auth = answer(&mut c, &format!("AUTH PLAIN {}", plain())).await;
    assert!(auth.starts_with("+OK"), "{auth}");
    // One session at a time holds the maildrop: leave before the next.
    assert!(answer(&mut c, "QUIT").await.starts_with("+OK"));

    let mut c = client(&server, "[::1]:40000").await;
    assert_eq!(answer(&mut c, "AUTH PLAIN").await, "+ ");
    let auth = answer(&mut c, &plain()).await;
    assert!(auth.starts_with("+OK"), "{auth}");
    assert!(answer(&mut c, "QUIT").await.starts_with("+OK"));

    let mut c = client(&server, "127.0.0.1:40001").await;
    let wrong = B64.encode(format!("\0{USER}\0nope"));
    let auth = answer(&mut c, &format!("AUTH PLAIN {wrong}")).await;
    assert!(auth.starts_with("-ERR [AUTH]"), "{auth}");
    assert_eq!(answer(&mut c, "AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert!(answer(&mut c, "*").await.contains("cancelled"));
}
