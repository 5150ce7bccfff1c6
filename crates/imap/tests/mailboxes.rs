//! Mailbox commands in process (RFC 9051 6.3): CREATE, LIST, RENAME,
//! STATUS, DELETE and APPEND, seen through the store as well.

mod common;

use common::{USER, command, status};
use store::prelude::*;

#[tokio::test]
async fn create_list_rename_status_delete() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.logged_in().await;
    assert!(
        status(&mut c, "CREATE Projects/2026")
            .await
            .starts_with("t OK")
    );
    let list = command(&mut c, "LIST \"\" \"Projects*\"").await;
    assert_eq!(
        list[..2],
        [
            "* LIST (\\HasChildren) \"/\" \"Projects\"",
            "* LIST (\\HasNoChildren) \"/\" \"Projects/2026\"",
        ],
        "the parent is made too"
    );
    let done = status(&mut c, "CREATE INBOX").await;
    assert!(done.starts_with("t NO [ALREADYEXISTS]"), "{done}");

    assert!(
        status(&mut c, "RENAME Projects Archive")
            .await
            .starts_with("t OK")
    );
    let account = d.store.account(USER).await.unwrap().unwrap();
    assert!(
        d.store
            .mailbox(account.id, "Archive/2026")
            .await
            .unwrap()
            .is_some(),
        "children move along"
    );
    let st = command(&mut c, "STATUS Archive/2026 (MESSAGES UIDNEXT)").await;
    assert_eq!(st[0], "* STATUS \"Archive/2026\" (MESSAGES 0 UIDNEXT 1)");
    assert!(
        status(&mut c, "DELETE Archive/2026")
            .await
            .starts_with("t OK")
    );
    let done = status(&mut c, "DELETE INBOX").await;
    assert!(done.starts_with("t NO"), "{done}");
}

#[tokio::test]
async fn append_stores_the_bytes_and_answers_appenduid() {
    let d = common::door(imap::Settings::default()).await;
    let mut c = d.logged_in().await;
    let message = "Subject: hi\r\n\r\nhello\r\n";
    c.send(&format!(
        "t APPEND INBOX (\\Seen) {{{}+}}\r\n{message}",
        message.len()
    ))
    .await
    .unwrap();
    let done = c.until("t ").await.unwrap();
    let last = done.last().unwrap();
    assert!(last.starts_with("t OK [APPENDUID "), "{last}");
    let account = d.store.account(USER).await.unwrap().unwrap();
    let inbox = d.store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let stored = d.store.messages(inbox.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].flags.contains(store::Flags::SEEN));
    assert_eq!(
        d.store.read_blob(&stored[0].blob).await.unwrap(),
        message.as_bytes()
    );
}
