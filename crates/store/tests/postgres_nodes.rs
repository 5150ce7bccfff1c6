//! Several nodes on one PostgreSQL database (issue 20): each test opens
//! two `PgStore`s on the same database, as two Satchel nodes would.

mod pg;

use std::sync::Arc;
use std::time::Duration;

use store::prelude::*;
use store::*;

async fn two_nodes() -> (Arc<PgStore>, Arc<PgStore>) {
    let url = pg::fresh_database();
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    (Arc::new(a), Arc::new(b))
}

fn message(i: usize) -> Vec<u8> {
    format!("Subject: message {i}\r\nMessage-ID: <{i}@example.test>\r\n\r\nbody {i}\r\n")
        .into_bytes()
}

async fn put(store: &PgStore, mailbox: MailboxId, raw: &[u8]) -> Appended {
    store
        .append(
            mailbox,
            NewMessage {
                raw,
                size: raw.len() as u64,
                flags: Flags::empty(),
                keywords: Vec::new(),
                internal_date: InternalDate::now(),
                cache: MessageCache::default(),
                spam: None,
            },
        )
        .await
        .unwrap()
}

/// 1,000 messages delivered half through each node, twenty at a time on
/// each, into one mailbox: 1,000 distinct UIDs, 1 to 1,000, and MODSEQs
/// that each commit took in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uids_stay_dense_and_distinct_when_two_nodes_deliver_at_once() {
    let (a, b) = two_nodes().await;
    let account = a
        .create_account("n@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = a.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let mut tasks = Vec::new();
    for worker in 0..40 {
        let node = if worker % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                got.push(put(&node, inbox.id, &message(worker * 25 + i)).await);
            }
            got
        }));
    }
    let mut uids = Vec::new();
    let mut modseqs = Vec::new();
    for t in tasks {
        for appended in t.await.unwrap() {
            uids.push(appended.uid);
            modseqs.push(appended.modseq);
        }
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=1000).collect::<Vec<u32>>());
    modseqs.sort_unstable();
    modseqs.dedup();
    assert_eq!(
        modseqs.len(),
        1000,
        "every delivery took a MODSEQ of its own"
    );
    let status = b.status(inbox.id).await.unwrap();
    assert_eq!(status.messages, 1000);
    let listed: Vec<u32> = b
        .messages(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(listed, (1..=1000).collect::<Vec<u32>>());
    let mailbox = b.mailbox_by_id(inbox.id).await.unwrap().unwrap();
    assert_eq!(mailbox.uidnext, 1001);
}

/// A node's subscribers hear what another node committed, at once and
/// only after the commit; the node's own changes are not heard twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_the_other_within_a_second() {
    let (a, b) = two_nodes().await;
    b.watch_other_processes();
    let account = a
        .create_account("w@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = a.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let mut heard = b.subscribe();
    // The listener connects in the background; give it a moment once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let appended = put(&a, inbox.id, &message(1)).await;
    let change = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let c = heard.recv().await.unwrap();
            if c.mailbox_id == inbox.id {
                return c;
            }
        }
    })
    .await
    .expect("node B heard node A's delivery within a second");
    assert_eq!(change.account_id, account.id);
    assert_eq!(change.modseq, appended.modseq);
    // What B reads after the notice holds the message.
    let delta = b
        .changes_since(inbox.id, 0, Some(change.modseq))
        .await
        .unwrap();
    assert_eq!(delta.changed.len(), 1);
    // B's own change goes to B's subscribers once, not again from the feed.
    let own = put(&b, inbox.id, &message(2)).await;
    let first = heard.recv().await.unwrap();
    assert_eq!(first.modseq, own.modseq);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), heard.recv())
            .await
            .is_err(),
        "B's own change was heard a second time"
    );
    // An account removed on A ends up on B's feed too.
    a.remove_account("w@example.test").await.unwrap();
    let removed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let c = heard.recv().await.unwrap();
            if c.modseq == Change::ACCOUNT_REMOVED {
                return c;
            }
        }
    })
    .await
    .expect("node B heard the removal");
    assert_eq!(removed.account_id, account.id);
}

