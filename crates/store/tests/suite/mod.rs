//! The store's operations, written once for every backend: each backend's
//! test file (`embedded.rs` for SQLite; the PostgreSQL backend adds its
//! own) opens a fresh store and runs every test here with
//! [`every_test!`](crate::every_test).

use std::sync::Arc;

use store::prelude::*;
use store::*;

/// A fresh store of one backend, and what the suite needs to look into it.
pub struct Backend {
    pub store: Arc<dyn MailStore>,
    /// How many message bodies the backend holds (files, rows): shared
    /// bodies count once, freed ones not at all.
    pub bodies: Box<dyn Fn() -> usize + Send + Sync>,
    /// Whatever must live as long as the store (a temporary folder).
    pub keep: Box<dyn std::any::Any + Send + Sync>,
}

pub struct T {
    pub store: Arc<dyn MailStore>,
    pub account: Account,
    bodies: Box<dyn Fn() -> usize + Send + Sync>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl T {
    pub async fn new(b: Backend) -> T {
        let account = b
            .store
            .create_account("op@example.test", "pw", false)
            .await
            .unwrap();
        T {
            store: b.store,
            account,
            bodies: b.bodies,
            _keep: b.keep,
        }
    }
}

impl T {
    async fn mailbox(&self, name: &str) -> Mailbox {
        self.store
            .mailbox(self.account.id, name)
            .await
            .unwrap()
            .unwrap()
    }

    async fn add(&self, mailbox: &str, body: &str, flags: Flags) -> u32 {
        let m = self.mailbox(mailbox).await;
        let raw = format!("Subject: {body}\r\n\r\n{body}\r\n");
        self.store
            .append(
                m.id,
                NewMessage {
                    raw: raw.as_bytes(),
                    size: raw.len() as u64,
                    flags,
                    keywords: vec![],
                    internal_date: InternalDate::now(),
                    cache: MessageCache::default(),
                    spam: None,
                },
            )
            .await
            .unwrap()
            .uid
    }

