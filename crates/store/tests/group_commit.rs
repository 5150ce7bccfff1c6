//! Writers that share a commit: many at once each get their own answer,
//! a failing one takes no one else's work with it, and a cancelled one
//! never leaves the store locked.

use std::sync::Arc;
use std::time::Duration;

use store::*;

fn message(text: &str) -> Vec<u8> {
    format!("Subject: {text}\r\n\r\n{text}\r\n").into_bytes()
}

async fn append(store: &SqliteStore, mailbox: MailboxId, raw: &[u8]) -> Result<Appended> {
    store
        .append(
            mailbox,
            NewMessage {
                raw,
                size: raw.len() as u64,
                flags: Flags::empty(),
                keywords: vec![],
                internal_date: InternalDate::now(),
                cache: MessageCache::default(),
                spam: None,
            },
        )
        .await
}

/// A writer stuck for good fails the test instead of hanging it.
async fn within<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the writers are stuck");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_each_get_their_own_durable_answer() {
    within(concurrent_writers()).await
}

async fn concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let account = store
        .create_account("g@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    // Appends, flag changes and one writer that fails (a mailbox that does
    // not exist), all at once.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let target = if i == 30 {
                MailboxId(i64::MAX)
            } else {
                inbox.id
            };
            let appended = append(&store, target, &message(&format!("m{i}"))).await;
            if let Ok(a) = &appended {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: Flags::FLAGGED,
                    keywords: vec![format!("k{i}")],
                };
                store
                    .store_flags(inbox.id, &[a.uid], &change, None)
                    .await
                    .unwrap();
            }
            appended.map(|a| a.uid)
        }));
    }
    let mut uids = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(uid) => uids.push(uid),
            Err(e) => assert_eq!(i, 30, "only the bad writer fails, not {i}: {e}"),
        }
    }
    uids.sort_unstable();
    assert_eq!(
        uids,
        (1..=59).collect::<Vec<u32>>(),
        "UIDs are unique and dense"
    );

    // What was answered is what a fresh open of the store finds.
    drop(store);
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let messages = store.messages(inbox.id).await.unwrap();
    assert_eq!(messages.len(), 59);
    assert!(
        messages
            .iter()
            .all(|m| m.flags.contains(Flags::FLAGGED) && m.keywords.len() == 1),
        "every flag change survived: {messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_writers_leave_the_store_writable_for_other_processes() {
    within(cancelled_writers()).await
}

async fn cancelled_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let account = store
        .create_account("c@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    // Writers cancelled at every point of their turn: waiting for it,
    // inside it, waiting for their group's commit.
    let mut answered = Vec::new();
    for round in 0..20u64 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                append(&store, inbox.id, &message(&format!("r{round} m{i}"))).await
            }));
        }
        tokio::time::sleep(Duration::from_micros(200 * round)).await;
        for t in tasks.iter().step_by(2) {
            t.abort();
        }
        for t in tasks {
            if let Ok(Ok(a)) = t.await {
                answered.push(a.uid);
            }
        }
    }
    // The last writer fails inside its turn (no such mailbox).
    assert!(
        append(&store, MailboxId(i64::MAX), &message("nowhere"))
            .await
            .is_err()
    );
    // Another process (another store on the same files) can still write
    // within its busy timeout, and so can this one.
    let other = SqliteStore::open(dir.path()).await.unwrap();
    let write = tokio::time::timeout(
        Duration::from_secs(20),
        append(&other, inbox.id, &message("from another process")),
    )
    .await;
    assert!(
        matches!(write, Ok(Ok(_))),
        "the other process could not write: {write:?}"
    );
    append(&store, inbox.id, &message("and this one"))
        .await
        .unwrap();
    // Every append that was answered is there after a fresh open, and
    // nothing is there twice.
    drop(store);
    drop(other);
    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    let messages = reopened.messages(inbox.id).await.unwrap();
    let mut uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
    uids.dedup();
    assert_eq!(uids.len(), messages.len());
    assert!(!answered.is_empty());
    for uid in answered {
        assert!(uids.contains(&uid), "answered UID {uid} was lost");
    }
}
