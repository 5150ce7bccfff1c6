//! Logging in to the IMAP door through the kit, in process: the plaintext
//! policy for a client off loopback and on it, and SASL PLAIN with an
//! initial response and without (RFC 9051 6.2.2, RFC 4959).

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{PASSWORD, USER};

async fn door(plaintext_anywhere: bool) -> common::Door {
    common::door(imap::Settings {
        plaintext_anywhere,
        ..imap::Settings::default()
    })
    .await
}

fn plain() -> String {
    B64.encode(format!("\0{USER}\0{PASSWORD}"))
}

#[tokio::test]
async fn off_loopback_without_tls_no_password_is_taken() {
    let d = door(false).await;
    let mut c = d.client("192.0.2.7:40000").await;
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
    let d = door(true).await;
    let mut c = d.client("192.0.2.7:40000").await;
    c.send(&format!("a AUTHENTICATE PLAIN {}", plain()))
        .await
        .unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(done.last().unwrap().starts_with("a OK"), "{done:?}");
}

#[tokio::test]
async fn on_loopback_plain_with_and_without_initial_response() {
    let d = door(false).await;
    let mut c = d.client("127.0.0.1:40000").await;
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

    let mut c = d.client("[::1]:40000").await;
    c.send("a AUTHENTICATE PLAIN").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "+ ");
    c.send(&plain()).await.unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(
        done.last().unwrap().starts_with("a OK [CAPABILITY"),
        "{done:?}"
    );

    // A wrong password and a cancelled exchange, through the same kit.
    let mut c = d.client("127.0.0.1:40001").await;
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
