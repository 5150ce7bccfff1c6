//! The background trainer: a move into Junk, made at the store (as any door
//! makes it), is taught to the server's model and the user's own exactly
//! once; an event whose message is gone is dropped untaught.

use pipeline::{SERVER_MODEL, teach_pending};
use store::prelude::*;
use store::{Flags, InternalDate, MessageCache, NewMessage, SqliteStore};

const RAW: &[u8] =
    b"From: s@sender.test\r\nSubject: jackpot casino\r\n\r\njackpot casino bonus\r\n";

#[tokio::test]
async fn moves_into_junk_are_taught_once_to_both_models() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let account = store
        .create_account("t@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let junk = store.mailbox(account.id, "Junk").await.unwrap().unwrap();
    let uid = store
        .append(
            inbox.id,
            NewMessage {
                raw: RAW,
                size: RAW.len() as u64,
                flags: Flags::empty(),
                keywords: vec![],
                internal_date: InternalDate::now(),
                cache: MessageCache::default(),
                spam: None,
            },
        )
        .await
        .unwrap()
        .uid;
    store
        .move_messages(inbox.id, &[uid], junk.id)
        .await
        .unwrap();

    assert_eq!(teach_pending(&store).await.unwrap(), 1);
    assert_eq!(teach_pending(&store).await.unwrap(), 0, "taught once");
    let tokens = vec!["jackpot".to_string()];
    let counts = store
        .bayes_counts(&[SERVER_MODEL, account.id.scope()], &tokens)
        .await
        .unwrap();
    for model in &counts {
        assert_eq!(model.totals, (1, 0), "one spam message taught");
        assert_eq!(model.counts, vec![(1, 0)]);
    }
    assert!(store.pending_training(10).await.unwrap().is_empty());
}
