//! QUIT (RFC 1939 6) reports what it really removed: a message another
//! session expunged while this one had it marked is not counted.

use std::sync::Arc;
use store::prelude::*;

use door::testing::connect;
use store::{Flags, InternalDate, MessageCache, NewMessage, SqliteStore};

#[tokio::test]
async fn quit_counts_only_what_it_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let account = store
        .create_account("a@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let mut uids = Vec::new();
    for n in 0..3 {
        let raw = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
        let message = NewMessage {
            raw: raw.as_bytes(),
            size: raw.len() as u64,
            flags: Flags::empty(),
            keywords: vec![],
            internal_date: InternalDate::now(),
            cache: MessageCache::default(),
            spam: None,
        };
        uids.push(store.append(inbox.id, message).await.unwrap().uid);
    }
    let server = pop3::Server::new(store.clone(), None, pop3::Settings::default());
    let mut c = connect(server, "127.0.0.1:40000".parse().unwrap())
        .await
        .unwrap();
    c.line().await.unwrap();
    for cmd in ["USER a@example.test", "PASS pw", "DELE 1", "DELE 2"] {
        c.send(cmd).await.unwrap();
        let answer = c.line().await.unwrap();
        assert!(answer.starts_with("+OK"), "{cmd}: {answer}");
    }
    // Meanwhile an IMAP client expunges message 2.
    store.expunge(inbox.id, &[uids[1]], false).await.unwrap();
    c.send("QUIT").await.unwrap();
    assert_eq!(c.line().await.unwrap(), "+OK Bye; 1 messages deleted.");
    let left: Vec<u32> = store
        .messages(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, vec![uids[2]]);
}