/// Two nodes claim the same new mail as \Recent: exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recent_goes_to_one_claimant_across_nodes() {
    let (a, b) = two_nodes().await;
    let account = a
        .create_account("r@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = a.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    for i in 0..5 {
        put(&a, inbox.id, &message(i)).await;
    }
    let (x, y) = tokio::join!(
        a.claim_recent(inbox.id, true),
        b.claim_recent(inbox.id, true)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 5, "{x:?} {y:?}");
    assert!(x.is_empty() || y.is_empty(), "{x:?} {y:?}");
}

/// Messages moved each way between two mailboxes by two nodes at once:
/// nothing lost, nothing doubled, no deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moves_each_way_at_once_neither_lose_nor_double() {
    let (a, b) = two_nodes().await;
    let account = a
        .create_account("m@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = a.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let other = a.create_mailbox(account.id, "Other", None).await.unwrap();
    for i in 0..50 {
        put(&a, inbox.id, &message(i)).await;
        put(&a, other.id, &message(100 + i)).await;
    }
    let (ab, ba) = tokio::join!(
        async {
            for uid in 1..=50 {
                a.move_messages(inbox.id, &[uid], other.id).await.unwrap();
            }
        },
        async {
            for uid in 1..=50 {
                b.move_messages(other.id, &[uid], inbox.id).await.unwrap();
            }
        }
    );
    let _ = (ab, ba);
    let left =
        a.status(inbox.id).await.unwrap().messages + a.status(other.id).await.unwrap().messages;
    assert_eq!(left, 100);
}

/// A node whose listening connection is cut misses the notices sent
/// meanwhile, and catches up when it connects again: its subscribers hear
/// of the change all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_listening_connection_catches_up() {
    let url = pg::fresh_database();
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    b.watch_other_processes();
    let account = a
        .create_account("c@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = a.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let mut heard = b.subscribe();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Cut node B's LISTEN connection, then deliver before it is back.
    let cut = pg::query(
        &url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'satchel feed' AND datname = current_database()",
    );
    assert_eq!(cut, "1", "one listening connection was cut");
    let appended = put(&a, inbox.id, &message(7)).await;
    let change = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let c = heard.recv().await.unwrap();
            if c.mailbox_id == inbox.id && c.modseq >= appended.modseq {
                return c;
            }
        }
    })
    .await
    .expect("node B told its subscribers of the change it missed");
    assert_eq!(change.account_id, account.id);
}

/// A database a newer Satchel migrated is refused, with an error that
/// says so, before anything is written.
#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let url = pg::fresh_database();
    drop(PgStore::open(&url).await.unwrap());
    pg::query(&url, "UPDATE schema_version SET version = 999");
    match PgStore::open(&url).await {
        Err(Error::SchemaTooNew { found: 999, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

/// A node whose liveness connection is cut takes the POP3 locks its open
/// sessions hold again when it connects anew, so another node still finds
/// the maildrop locked.
#[tokio::test]
async fn maildrop_locks_are_taken_again_after_the_liveness_connection_is_cut() {
    let url = pg::fresh_database();
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    let account = a
        .create_account("pop@example.test", "pw", false)
        .await
        .unwrap();
    let other = a
        .create_account("other@example.test", "pw", false)
        .await
        .unwrap();
    assert!(a.take_maildrop(account.id).await.unwrap());
    assert!(!b.take_maildrop(account.id).await.unwrap());
    // The backend holding the lock: advisory locks on a bigint key show
    // its high half as classid and its low half as objid.
    let cut = pg::query(
        &url,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' \
             AND objsubid = 1 AND classid = {} AND objid = {}",
            0x4d44_i64 << 16,
            account.id.0
        ),
    );
    assert_eq!(cut, "1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Node A's next use of the connection makes it anew, locks and all.
    assert!(a.take_maildrop(other.id).await.unwrap());
    assert!(
        !b.take_maildrop(account.id).await.unwrap(),
        "the lock was taken again"
    );
    a.release_maildrop(account.id).await.unwrap();
    assert!(b.take_maildrop(account.id).await.unwrap());
}
