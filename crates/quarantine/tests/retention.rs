//! Retention on the embedded store: mail older than the days given leaves
//! Junk and Possible Junk, newer mail and every other mailbox stay.

use quarantine::retention;
use store::prelude::*;
use store::{Flags, InternalDate, MailStore, MessageCache, NewMessage, SqliteStore};

async fn put(
    store: &dyn MailStore,
    account: store::AccountId,
    mailbox: &str,
    subject: &str,
    unix: i64,
) {
    let m = store.mailbox(account, mailbox).await.unwrap().unwrap();
    let raw = format!("Subject: {subject}\r\n\r\nx\r\n");
    store
        .append(
            m.id,
            NewMessage {
                raw: raw.as_bytes(),
                size: raw.len() as u64,
                flags: Flags::empty(),
                keywords: vec![],
                internal_date: InternalDate {
                    unix,
                    tz_minutes: 0,
                },
                cache: MessageCache::default(),
                spam: None,
            },
        )
        .await
        .unwrap();
}

async fn count(store: &dyn MailStore, account: store::AccountId, mailbox: &str) -> usize {
    let m = store.mailbox(account, mailbox).await.unwrap().unwrap();
    store.messages(m.id).await.unwrap().len()
}

#[tokio::test]
async fn old_junk_goes_and_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let a = store
        .create_account("u@example.test", "pw", false)
        .await
        .unwrap();
    let now = 1_800_000_000;
    let day = 86_400;
    for mailbox in ["Junk", "Possible Junk", "INBOX", "Trash"] {
        put(&store, a.id, mailbox, "old", now - 31 * day).await;
        put(&store, a.id, mailbox, "recent", now - 29 * day).await;
    }
    assert_eq!(retention::purge(&store, &a, 30, now).await.unwrap(), 2);
    assert_eq!(count(&store, a.id, "Junk").await, 1);
    assert_eq!(count(&store, a.id, "Possible Junk").await, 1);
    assert_eq!(count(&store, a.id, "INBOX").await, 2);
    assert_eq!(count(&store, a.id, "Trash").await, 2);
    assert_eq!(retention::purge(&store, &a, 30, now).await.unwrap(), 0);
}
