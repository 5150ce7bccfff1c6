//! Password guessing is counted once for the whole server: failures on
//! IMAP, POP3 and ManageSieve add up, per address and per account, in the
//! store the doors share.

use std::net::IpAddr;
use std::sync::Arc;

use door::LoginThrottle;
use door::testing::connect;
use store::{MailStore, SqliteStore};

/// The account's failures in the throttle's window, as the store counts them.
async fn failures_at(store: &dyn MailStore, ip: IpAddr) -> u32 {
    store
        .login_guard(USER, ip, LoginThrottle::WINDOW)
        .await
        .unwrap()
        .failures
}

const USER: &str = "alice@example.test";

#[tokio::test]
async fn failures_on_every_door_count_together() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    store.create_account(USER, "right", false).await.unwrap();
    let throttle = LoginThrottle::new();
    let imap = imap::Server::new(
        store.clone(),
        None,
        imap::Settings {
            throttle: throttle.clone(),
            ..imap::Settings::default()
        },
    );
    let pop3 = pop3::Server::new(
        store.clone(),
        None,
        pop3::Settings {
            throttle: throttle.clone(),
            ..pop3::Settings::default()
        },
    );
    let sieve = managesieve::Server::new(
        store.clone(),
        None,
        managesieve::Settings {
            throttle: throttle.clone(),
            ..managesieve::Settings::default()
        },
    );
    let peer = "127.0.0.1:40000".parse().unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();

    let mut c = connect(imap, peer).await.unwrap();
    c.line().await.unwrap();
    c.send(&format!("a LOGIN {USER} wrong")).await.unwrap();
    let done = c.until("a ").await.unwrap();
    assert!(
        done.last()
            .unwrap()
            .starts_with("a NO [AUTHENTICATIONFAILED]")
    );
    assert_eq!(failures_at(&*store, ip).await, 1);

    let mut c = connect(pop3, peer).await.unwrap();
    c.line().await.unwrap();
    c.send(&format!("USER {USER}")).await.unwrap();
    c.line().await.unwrap();
    c.send("PASS wrong").await.unwrap();
    assert!(c.line().await.unwrap().starts_with("-ERR [AUTH]"));
    assert_eq!(
        failures_at(&*store, ip).await,
        2,
        "POP3 counts on from IMAP's count"
    );

    let mut c = connect(sieve, peer).await.unwrap();
    c.until("OK").await.unwrap();
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0wrong"));
    c.send(&format!("AUTHENTICATE \"PLAIN\" \"{token}\""))
        .await
        .unwrap();
    assert!(c.line().await.unwrap().starts_with("NO"));
    assert_eq!(failures_at(&*store, ip).await, 3);
    // The address counted all three too: its next failure waits four
    // seconds.
    let delay = throttle.failed_login(&*store, None, ip).await.unwrap();
    assert_eq!(delay, std::time::Duration::from_secs(4), "and per address");
}
