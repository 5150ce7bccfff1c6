//! Logging in to the ManageSieve door through the kit, in process: the
//! plaintext policy for a client off loopback and on it, and SASL PLAIN
//! with an initial response and without (RFC 5804 2.1).

use std::net::SocketAddr;
use std::sync::Arc;
use store::prelude::*;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use door::testing::{Client, connect};
use store::SqliteStore;

const USER: &str = "alice@example.test";
const PASSWORD: &str = "secret";

async fn door(plaintext_anywhere: bool) -> (tempfile::TempDir, Arc<managesieve::Server>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store.create_account(USER, PASSWORD, false).await.unwrap();
    let settings = managesieve::Settings {
        plaintext_anywhere,
        ..managesieve::Settings::default()
    };
    (
        dir,
        managesieve::Server::new(Arc::new(store), None, settings),
    )
}

/// A connection past the greeting; returns the greeting's lines too.
async fn client(server: &Arc<managesieve::Server>, peer: &str) -> (Client, Vec<String>) {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut c = connect(server.clone(), peer).await.unwrap();
    let greeting = c.until("OK").await.unwrap();
    (c, greeting)
}

fn plain() -> String {
    B64.encode(format!("\0{USER}\0{PASSWORD}"))
}

/// The status line (OK, NO or BYE) that ends the answer to `command`.
async fn status(c: &mut Client, command: &str) -> String {
    c.send(command).await.unwrap();
    loop {
        let line = c.line().await.unwrap();
        if ["OK", "NO", "BYE"].iter().any(|s| line.starts_with(s)) {
            return line;
        }
    }
}

#[tokio::test]
async fn off_loopback_without_tls_no_password_is_taken() {
    let (_dir, server) = door(false).await;
    let (mut c, greeting) = client(&server, "192.0.2.7:40000").await;
    assert!(
        greeting.contains(&"\"SASL\" \"\"".to_string()),
        "{greeting:?}"
    );
    let done = status(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain())).await;
    assert!(done.starts_with("NO (ENCRYPT-NEEDED)"), "{done}");
    assert!(status(&mut c, "LISTSCRIPTS").await.starts_with("NO"));
}

#[tokio::test]
async fn off_loopback_with_plaintext_anywhere_logs_in() {
    let (_dir, server) = door(true).await;
    let (mut c, greeting) = client(&server, "192.0.2.7:40000").await;
    assert!(
        greeting.contains(&"\"SASL\" \"PLAIN LOGIN\"".to_string()),
        "{greeting:?}"
    );
    let done = status(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain())).await;
    assert!(done.starts_with("OK"), "{done}");
}

#[tokio::test]
async fn on_loopback_plain_with_and_without_initial_response() {
    let (_dir, server) = door(false).await;
    let (mut c, _) = client(&server, "127.0.0.1:40000").await;
    let done = status(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain())).await;
    assert!(done.starts_with("OK"), "{done}");

    let (mut c, _) = client(&server, "[::1]:40000").await;
    c.send("AUTHENTICATE \"PLAIN\"").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "\"\"");
    let done = status(&mut c, &format!("\"{}\"", plain())).await;
    assert!(done.starts_with("OK"), "{done}");

    let (mut c, _) = client(&server, "127.0.0.1:40001").await;
    let wrong = B64.encode(format!("\0{USER}\0nope"));
    let done = status(&mut c, &format!("AUTHENTICATE \"PLAIN\" \"{wrong}\"")).await;
    assert!(done.starts_with("NO"), "{done}");
    assert!(status(&mut c, "LISTSCRIPTS").await.starts_with("NO"));
}