    async fn uids(&self, mailbox: &str) -> Vec<u32> {
        let m = self.mailbox(mailbox).await;
        self.store
            .messages(m.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect()
    }

    fn blob_files(&self) -> usize {
        (self.bodies)()
    }
}

fn change(op: FlagOp, flags: Flags, keywords: &[&str]) -> FlagChange {
    FlagChange {
        op,
        flags,
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
    }
}

pub async fn flags_change_with_one_modseq_and_only_when_they_change(t: T) {
    let inbox = t.mailbox("INBOX").await;
    for i in 0..3 {
        t.add("INBOX", &format!("m{i}"), Flags::empty()).await;
    }
    let before = t.mailbox("INBOX").await.highestmodseq;
    let r = t
        .store
        .store_flags(
            inbox.id,
            &[1, 2, 99],
            &change(FlagOp::Add, Flags::SEEN, &["$Label1", "$label1"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated.len(), 2);
    assert!(
        r.updated
            .iter()
            .all(|u| u.modseq == before + 1 && u.keywords == vec!["$Label1".to_string()])
    );
    // Setting what is already set changes nothing, not even MODSEQ.
    let r = t
        .store
        .store_flags(inbox.id, &[1], &change(FlagOp::Add, Flags::SEEN, &[]), None)
        .await
        .unwrap();
    assert!(r.updated.is_empty());
    assert_eq!(t.mailbox("INBOX").await.highestmodseq, before + 1);
    // Replace and remove, keywords matched without case.
    t.store
        .store_flags(
            inbox.id,
            &[1],
            &change(FlagOp::Replace, Flags::FLAGGED, &["Work"]),
            None,
        )
        .await
        .unwrap();
    t.store
        .store_flags(
            inbox.id,
            &[2],
            &change(FlagOp::Remove, Flags::SEEN, &["$LABEL1"]),
            None,
        )
        .await
        .unwrap();
    let msgs = t.store.messages(inbox.id).await.unwrap();
    assert_eq!(
        (msgs[0].flags, msgs[0].keywords.clone()),
        (Flags::FLAGGED, vec!["Work".to_string()])
    );
    assert_eq!(
        (msgs[1].flags, msgs[1].keywords.clone()),
        (Flags::empty(), vec![])
    );
    // UNCHANGEDSINCE: message 1 changed after `before`, message 3 did not.
    let r = t
        .store
        .store_flags(
            inbox.id,
            &[1, 3],
            &change(FlagOp::Add, Flags::DELETED, &[]),
            Some(before),
        )
        .await
        .unwrap();
    assert_eq!(r.refused, vec![1]);
    assert_eq!(r.updated.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![3]);
}

pub async fn expunge_records_vanished_uids_and_frees_unshared_blobs(t: T) {
    let inbox = t.mailbox("INBOX").await;
    let archive = t
        .store
        .create_mailbox(t.account.id, "Archive", None)
        .await
        .unwrap();
    for i in 0..4 {
        t.add("INBOX", &format!("e{i}"), Flags::empty()).await;
    }
    let copied = t
        .store
        .copy_messages(inbox.id, &[2], archive.id)
        .await
        .unwrap();
    assert_eq!(copied.pairs, vec![(2, 1)]);
    assert_eq!(t.blob_files(), 4);
    let mark = t.mailbox("INBOX").await.highestmodseq;
    let gone = t.store.expunge(inbox.id, &[1, 2, 7], false).await.unwrap();
    assert_eq!(gone.uids, vec![1, 2]);
    // The expunge's MODSEQ is the mailbox's new one, answered to the caller.
    assert_eq!(gone.modseq, mark + 1);
    assert_eq!(t.uids("INBOX").await, vec![3, 4]);
    // Message 2's blob is still used by the copy in Archive.
    assert_eq!(t.blob_files(), 3);
    let delta = t.store.changes_since(inbox.id, mark, None).await.unwrap();
    assert_eq!(delta.expunged, vec![1, 2]);
    assert!(delta.changed.is_empty());
    assert_eq!(delta.highestmodseq, mark + 1);
    assert!(t.store.expunge(inbox.id, &[1], false).await.unwrap() == Expunged::default());
    assert_eq!(t.mailbox("INBOX").await.highestmodseq, mark + 1);
    // only_deleted: a message without \Deleted stays.
    t.store
        .store_flags(
            inbox.id,
            &[3],
            &change(FlagOp::Add, Flags::DELETED, &[]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        t.store.expunge(inbox.id, &[3, 4], true).await.unwrap().uids,
        vec![3]
    );
    assert_eq!(t.uids("INBOX").await, vec![4]);
}

pub async fn copy_keeps_flags_and_move_is_atomic(t: T) {
    let inbox = t.mailbox("INBOX").await;
    let junk = t.mailbox("Junk").await;
    t.add("INBOX", "a", Flags::SEEN).await;
    t.add("INBOX", "b", Flags::FLAGGED).await;
    t.add("INBOX", "c", Flags::empty()).await;
    let moved = t
        .store
        .move_messages(inbox.id, &[1, 3], junk.id)
        .await
        .unwrap();
    assert_eq!(moved.uidvalidity, junk.uidvalidity);
    assert_eq!(moved.pairs, vec![(1, 1), (3, 2)]);
    assert_eq!(t.uids("INBOX").await, vec![2]);
    assert_eq!(
        moved.source_modseq,
        t.mailbox("INBOX").await.highestmodseq,
        "a move answers the source's MODSEQ after the messages left"
    );
    let in_junk = t.store.messages(junk.id).await.unwrap();
    assert_eq!(
        in_junk.iter().map(|m| m.flags).collect::<Vec<_>>(),
        vec![Flags::SEEN, Flags::empty()]
    );
    let copy = t
        .store
        .copy_messages(inbox.id, &[2], junk.id)
        .await
        .unwrap();
    assert_eq!(copy.pairs, vec![(2, 3)]);
    assert_eq!(copy.source_modseq, 0, "a copy leaves the source's MODSEQ");
    assert_eq!(
        t.store.messages(junk.id).await.unwrap()[2].flags,
        Flags::FLAGGED
    );
    assert_eq!(
        t.uids("INBOX").await,
        vec![2],
        "copy leaves the source alone"
    );
}

pub async fn rename_takes_children_and_subscriptions_along(t: T) {
    let id = t.account.id;
    t.store
        .create_mailbox(id, "Work/Projects/Satchel", None)
        .await
        .unwrap();
    t.store
        .set_subscribed(id, "Work/Projects", true)
        .await
        .unwrap();
    let before = t.mailbox("Work/Projects").await;
    t.store
        .rename_mailbox(id, "Work", "Jobs/Old")
        .await
        .unwrap();
    let names: Vec<String> = t
        .store
        .list_mailboxes(id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for n in [
        "Jobs",
        "Jobs/Old",
        "Jobs/Old/Projects",
        "Jobs/Old/Projects/Satchel",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("Work")));
    let after = t.mailbox("Jobs/Old/Projects").await;
    assert_eq!(
        (after.id, after.uidvalidity),
        (before.id, before.uidvalidity)
    );
    assert!(after.subscribed);
    assert!(matches!(
        t.store.rename_mailbox(id, "Jobs", "Jobs/Inner").await,
        Err(Error::RenameIntoItself)
    ));
    assert!(matches!(
        t.store.rename_mailbox(id, "Jobs", "Sent").await,
        Err(Error::MailboxExists(_))
    ));
    assert!(matches!(
        t.store.rename_mailbox(id, "Nope", "X").await,
        Err(Error::NoMailbox(_))
    ));
}

pub async fn renaming_inbox_moves_its_messages(t: T) {
    t.add("INBOX", "one", Flags::SEEN).await;
    t.add("INBOX", "two", Flags::empty()).await;
    t.store
        .rename_mailbox(t.account.id, "inbox", "Old Mail")
        .await
        .unwrap();
    assert!(t.uids("INBOX").await.is_empty());
    assert_eq!(t.uids("Old Mail").await, vec![1, 2]);
    assert_eq!(
        t.add("INBOX", "three", Flags::empty()).await,
        3,
        "UIDs are never reused"
    );
}

pub async fn delete_keeps_inbox_and_subscriptions(t: T) {
    let id = t.account.id;
    assert!(matches!(
        t.store.delete_mailbox(id, "INBOX").await,
        Err(Error::InboxUndeletable)
    ));
    // The other default mailboxes are where filing puts mail: they stay,
    // under their names.
    for name in ["Junk", "Possible Junk", "Sent", "Drafts", "Trash"] {
        assert!(matches!(
            t.store.delete_mailbox(id, name).await,
            Err(Error::DefaultMailbox(n)) if n == name
        ));
        assert!(matches!(
            t.store.rename_mailbox(id, name, "Elsewhere").await,
            Err(Error::DefaultMailbox(_))
        ));
    }
    t.store.create_mailbox(id, "Archive", None).await.unwrap();
    t.store.set_subscribed(id, "Archive", true).await.unwrap();
    t.add("Archive", "x", Flags::empty()).await;
    let old = t.mailbox("Archive").await;
    t.store.delete_mailbox(id, "Archive").await.unwrap();
    assert!(t.store.mailbox(id, "Archive").await.unwrap().is_none());
    assert!(
        t.store
            .subscriptions(id)
            .await
            .unwrap()
            .contains(&"Archive".to_string())
    );
    assert_eq!(t.blob_files(), 0);
    let again = t.store.create_mailbox(id, "Archive", None).await.unwrap();
    assert!(
        again.uidvalidity > old.uidvalidity,
        "UIDVALIDITY is never reused"
    );
    t.store.set_subscribed(id, "Archive", false).await.unwrap();
    assert!(!t.mailbox("Archive").await.subscribed);
}

pub async fn status_counts_and_recent_goes_to_one_claimant(t: T) {
    let inbox = t.mailbox("INBOX").await;
    t.add("INBOX", "a", Flags::SEEN).await;
    t.add("INBOX", "b", Flags::DELETED).await;
    t.add("INBOX", "c", Flags::empty()).await;
    let s = t.store.status(inbox.id).await.unwrap();
    assert_eq!((s.messages, s.unseen, s.deleted, s.recent), (3, 2, 1, 3));
    assert_eq!(
        t.store.claim_recent(inbox.id, false).await.unwrap(),
        1..4,
        "a look takes nothing"
    );
    assert_eq!(
        t.store.claim_recent(inbox.id, true).await.unwrap(),
        1..4,
        "first claimant gets 1..3"
    );
    assert_eq!(
        t.store.claim_recent(inbox.id, true).await.unwrap(),
        4..4,
        "second gets none of them"
    );
    assert_eq!(t.store.status(inbox.id).await.unwrap().recent, 0);
    let empty = t.store.status(t.mailbox("Drafts").await.id).await.unwrap();
    assert_eq!(empty, MailboxStatus::default());
}

pub async fn changes_since_lists_new_and_changed_messages(t: T) {
    let inbox = t.mailbox("INBOX").await;
    t.add("INBOX", "a", Flags::empty()).await;
    let mark = t.mailbox("INBOX").await.highestmodseq;
    t.add("INBOX", "b", Flags::empty()).await;
    t.store
        .store_flags(inbox.id, &[1], &change(FlagOp::Add, Flags::SEEN, &[]), None)
        .await
        .unwrap();
    let d = t.store.changes_since(inbox.id, mark, None).await.unwrap();
    assert_eq!(
        d.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(d.uidnext, 3);
    let views = t.store.views(inbox.id, &[2, 1, 5]).await.unwrap();
    assert_eq!(views.iter().map(|v| v.0).collect::<Vec<_>>(), vec![1, 2]);
}

pub async fn expunge_records_are_pruned_and_answers_stay_right(t: T) {
    let inbox = t.mailbox("INBOX").await;
    let start = inbox.highestmodseq;
    for i in 0..6 {
        t.add("INBOX", &format!("p{i}"), Flags::empty()).await;
    }
    // Three expunges, each its own MODSEQ: UIDs 1, then 2, then 3 and 4.
    let first = t.store.expunge(inbox.id, &[1], false).await.unwrap().modseq;
    let second = t.store.expunge(inbox.id, &[2], false).await.unwrap().modseq;
    t.store.expunge(inbox.id, &[3, 4], false).await.unwrap();
    let all = t.store.changes_since(inbox.id, start, None).await.unwrap();
    assert_eq!(all.expunged, vec![1, 2, 3, 4]);
    assert!(all.expunged_complete);
    // Nothing is old yet: keeping 3 a mailbox drops the oldest record.
    let n = t.store.prune_expunged(0, 3).await.unwrap();
    assert_eq!(n, 1);
    let after = t.store.changes_since(inbox.id, start, None).await.unwrap();
    assert_eq!(after.expunged, vec![2, 3, 4]);
    assert!(!after.expunged_complete, "UID 1's record is gone");
    // From the pruned expunge's MODSEQ on, the answer is still exact.
    let exact = t.store.changes_since(inbox.id, first, None).await.unwrap();
    assert_eq!(exact.expunged, vec![2, 3, 4]);
    assert!(exact.expunged_complete);
    // By age: everything recorded before a moment in the future goes.
    let n = t
        .store
        .prune_expunged(store::unix_now() + 10, 1000)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let d = t.store.changes_since(inbox.id, second, None).await.unwrap();
    assert!(d.expunged.is_empty() && !d.expunged_complete);
    let now = t.mailbox("INBOX").await.highestmodseq;
    let d = t.store.changes_since(inbox.id, now, None).await.unwrap();
    assert!(d.expunged_complete, "nothing was forgotten after this");
    // New expunges are recorded again, and answered exactly.
    t.store.expunge(inbox.id, &[5], false).await.unwrap();
    let d = t.store.changes_since(inbox.id, now, None).await.unwrap();
    assert_eq!(d.expunged, vec![5]);
    assert!(d.expunged_complete);
    assert_eq!(t.store.prune_expunged(0, 1000).await.unwrap(), 0);
}

pub async fn sort_keys_are_kept_at_delivery_and_go_with_copies(t: T) {
    let inbox = t.mailbox("INBOX").await;
    let archive = t
        .store
        .create_mailbox(t.account.id, "Archive", None)
        .await
        .unwrap();
    t.add("INBOX", "Re: [dev] Budget", Flags::empty()).await;
    t.add("INBOX", "Lunch?", Flags::empty()).await;
    let all = SortParts {
        text: true,
        threads: true,
        fields: true,
    };
    let keys = t.store.sort_keys(inbox.id, all).await.unwrap();
    assert_eq!(keys.iter().map(|e| e.uid).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(keys[0].keys.subject, "BUDGET");
    assert!(keys[0].keys.reply);
    assert_eq!(keys[1].keys.subject, "LUNCH?");
    let fields = keys[1].keys.fields.as_deref().unwrap_or_default();
    assert_eq!(
        mime::sort::fields(fields).collect::<Vec<_>>(),
        vec![("subject", "LUNCH?")]
    );
    // Only what is asked for: dates alone carry no text.
    let dates = t
        .store
        .sort_keys(inbox.id, SortParts::default())
        .await
        .unwrap();
    assert_eq!(dates[0].keys.subject, "");
    assert_eq!(dates[0].keys.fields, None);
    assert_eq!(dates[0].internal_date, keys[0].internal_date);
    assert!(keys[0].size > 0 && keys[0].internal_date > 0);
    t.store
        .copy_messages(inbox.id, &[1], archive.id)
        .await
        .unwrap();
    let copied = t.store.sort_keys(archive.id, all).await.unwrap();
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0].keys, keys[0].keys);
    t.store.expunge(inbox.id, &[1, 2], false).await.unwrap();
    assert!(t.store.sort_keys(inbox.id, all).await.unwrap().is_empty());
    assert_eq!(
        t.store.sort_keys(archive.id, all).await.unwrap()[0].keys,
        keys[0].keys
    );
}

/// `states` and `sort_keys` may answer from lists kept between calls;
/// after every kind of change they must say what a fresh read says.
pub async fn kept_lists_follow_every_change(t: T) {
    let text = SortParts {
        text: true,
        threads: true,
        fields: false,
    };
    // The header fields are never kept: that read is always a fresh one.
    let fresh = SortParts {
        fields: true,
        ..text
    };
    let check = |step: &'static str| {
        let t = &t;
        async move {
            for name in ["INBOX", "Archive"] {
                let Some(m) = t.store.mailbox(t.account.id, name).await.unwrap() else {
                    continue;
                };
                let states = t.store.states(m.id).await.unwrap();
                let read: Vec<MessageState> = t
                    .store
                    .messages(m.id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(MessageState::from)
                    .collect();
                assert_eq!(*states, read, "{step}: states of {name}");
                let kept = t.store.sort_keys(m.id, text).await.unwrap();
                let mut read = (*t.store.sort_keys(m.id, fresh).await.unwrap()).clone();
                for e in &mut read {
                    e.keys.fields = None;
                }
                assert_eq!(*kept, read, "{step}: sort keys of {name}");
            }
        }
    };
    let inbox = t.mailbox("INBOX").await;
    for s in ["one", "Re: two", "three", "four"] {
        t.add("INBOX", s, Flags::empty()).await;
    }
    check("added").await;
    // Read with dates only first: the text keys are read again, not
    // taken as empty.
    t.store
        .sort_keys(inbox.id, SortParts::default())
        .await
        .unwrap();
    check("dates kept").await;
    t.add("INBOX", "five", Flags::SEEN).await;
    t.store
        .store_flags(
            inbox.id,
            &[2],
            &change(FlagOp::Add, Flags::FLAGGED, &["$Work"]),
            None,
        )
        .await
        .unwrap();
    check("flagged and one more").await;
    t.store.expunge(inbox.id, &[1, 3], false).await.unwrap();
    check("expunged").await;
    let archive = t
        .store
        .create_mailbox(t.account.id, "Archive", None)
        .await
        .unwrap();
    check("created").await;
    t.store
        .move_messages(inbox.id, &[2], archive.id)
        .await
        .unwrap();
    t.store
        .copy_messages(inbox.id, &[4], archive.id)
        .await
        .unwrap();
    check("moved and copied").await;
    // Re-created under the same name: nothing kept from the old one.
    t.store
        .delete_mailbox(t.account.id, "Archive")
        .await
        .unwrap();
    t.store
        .create_mailbox(t.account.id, "Archive", None)
        .await
        .unwrap();
    t.add("Archive", "new", Flags::empty()).await;
    check("re-created").await;
    // Expunge records pruned past what was kept: read again whole.
    t.add("INBOX", "six", Flags::empty()).await;
    t.store.expunge(inbox.id, &[4], false).await.unwrap();
    t.store
        .prune_expunged(store::unix_now() + 10, 0)
        .await
        .unwrap();
    check("pruned").await;
}

pub async fn accounts_can_have_their_own_pop3_delete_mode(t: T) {
    assert_eq!(t.account.pop3_delete, None);
    t.store
        .set_pop3_delete("OP@example.test", Some(Pop3Delete::Hide))
        .await
        .unwrap();
    let a = t
        .store
        .authenticate("op@example.test", "pw")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.pop3_delete, Some(Pop3Delete::Hide));
    t.store
        .set_pop3_delete("op@example.test", None)
        .await
        .unwrap();
    assert_eq!(
        t.store
            .account("op@example.test")
            .await
            .unwrap()
            .unwrap()
            .pop3_delete,
        None
    );
    assert!(matches!(
        t.store.set_pop3_delete("nobody@example.test", None).await,
        Err(Error::NoAccount(_))
    ));
}

pub async fn the_admin_role_usage_and_last_logins(t: T) {
    t.store.set_admin("OP@example.test", true).await.unwrap();
    assert!(
        t.store
            .account("op@example.test")
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
    assert!(matches!(
        t.store.set_admin("nobody@example.test", true).await,
        Err(Error::NoAccount(_))
    ));
    let other = t
        .store
        .create_account("quiet@example.test", "pw", false)
        .await
        .unwrap();
    t.add("INBOX", "one", Flags::empty()).await;
    t.add("Sent", "two", Flags::empty()).await;
    t.store.record_login(t.account.id, "pop3").await.unwrap();
    t.store.record_login(t.account.id, "imap").await.unwrap();
    t.store.record_login(t.account.id, "pop3").await.unwrap();
    let all = t.store.account_overview().await.unwrap();
    assert_eq!(all.len(), 2);
    let op = all.iter().find(|o| o.account.id == t.account.id).unwrap();
    assert!(op.account.is_admin);
    assert_eq!(op.messages, 2);
    // "Subject: one\r\n\r\none\r\n" and the same for two.
    assert_eq!(op.bytes, 2 * "Subject: one\r\n\r\none\r\n".len() as u64);
    let doors: Vec<&str> = op.logins.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(doors, ["imap", "pop3"]);
    assert!(op.logins.iter().all(|(_, at)| *at > 1_700_000_000));
    let quiet = all.iter().find(|o| o.account.id == other.id).unwrap();
    assert_eq!((quiet.messages, quiet.bytes, quiet.logins.len()), (0, 0, 0));

    t.store.set_admin("op@example.test", false).await.unwrap();
    assert!(
        !t.store
            .account("op@example.test")
            .await
            .unwrap()
            .unwrap()
            .is_admin
    );
}

pub async fn junk_report_settings_secrets_and_single_use_links(t: T) {
    assert_eq!((t.account.junk_report, t.account.junk_report_at), (None, 0));
    t.store
        .set_junk_report("op@example.test", Some(false))
        .await
        .unwrap();
    t.store
        .junk_report_sent(t.account.id, 1_800_000_000)
        .await
        .unwrap();
    // Never back: a report that ran late does not undo a later one.
    t.store
        .junk_report_sent(t.account.id, 1_700_000_000)
        .await
        .unwrap();
    let a = t.store.account("op@example.test").await.unwrap().unwrap();
    assert_eq!(
        (a.junk_report, a.junk_report_at),
        (Some(false), 1_800_000_000)
    );
    t.store
        .set_junk_report("op@example.test", None)
        .await
        .unwrap();
    let a = t.store.account("op@example.test").await.unwrap().unwrap();
    assert_eq!(a.junk_report, None);

    let key = t.store.secret("links", vec![1, 2, 3]).await.unwrap();
    assert_eq!(key, vec![1, 2, 3]);
    assert_eq!(
        t.store.secret("links", vec![9]).await.unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(t.store.secret("other", vec![9]).await.unwrap(), vec![9]);

    let later = 4_000_000_000;
    assert!(t.store.use_link("abc", later).await.unwrap());
    assert!(!t.store.use_link("abc", later).await.unwrap());
    assert!(t.store.use_link("abd", later).await.unwrap());
}

pub async fn the_trace_finds_by_address_message_id_and_time(t: T) {
    let entry = |at, from: &str, id: &str, rcpt: &str| TraceEntry {
        at,
        direction: "in".into(),
        door: "smtp".into(),
        client: "mx.remote.test [192.0.2.1]".into(),
        mail_from: from.into(),
        message_id: id.into(),
        subject: format!("About {id}"),
        auth: "spf=pass".into(),
        qid: String::new(),
        recipients: vec![TraceRecipient {
            rcpt: rcpt.into(),
            account: rcpt.into(),
            mailboxes: vec!["INBOX".into()],
            score: Some(12),
            reasons: "BAYES_20(-5)".into(),
            outcome: "delivered".into(),
            note: String::new(),
        }],
        answers: vec![],
    };
    t.store
        .record_trace(&entry(
            1_000,
            "a@remote.test",
            "one@remote.test",
            "op@example.test",
        ))
        .await
        .unwrap();
    t.store
        .record_trace(&entry(
            2_000,
            "b@remote.test",
            "two_%@remote.test",
            "other@example.test",
        ))
        .await
        .unwrap();
    let ids = |v: Vec<TraceEntry>| v.into_iter().map(|e| e.message_id).collect::<Vec<_>>();
    // Newest first; by sender, recipient, bracketed Message-ID, subject.
    assert_eq!(
        ids(t.store.search_trace("", 0, 10).await.unwrap()),
        ["two_%@remote.test", "one@remote.test"]
    );
    assert_eq!(
        ids(t.store.search_trace("A@Remote.test", 0, 10).await.unwrap()),
        ["one@remote.test"]
    );
    assert_eq!(
        ids(t.store.search_trace("other@example", 0, 10).await.unwrap()),
        ["two_%@remote.test"]
    );
    assert_eq!(
        ids(t
            .store
            .search_trace("<one@remote.test>", 0, 10)
            .await
            .unwrap()),
        ["one@remote.test"]
    );
    // LIKE's own characters are literal.
    assert_eq!(
        ids(t.store.search_trace("two_%", 0, 10).await.unwrap()),
        ["two_%@remote.test"]
    );
    assert!(t.store.search_trace("o_e", 0, 10).await.unwrap().is_empty());
    assert_eq!(
        ids(t.store.search_trace("", 1_500, 10).await.unwrap()),
        ["two_%@remote.test"]
    );
    let got = t.store.search_trace("one@", 0, 10).await.unwrap();
    assert_eq!(got[0].recipients[0].score, Some(12));
    assert_eq!(t.store.prune_trace(1_500).await.unwrap(), 1);
    assert_eq!(
        ids(t.store.search_trace("", 0, 10).await.unwrap()),
        ["two_%@remote.test"]
    );
}

pub async fn quotas_refuse_whole_writes_and_expunge_frees_room(t: T) {
    let new = |raw: &'static [u8]| NewMessage {
        raw,
        size: raw.len() as u64,
        flags: Flags::empty(),
        keywords: vec![],
        internal_date: InternalDate::now(),
        cache: MessageCache::default(),
        spam: None,
    };
    t.store.set_quota("OP@example.test", 0, 2).await.unwrap();
    t.add("INBOX", "one", Flags::empty()).await;
    t.add("INBOX", "two", Flags::empty()).await;
    let inbox = t.mailbox("INBOX").await;
    let trash = t.mailbox("Trash").await;
    let files = t.blob_files();
    // A third message: refused whole, no row and no body file left.
    assert!(matches!(
        t.store.append(inbox.id, new(b"Subject: 3\r\n\r\nthree\r\n")).await,
        Err(Error::OverQuota(a, _)) if a == "op@example.test"
    ));
    assert_eq!(t.uids("INBOX").await, [1, 2]);
    assert_eq!(t.blob_files(), files);
    // A copy adds mail and is refused; a move does not and goes through.
    assert!(matches!(
        t.store.copy_messages(inbox.id, &[1], trash.id).await,
        Err(Error::OverQuota(..))
    ));
    assert!(t.uids("Trash").await.is_empty());
    t.store
        .move_messages(inbox.id, &[1], trash.id)
        .await
        .unwrap();
    // Expunging frees room.
    let moved = t.uids("Trash").await;
    t.store.expunge(trash.id, &moved, false).await.unwrap();
    t.store
        .append(inbox.id, new(b"Subject: 4\r\n\r\nfour\r\n"))
        .await
        .unwrap();
    let u = t.store.usage(t.account.id).await.unwrap();
    assert_eq!((u.messages, u.quota_messages, u.quota_bytes), (2, 2, 0));
    assert!(u.full().is_some());

    // Storage: a batch that does not fit as a whole stores nothing.
    t.store
        .set_quota("op@example.test", u.bytes + 30, 0)
        .await
        .unwrap();
    let batch = vec![
        new(b"Subject: 5\r\n\r\nfive\r\n"),
        new(b"Subject: 6\r\n\r\nsix, which does not fit\r\n"),
    ];
    assert!(matches!(
        t.store.append_batch(inbox.id, batch).await,
        Err(Error::OverQuota(..))
    ));
    assert_eq!(t.uids("INBOX").await.len(), 2);
    t.store
        .append(inbox.id, new(b"Subject: 5\r\n\r\nfive\r\n"))
        .await
        .unwrap();
    // No quota: anything goes.
    t.store.set_quota("op@example.test", 0, 0).await.unwrap();
    t.add("INBOX", "seven", Flags::empty()).await;
    assert_eq!(t.store.usage(t.account.id).await.unwrap().full(), None);
    assert!(matches!(
        t.store.set_quota("nobody@example.test", 1, 1).await,
        Err(Error::NoAccount(_))
    ));
}

pub async fn bayes_counts_and_training_events(t: T) {
    let toks = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    t.store
        .bayes_train(0, &toks(&["viagra", "now", "quote\"d"]), true)
        .await
        .unwrap();
    t.store
        .bayes_train(0, &toks(&["meeting", "now"]), false)
        .await
        .unwrap();
    t.store
        .bayes_train(t.account.id.scope(), &toks(&["now"]), true)
        .await
        .unwrap();
    // The server's model alone: four tokens, one message of each kind.
    assert_eq!(
        t.store.model_summary().await.unwrap(),
        ModelSummary {
            tokens: 4,
            spam: 1,
            ham: 1
        }
    );
    let m = |totals, counts| ModelCounts { totals, counts };
    assert_eq!(
        t.store
            .bayes_counts(&[0], &toks(&["now", "viagra", "quote\"d", "unseen"]))
            .await
            .unwrap(),
        vec![m((1, 1), vec![(1, 1), (1, 0), (1, 0), (0, 0)])]
    );
    // Several models at once, each on its own; an untrained one knows nothing.
    assert_eq!(
        t.store
            .bayes_counts(&[t.account.id.scope(), 0, 999], &toks(&["now", "viagra"]))
            .await
            .unwrap(),
        vec![
            m((1, 0), vec![(1, 0), (0, 0)]),
            m((1, 1), vec![(1, 1), (1, 0)]),
            m((0, 0), vec![(0, 0), (0, 0)]),
        ]
    );
    assert_eq!(
        t.store.bayes_counts(&[0], &[]).await.unwrap(),
        vec![m((1, 1), vec![])]
    );

    let uid = t.add("INBOX", "train me", Flags::empty()).await;
    let blob = t.store.messages(t.mailbox("INBOX").await.id).await.unwrap()[0]
        .blob
        .clone();
    assert_eq!(uid, 1);
    let (inbox, junk) = (t.mailbox("INBOX").await.id, t.mailbox("Junk").await.id);
    t.store.move_messages(inbox, &[uid], junk).await.unwrap();
    let events = t.store.pending_training(10).await.unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (event.account, &event.blob, event.spam),
        (t.account.id, &blob, true)
    );
    // Until it is finished, the event stays (a trainer that dies loses nothing).
    assert_eq!(t.store.pending_training(10).await.unwrap(), events);
    t.store
        .finish_training(
            event,
            &[0, t.account.id.scope()],
            Some(&toks(&["trained"])),
            "Cheap pills",
        )
        .await
        .unwrap();
    assert!(
        t.store.pending_training(10).await.unwrap().is_empty(),
        "taken once"
    );
    let trained = toks(&["trained"]);
    let counts = async |scope: i64| {
        let c = t.store.bayes_counts(&[scope], &trained).await.unwrap();
        (c[0].totals, c[0].counts.clone())
    };
    assert_eq!(counts(0).await, ((2, 1), vec![(1, 0)]));
    assert_eq!(counts(t.account.id.scope()).await, ((2, 0), vec![(1, 0)]));
    // Finishing it again (a second trainer) teaches nothing twice.
    t.store
        .finish_training(event, &[0], Some(&toks(&["trained"])), "Cheap pills")
        .await
        .unwrap();
    assert_eq!(counts(0).await, ((2, 1), vec![(1, 0)]));
    // Logged once, for the account and for all; the account's own model
    // has its size.
    let log = t.store.training_log(Some(t.account.id), 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].spam && log[0].subject == "Cheap pills" && log[0].account == t.account.address);
    assert_eq!(t.store.training_log(None, 10).await.unwrap(), log);
    let own = t
        .store
        .model_summary_of(t.account.id.scope())
        .await
        .unwrap();
    assert_eq!((own.spam, own.ham), (2, 0));
    assert!(own.tokens >= 1, "{own:?}");

    // A removed account's model goes with it: its id may come back.
    t.store.remove_account(&t.account.address).await.unwrap();
    assert_eq!(counts(t.account.id.scope()).await, ((0, 0), vec![(0, 0)]));
}

pub async fn copies_of_a_delivery_with_their_spam_notes(t: T) {
    let bob = t
        .store
        .create_account("bob@example.test", "pw", false)
        .await
        .unwrap();
    let inbox = t.mailbox("INBOX").await;
    let bob_junk = t.store.mailbox(bob.id, "Junk").await.unwrap().unwrap();
    let copy = |raw: &'static [u8], score| NewMessage {
        raw,
        size: raw.len() as u64,
        flags: Flags::empty(),
        keywords: vec![],
        internal_date: InternalDate::now(),
        cache: MessageCache::default(),
        spam: Some(SpamNote {
            score,
            reasons: format!("TEST({score})"),
        }),
    };
    let same = b"Subject: one\r\n\r\nbody\r\n";
    let done = t
        .store
        .append_copies(vec![
            (inbox.id, copy(same, 5)),
            (bob_junk.id, copy(same, 120)),
        ])
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(
        (done[0].mailbox_id, done[1].mailbox_id),
        (inbox.id, bob_junk.id)
    );
    let a = t.store.messages(inbox.id).await.unwrap();
    let b = t.store.messages(bob_junk.id).await.unwrap();
    assert_eq!(a[0].blob, b[0].blob, "byte-equal copies share one blob");
    assert_eq!(
        t.store.spam_note(bob_junk.id, done[1].uid).await.unwrap(),
        Some(SpamNote {
            score: 120,
            reasons: "TEST(120)".into()
        })
    );
    assert_eq!(
        t.store
            .spam_note(inbox.id, done[0].uid)
            .await
            .unwrap()
            .unwrap()
            .score,
        5
    );
    // Unscored mail has no note; a moved message keeps its own.
    let plain = t.add("INBOX", "appended", Flags::empty()).await;
    assert_eq!(t.store.spam_note(inbox.id, plain).await.unwrap(), None);
    let bob_inbox = t.store.mailbox(bob.id, "INBOX").await.unwrap().unwrap();
    let moved = t
        .store
        .move_messages(bob_junk.id, &[done[1].uid], bob_inbox.id)
        .await
        .unwrap();
    let uid = moved.pairs[0].1;
    assert_eq!(
        t.store
            .spam_note(bob_inbox.id, uid)
            .await
            .unwrap()
            .unwrap()
            .score,
        120
    );
}

pub async fn allow_and_block_lists_and_correspondents(t: T) {
    let id = t.account.id;
    t.store
        .set_spam_list(id, "Bob@Example.COM", Some(true))
        .await
        .unwrap();
    t.store
        .set_spam_list(id, "@spam.test", Some(false))
        .await
        .unwrap();
    t.store
        .set_spam_list(id, "@spam.test", Some(false))
        .await
        .unwrap();
    assert_eq!(
        t.store.spam_lists(id).await.unwrap(),
        vec![
            ListedSender {
                pattern: "@spam.test".into(),
                allow: false
            },
            ListedSender {
                pattern: "bob@example.com".into(),
                allow: true
            },
        ]
    );
    t.store
        .set_spam_list(id, "bob@example.com", None)
        .await
        .unwrap();
    assert_eq!(t.store.spam_lists(id).await.unwrap().len(), 1);
    for bad in [
        "example.com",
        "@",
        "@nodot",
        "a b@example.com",
        "<x@example.com>",
    ] {
        assert!(
            matches!(
                t.store.set_spam_list(id, bad, Some(true)).await,
                Err(Error::InvalidAddress(..))
            ),
            "{bad}"
        );
    }

    // The senders whose remote images are always shown: the same patterns.
    t.store
        .set_image_sender(id, "News@Shop.example", true)
        .await
        .unwrap();
    t.store
        .set_image_sender(id, "@shop.example", true)
        .await
        .unwrap();
    t.store
        .set_image_sender(id, "@shop.example", true)
        .await
        .unwrap();
    assert_eq!(
        t.store.image_senders(id).await.unwrap(),
        vec!["@shop.example".to_string(), "news@shop.example".to_string()]
    );
    t.store
        .set_image_sender(id, "news@shop.example", false)
        .await
        .unwrap();
    assert_eq!(
        t.store.image_senders(id).await.unwrap(),
        vec!["@shop.example".to_string()]
    );
    assert!(matches!(
        t.store.set_image_sender(id, "shop.example", true).await,
        Err(Error::InvalidAddress(..))
    ));

    assert_eq!(t.store.sent_to(id, "carol@example.net").await.unwrap(), 0);
    let to = vec![
        "Carol@Example.net".to_string(),
        "dave@example.net".to_string(),
    ];
    t.store.record_correspondents(id, &to).await.unwrap();
    t.store.record_correspondents(id, &to[..1]).await.unwrap();
    assert_eq!(t.store.sent_to(id, "carol@example.net").await.unwrap(), 2);
    assert_eq!(t.store.sent_to(id, "DAVE@example.net").await.unwrap(), 1);
    // Completion: most written to first, bounded.
    assert_eq!(
        t.store.correspondents(id, 10).await.unwrap(),
        ["carol@example.net", "dave@example.net"]
    );
    assert_eq!(t.store.correspondents(id, 1).await.unwrap().len(), 1);
}

pub async fn sieve_scripts_one_active_at_most(t: T) {
    let id = t.account.id;
    assert_eq!(t.store.active_sieve_script(id).await.unwrap(), None);
    t.store.put_sieve_script(id, "main", "keep;").await.unwrap();
    t.store
        .put_sieve_script(id, "vacation", "discard;")
        .await
        .unwrap();
    t.store.put_sieve_script(id, "main", "stop;").await.unwrap();
    t.store
        .activate_sieve_script(id, Some("main"))
        .await
        .unwrap();
    t.store
        .activate_sieve_script(id, Some("vacation"))
        .await
        .unwrap();
    assert_eq!(
        t.store.active_sieve_script(id).await.unwrap(),
        Some(("vacation".into(), "discard;".into()))
    );
    assert_eq!(
        t.store.sieve_scripts(id).await.unwrap(),
        vec![
            SieveScript {
                name: "main".into(),
                active: false,
                size: 5
            },
            SieveScript {
                name: "vacation".into(),
                active: true,
                size: 8
            },
        ]
    );
    assert!(matches!(
        t.store.delete_sieve_script(id, "vacation").await,
        Err(Error::ScriptActive(_))
    ));
    assert!(matches!(
        t.store.activate_sieve_script(id, Some("nope")).await,
        Err(Error::NoScript(_))
    ));
    assert!(matches!(
        t.store.rename_sieve_script(id, "main", "vacation").await,
        Err(Error::ScriptExists(_))
    ));
    t.store
        .rename_sieve_script(id, "vacation", "away")
        .await
        .unwrap();
    assert_eq!(
        t.store.active_sieve_script(id).await.unwrap().unwrap().0,
        "away"
    );
    t.store.activate_sieve_script(id, None).await.unwrap();
    assert_eq!(t.store.active_sieve_script(id).await.unwrap(), None);
    t.store.delete_sieve_script(id, "away").await.unwrap();
    assert_eq!(t.store.sieve_script(id, "away").await.unwrap(), None);
    assert_eq!(
        t.store.sieve_script(id, "main").await.unwrap().as_deref(),
        Some("stop;")
    );
    for bad in ["", "a/b", "tab\there", &"x".repeat(129)] {
        assert!(matches!(
            t.store.put_sieve_script(id, bad, "keep;").await,
            Err(Error::InvalidScriptName(..))
        ));
    }
}

pub async fn concurrent_catch_ups_share_reads_but_never_miss_a_change(t: T) {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let store = t.store.clone();
    let inbox = t.mailbox("INBOX").await;
    let committed = std::sync::Arc::new(AtomicU32::new(0));
    let done = std::sync::Arc::new(AtomicBool::new(false));
    // Sessions asking all the time what changed since the start, as IDLE
    // sessions do after each delivery: each answer holds at least every
    // append that had returned before the question was asked.
    let newest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for i in 0..12 {
        let (store, committed, done) = (store.clone(), committed.clone(), done.clone());
        let newest = newest.clone();
        readers.push(tokio::spawn(async move {
            let mut asked = 0;
            while !done.load(Ordering::SeqCst) {
                let floor = committed.load(Ordering::SeqCst);
                // Half ask for everything committed; half name the change
                // they act on (and may share a read already under way).
                let covering = (i % 2 == 1).then(|| newest.load(Ordering::SeqCst));
                let delta = store.changes_since(inbox.id, 0, covering).await.unwrap();
                let seen = delta.changed.last().map_or(0, |m| m.uid);
                assert!(
                    seen >= floor,
                    "asked after UID {floor} was stored, got up to {seen}"
                );
                if let Some(m) = covering {
                    assert!(delta.highestmodseq >= m, "asked to cover {m}: {delta:?}");
                }
                asked += 1;
            }
            asked
        }));
    }
    for round in 1..=150u32 {
        let uid = t.add("INBOX", &format!("m{round}"), Flags::empty()).await;
        let modseq = t
            .store
            .mailbox_by_id(inbox.id)
            .await
            .unwrap()
            .unwrap()
            .highestmodseq;
        newest.store(modseq, Ordering::SeqCst);
        committed.store(uid, Ordering::SeqCst);
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
}

/// Every copy and move records its own training, in the store: one event a
/// message into Junk (spam) or out of Junk and Possible Junk (ham), none
/// into Trash or between the two junk boxes, whichever door moved it.
pub async fn copies_and_moves_record_their_training(t: T) {
    let id = async |name: &str| t.mailbox(name).await.id;
    let (inbox, junk, possible, trash, sent) = (
        id("INBOX").await,
        id("Junk").await,
        id("Possible Junk").await,
        id("Trash").await,
        id("Sent").await,
    );
    let events = async || {
        t.store
            .pending_training(100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.blob, e.spam))
            .collect::<Vec<_>>()
    };
    let blob_of = async |mailbox: MailboxId, uid: u32| {
        t.store.details(mailbox, &[uid]).await.unwrap()[0]
            .blob
            .clone()
    };
    let a = t.add("INBOX", "a", Flags::empty()).await;
    let b = t.add("INBOX", "b", Flags::empty()).await;
    let c = t.add("INBOX", "c", Flags::empty()).await;
    let (blob_a, blob_b, blob_c) = (
        blob_of(inbox, a).await,
        blob_of(inbox, b).await,
        blob_of(inbox, c).await,
    );

    // MOVE into Junk: one spam event for each message moved.
    let moved = t.store.move_messages(inbox, &[a, b], junk).await.unwrap();
    assert_eq!(
        events().await,
        vec![(blob_a.clone(), true), (blob_b.clone(), true)]
    );
    // COPY into Junk, then EXPUNGE of the original: the copy trains, the
    // expunge does not.
    t.store.copy_messages(inbox, &[c], junk).await.unwrap();
    t.store.expunge(inbox, &[c], false).await.unwrap();
    assert_eq!(events().await.len(), 3);
    assert_eq!(events().await[2], (blob_c.clone(), true));
    // Nothing: UIDs that are not there, within Junk, Junk to Possible
    // Junk, and into Trash.
    t.store.move_messages(inbox, &[99], junk).await.unwrap();
    t.store
        .copy_messages(junk, &[moved.pairs[0].1], junk)
        .await
        .unwrap();
    let in_junk = t.uids("Junk").await;
    t.store
        .move_messages(junk, &in_junk[..1], possible)
        .await
        .unwrap();
    t.store
        .move_messages(junk, &in_junk[1..2], trash)
        .await
        .unwrap();
    assert_eq!(events().await.len(), 3, "no training for these moves");
    // Out of Junk or Possible Junk into a mailbox but Trash is ham.
    let rest = t.uids("Junk").await;
    t.store.move_messages(junk, &rest[..1], sent).await.unwrap();
    let maybe = t.uids("Possible Junk").await;
    t.store
        .move_messages(possible, &maybe, inbox)
        .await
        .unwrap();
    let hams: Vec<bool> = events().await[3..].iter().map(|e| e.1).collect();
    assert_eq!(hams, vec![false, false]);
    // Trash to Junk is spam again; Trash to INBOX is nothing.
    let trashed = t.uids("Trash").await;
    t.store.copy_messages(trash, &trashed, inbox).await.unwrap();
    assert_eq!(events().await.len(), 5);
    t.store.move_messages(trash, &trashed, junk).await.unwrap();
    assert_eq!(events().await.len(), 6);
    assert!(events().await[5].1);
}

pub async fn the_queue_shares_the_body_of_a_stored_copy(t: T) {
    let raw = "Subject: q1\r\n\r\nq1\r\n";
    t.add("Sent", "q1", Flags::SEEN).await;
    assert_eq!(t.blob_files(), 1);
    let to = vec!["far@remote.test".to_string()];
    let queue = |qid: &'static str, prefix: &'static [u8], raw: &'static str| {
        let (store, account, to) = (t.store.clone(), t.account.id, to.clone());
        async move {
            store
                .enqueue(NewQueued {
                    qid,
                    sender: "op@example.test",
                    account: Some(account),
                    prefix,
                    raw: raw.as_bytes(),
                    recipients: &to,
                })
                .await
                .unwrap()
        }
    };
    // The same bytes as the Sent copy: no second body.
    queue("Q1", b"Received: by us\r\n", raw).await;
    assert_eq!(t.blob_files(), 1);
    // Bytes no message has: a body of its own.
    queue("Q2", b"", "Subject: q2\r\n\r\nq2\r\n").await;
    assert_eq!(t.blob_files(), 2);
    let queued = t.store.queue().await.unwrap();
    let q1 = queued.iter().find(|q| q.qid == "Q1").unwrap();
    let travels = format!("Received: by us\r\n{raw}");
    assert_eq!(q1.size, travels.len() as u64);
    assert_eq!(t.store.read_queued(q1).await.unwrap(), travels.as_bytes());
    let q2 = queued.iter().find(|q| q.qid == "Q2").unwrap();
    assert_eq!(
        t.store.read_queued(q2).await.unwrap(),
        b"Subject: q2\r\n\r\nq2\r\n"
    );
    // The Sent copy expunged: the queue still holds the body.
    let sent = t.mailbox("Sent").await;
    t.store.expunge(sent.id, &[1], false).await.unwrap();
    t.store.maintenance().await.unwrap();
    assert_eq!(t.blob_files(), 2);
    let q1 = t
        .store
        .queue()
        .await
        .unwrap()
        .into_iter()
        .find(|q| q.qid == "Q1")
        .unwrap();
    assert_eq!(t.store.read_queued(&q1).await.unwrap(), travels.as_bytes());
    // Delivered: nothing holds either body any more.
    for q in t.store.claim_due(unix_now() + 1, 10).await.unwrap() {
        let done: Vec<Attempt> = q
            .recipients
            .iter()
            .map(|r| Attempt {
                address: r.address.clone(),
                outcome: Outcome::Delivered,
                answer: "250 ok".into(),
            })
            .collect();
        t.store.record_attempts(q.id, &done).await.unwrap();
    }
    assert!(t.store.queue().await.unwrap().is_empty());
    t.store.maintenance().await.unwrap();
    assert_eq!(t.blob_files(), 0);
}

pub async fn list_pages_and_unseen_counts_read_only_what_they_show(t: T) {
    for i in 0..5 {
        let flags = if i % 2 == 0 {
            Flags::SEEN
        } else {
            Flags::empty()
        };
        t.add("INBOX", &format!("n{i}"), flags).await;
    }
    t.add("Junk", "j", Flags::empty()).await;
    let inbox = t.mailbox("INBOX").await;
    let (page, total) = t.store.newest(inbox.id, 0, 2).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|m| m.uid).collect::<Vec<_>>(), [5, 4]);
    let (page, _) = t.store.newest(inbox.id, 4, 2).await.unwrap();
    assert_eq!(page.iter().map(|m| m.uid).collect::<Vec<_>>(), [1]);
    let junk = t.mailbox("Junk").await;
    let mut unseen = t.store.unseen_counts(t.account.id).await.unwrap();
    unseen.sort_by_key(|(m, _)| m.0);
    let mut want = vec![(inbox.id, 2), (junk.id, 1)];
    want.sort_by_key(|(m, _)| m.0);
    assert_eq!(unseen, want);
    // Read: the count follows.
    t.store
        .store_flags(inbox.id, &[2], &change(FlagOp::Add, Flags::SEEN, &[]), None)
        .await
        .unwrap();
    let unseen = t.store.unseen_counts(t.account.id).await.unwrap();
    assert!(unseen.contains(&(inbox.id, 1)), "{unseen:?}");
}

