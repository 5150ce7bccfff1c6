//! Message commands in process (RFC 9051 6.4): FETCH, STORE, SEARCH, and
//! COPY and MOVE with the spam training the store records for them.

mod common;

use common::{USER, command, status};
use store::prelude::*;

async fn append(c: &mut door::testing::Client, mailbox: &str, subject: &str) {
    let message = format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n");
    c.send(&format!(
        "t APPEND {mailbox} {{{}+}}\r\n{message}",
        message.len()
    ))
    .await
    .unwrap();
    let done = c.until("t ").await.unwrap();
    assert!(done.last().unwrap().starts_with("t OK"), "{done:?}");
}

#[tokio::test]
async fn fetch_store_search() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.logged_in().await;
    append(&mut c, "INBOX", "one").await;
    append(&mut c, "INBOX", "two").await;
    assert!(
        status(&mut c, "SELECT INBOX")
            .await
            .starts_with("t OK [READ-WRITE]")
    );
    let fetch = command(&mut c, "FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    assert!(fetch[0].starts_with("* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {"));
    assert_eq!(fetch[1], "Subject: two");
    let store = command(&mut c, "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(
        store[0].starts_with("* 1 FETCH (FLAGS (\\Flagged"),
        "{store:?}"
    );
    let search = command(&mut c, "SEARCH FLAGGED").await;
    assert_eq!(search[0], "* SEARCH 1");
    let search = command(&mut c, "UID SEARCH SUBJECT two").await;
    assert_eq!(search[0], "* SEARCH 2");
}

#[tokio::test]
async fn move_and_copy_into_junk_train_once_and_trash_never() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.logged_in().await;
    for s in ["a", "b", "c"] {
        append(&mut c, "INBOX", s).await;
    }
    assert!(status(&mut c, "SELECT INBOX").await.starts_with("t OK"));
    let pending = async || d.store.pending_training(100).await.unwrap();

    // MOVE: one spam event.
    assert!(status(&mut c, "UID MOVE 1 Junk").await.starts_with("t OK"));
    assert_eq!(pending().await.len(), 1);
    // COPY and EXPUNGE, as clients without MOVE do: one more, not two.
    assert!(status(&mut c, "UID COPY 2 Junk").await.starts_with("t OK"));
    assert!(
        status(&mut c, "UID STORE 2 +FLAGS.SILENT (\\Deleted)")
            .await
            .starts_with("t OK")
    );
    assert!(status(&mut c, "EXPUNGE").await.starts_with("t OK"));
    let events = pending().await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.spam));
    // Into Trash: none.
    assert!(status(&mut c, "UID MOVE 3 Trash").await.starts_with("t OK"));
    assert_eq!(pending().await.len(), 2);
    let account = d.store.account(USER).await.unwrap().unwrap();
    assert!(events.iter().all(|e| e.account == account.id));
}
