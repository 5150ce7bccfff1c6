//! The store's change feed wakes subscribers in one process when another
//! process (here `satchel deliver`) changes a mailbox.

mod common;

use std::time::Duration;
use store::prelude::*;

use common::Satchel;

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_by_another_process_reaches_subscribers_within_a_second() {
    let s = Satchel::new();
    s.add_user("erin@example.test");
    let store = s.store().await;
    let account = store.account("erin@example.test").await.unwrap().unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let mut feed = store.subscribe();
    store.watch_other_processes();
    // Let the watcher take its starting point before the delivery.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 1..=3u32 {
        let uid = tokio::task::spawn_blocking({
            let data = s.data();
            move || {
                let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_satchel"));
                c.arg("--data").arg(data).args([
                    "deliver",
                    "--from",
                    "x@remote.test",
                    "--to",
                    "erin@example.test",
                ]);
                let out = common::run_with_stdin(c, b"Subject: ping\r\n\r\nping\r\n");
                assert!(out.status.success());
                common::receipt_uid(
                    String::from_utf8_lossy(&out.stdout).trim(),
                    "erin@example.test",
                )
            }
        })
        .await
        .unwrap();
        assert_eq!(uid, round);
        let change = tokio::time::timeout(Duration::from_secs(1), feed.recv())
            .await
            .expect("no change within one second")
            .unwrap();
        assert_eq!(change.mailbox_id, inbox.id);
        assert_eq!(change.account_id, account.id);
        let now = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
        assert_eq!(change.modseq, now.highestmodseq);
    }
}

#[tokio::test]
async fn changes_in_this_process_are_published_at_once() {
    let s = Satchel::new();
    s.add_user("fay@example.test");
    let store = s.store().await;
    let account = store.account("fay@example.test").await.unwrap().unwrap();
    let sent = store.mailbox(account.id, "Sent").await.unwrap().unwrap();
    let mut feed = store.subscribe();
    let raw = b"Subject: hi\r\n\r\nhi\r\n";
    let done = store
        .append(
            sent.id,
            store::NewMessage {
                raw,
                size: raw.len() as u64,
                flags: store::Flags::SEEN,
                keywords: vec!["$Forwarded".into()],
                internal_date: store::InternalDate::now(),
                cache: Default::default(),
                spam: None,
            },
        )
        .await
        .unwrap();
    let change = feed.try_recv().expect("published before append returned");
    assert_eq!((change.mailbox_id, change.modseq), (sent.id, done.modseq));
    let msgs = store.messages(sent.id).await.unwrap();
    assert_eq!(msgs[0].keywords, vec!["$Forwarded".to_string()]);
    assert_eq!(msgs[0].flags, store::Flags::SEEN);
}