/// Runs every test above on one backend: `every_test!(open)`, where
/// `open` is an `async fn() -> Backend` that makes a fresh, empty store.
pub async fn login_failures_known_addresses_and_web_sessions(t: T) {
    use std::time::Duration;
    let ip = |i: u8| std::net::IpAddr::from([192, 0, 2, i]);
    let window = Duration::from_secs(900);
    // Per address and per name (in any case), counted in one window.
    assert_eq!(
        t.store
            .login_failed(Some("Op@Example.test"), ip(1), window)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        t.store
            .login_failed(Some("op@example.test"), ip(1), window)
            .await
            .unwrap(),
        2
    );
    assert_eq!(t.store.login_failed(None, ip(2), window).await.unwrap(), 1);
    let g = t
        .store
        .login_guard("OP@example.test", ip(1), window)
        .await
        .unwrap();
    assert_eq!(
        g,
        LoginGuard {
            failures: 2,
            known_at: None
        }
    );
    // A window that has passed starts the count again.
    let none = Duration::ZERO;
    assert_eq!(
        t.store
            .login_guard("op@example.test", ip(1), none)
            .await
            .unwrap()
            .failures,
        0
    );
    assert_eq!(t.store.login_failed(None, ip(1), none).await.unwrap(), 1);
    // Turns are spaced from the last one taken; a name never failed at has
    // no turn to wait for.
    let spacing = Duration::from_secs(5);
    let first = t
        .store
        .login_turn("op@example.test", spacing)
        .await
        .unwrap();
    let second = t
        .store
        .login_turn("op@example.test", spacing)
        .await
        .unwrap();
    assert!(first <= Duration::from_millis(100), "{first:?}");
    assert!(
        second >= Duration::from_secs(4) && second <= spacing,
        "{second:?}"
    );
    assert_eq!(
        t.store
            .login_turn("nobody@example.test", spacing)
            .await
            .unwrap(),
        Duration::ZERO
    );
    // Known addresses: the newest `keep` of each name.
    for i in 1..=4 {
        t.store
            .login_succeeded("op@example.test", ip(i), 3)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let known = |i| {
        let store = t.store.clone();
        async move {
            store
                .login_guard("op@example.test", ip(i), window)
                .await
                .unwrap()
                .known_at
        }
    };
    assert!(known(1).await.is_none(), "the oldest of four went");
    assert!(known(4).await.is_some());
    assert_eq!(t.store.prune_logins(window, window).await.unwrap(), 0);
    assert!(
        t.store
            .prune_logins(Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            >= 4
    );
    assert_eq!(
        t.store
            .login_guard("op@example.test", ip(4), window)
            .await
            .unwrap(),
        LoginGuard::default()
    );

    // Web sessions: found with their account, listed, ended.
    let open = |key: &'static str, agent: &'static str| {
        let store = t.store.clone();
        let account = t.account.id;
        async move {
            let s = NewWebSession {
                key,
                account,
                csrf: "c",
                client: "192.0.2.9",
                agent,
            };
            store.open_web_session(&s, 2).await.unwrap()
        }
    };
    let day = Duration::from_secs(86_400);
    open("k1", "one").await;
    let s = t.store.web_session("k1", day).await.unwrap().unwrap();
    assert_eq!(
        (
            s.account.address.as_str(),
            s.csrf.as_str(),
            s.agent.as_str()
        ),
        ("op@example.test", "c", "one")
    );
    assert!(t.store.web_session("nope", day).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(5)).await;
    open("k2", "two\0agent").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    open("k3", "three").await;
    let listed: Vec<String> = t
        .store
        .web_sessions_of(t.account.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(
        listed,
        ["k3", "k2"],
        "two at most per account here, the oldest went"
    );
    assert_eq!(
        t.store
            .end_web_sessions(t.account.id, Some("k3"))
            .await
            .unwrap(),
        1
    );
    assert!(t.store.end_web_session("k3").await.unwrap());
    assert!(!t.store.end_web_session("k3").await.unwrap());
    // Idle too long: ended when asked for, or by the sweep.
    open("k4", "four").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        t.store
            .web_session("k4", Duration::from_millis(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.store.web_session("k4", day).await.unwrap().is_none(),
        "ended, not only hidden"
    );
    open("k5", "five").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        t.store
            .prune_web_sessions(Duration::from_millis(1))
            .await
            .unwrap(),
        1
    );
    // Sessions go with their account.
    open("k6", "six").await;
    t.store.remove_account("op@example.test").await.unwrap();
    assert!(t.store.web_session("k6", day).await.unwrap().is_none());
}

#[macro_export]
macro_rules! every_test {
    ($open:path) => {
        $crate::every_test!(@each $open; flags_change_with_one_modseq_and_only_when_they_change, expunge_records_vanished_uids_and_frees_unshared_blobs, copy_keeps_flags_and_move_is_atomic, rename_takes_children_and_subscriptions_along, renaming_inbox_moves_its_messages, delete_keeps_inbox_and_subscriptions, status_counts_and_recent_goes_to_one_claimant, changes_since_lists_new_and_changed_messages, expunge_records_are_pruned_and_answers_stay_right, sort_keys_are_kept_at_delivery_and_go_with_copies, kept_lists_follow_every_change, accounts_can_have_their_own_pop3_delete_mode, the_admin_role_usage_and_last_logins, junk_report_settings_secrets_and_single_use_links, the_trace_finds_by_address_message_id_and_time, quotas_refuse_whole_writes_and_expunge_frees_room, bayes_counts_and_training_events, copies_of_a_delivery_with_their_spam_notes, allow_and_block_lists_and_correspondents, sieve_scripts_one_active_at_most, concurrent_catch_ups_share_reads_but_never_miss_a_change, copies_and_moves_record_their_training, the_queue_shares_the_body_of_a_stored_copy, list_pages_and_unseen_counts_read_only_what_they_show, login_failures_known_addresses_and_web_sessions);
    };
    (@each $open:path; $($name:ident),*) => {
        $(
            // Several threads: some tests race sessions against writers.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::$name(suite::T::new($open().await).await).await
            }
        )*
    };
}
