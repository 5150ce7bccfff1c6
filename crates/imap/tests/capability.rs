//! CAPABILITY and ENABLE in process (RFC 9051 6.1.1, RFC 5161): the list
//! follows the state, and ENABLE turns an extension on once.

mod common;

use common::{command, status};

#[tokio::test]
async fn the_list_follows_the_state() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.client("127.0.0.1:40000").await;
    let before = command(&mut c, "CAPABILITY").await;
    let caps = before[0].strip_prefix("* CAPABILITY ").unwrap();
    let names: Vec<&str> = caps.split(' ').collect();
    for want in [
        "IMAP4rev1",
        "IMAP4rev2",
        "AUTH=PLAIN",
        "AUTH=LOGIN",
        "SASL-IR",
        "MOVE",
    ] {
        assert!(names.contains(&want), "{want} missing: {caps}");
    }
    assert!(!names.contains(&"LOGINDISABLED") && !names.contains(&"STARTTLS"));
    assert!(names.last().unwrap().starts_with("APPENDLIMIT="));

    let mut c = d.logged_in().await;
    let after = command(&mut c, "CAPABILITY").await;
    assert!(!after[0].contains("AUTH="), "{after:?}");
    assert!(after[0].contains(" ENABLE ") && after[0].contains(" IDLE "));
}

#[tokio::test]
async fn enable_turns_on_once_and_ignores_the_unknown() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.logged_in().await;
    let first = command(&mut c, "ENABLE imap4rev2 X-UNKNOWN").await;
    assert_eq!(first[0], "* ENABLED IMAP4rev2");
    assert!(first[1].starts_with("t OK"));
    let again = command(&mut c, "ENABLE IMAP4rev2 IMAP4rev1").await;
    assert_eq!(again[0], "* ENABLED", "nothing new: {again:?}");
    // Enabled, SELECT no longer reports \Recent (RFC 9051 drops it).
    let select = command(&mut c, "SELECT INBOX").await;
    assert!(!select.iter().any(|l| l.ends_with(" RECENT")), "{select:?}");
    assert!(status(&mut c, "NOOP").await.starts_with("t OK"));
}
