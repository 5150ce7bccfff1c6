//! The embedded backend: SQLite (WAL, synchronous=FULL) for the index, on
//! threads of its own ([`engine`]), [`BlobStore`] files for bodies, a
//! broadcast channel for the change feed and a small `changes` table that
//! carries wake-ups between processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use tokio::sync::broadcast;

use crate::blob::{BlobStore, Staged};
use crate::names::{normalize_address, normalize_mailbox_name};
use crate::types::*;
use crate::{Error, MailStore, Result, WATCH_INTERVAL, password, unix_now};
use engine::{Engine, Tx, all, exec, one};

mod check;
mod engine;
mod outbound;

pub use check::{CheckReport, Finding};

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_bayes.sql"),
    include_str!("../migrations/sqlite/0003_spam_personal.sql"),
    include_str!("../migrations/sqlite/0004_sieve.sql"),
    include_str!("../migrations/sqlite/0005_expunged_modseq.sql"),
    include_str!("../migrations/sqlite/0006_outbound.sql"),
    include_str!("../migrations/sqlite/0007_sent_copy.sql"),
];

/// How long wake-ups stay in the `changes` table.
const CHANGE_TTL_SECS: i64 = 120;
/// How long the collector task waits after a wake-up, so that a burst of
/// expunges is collected in one pass.
const COLLECT_DELAY: Duration = Duration::from_millis(100);
/// Blobs checked per write transaction by the collector and the sweep.
const GC_BATCH: i64 = 500;
/// Blob files younger than this are never swept: their writer may still be
/// on its way to commit.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Of the blob hashes in `?1` (a JSON array), those no row refers to: the
/// one list of what holds a blob, for the collector, the sweep and the
/// check.
const UNREFERENCED: &str = "SELECT value AS hash FROM json_each(?1) WHERE NOT EXISTS \
     (SELECT 1 FROM messages WHERE messages.blob = value) AND NOT EXISTS \
     (SELECT 1 FROM training WHERE training.blob = value) AND NOT EXISTS \
     (SELECT 1 FROM queue WHERE queue.blob = value)";

/// The per-account settings that override the server's.
#[derive(Clone, Copy)]
enum AccountSetting {
    Pop3Delete,
    SentCopy,
}

#[derive(Clone)]
pub struct SqliteStore {
    /// The index's threads: this process's writes run there one at a time,
    /// committed in groups, and its reads beside them.
    db: Engine,
    blobs: BlobStore,
    feed: broadcast::Sender<Change>,
    /// Tags this process's rows in `changes`, so its watcher skips them.
    origin: i64,
    watching: Arc<AtomicBool>,
    /// Set once a collector task runs: expunges then only wake it.
    collector: Arc<std::sync::OnceLock<Arc<tokio::sync::Notify>>>,
    /// Reads of a mailbox's changes that callers asking the same may join.
    flights: Arc<Flights>,
    /// Logins verified recently (see [`password::Verified`]).
    logins: Arc<password::Verified>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: `dir/index.sqlite` and
    /// `dir/blobs/`.
    pub async fn open(dir: &Path) -> Result<SqliteStore> {
        let db_path = dir.join("index.sqlite");
        make_private(dir, &db_path)?;
        let path = db_path.clone();
        let db = Engine::open(&db_path, move |conn| migrate(conn, &path)).await?;
        // SQLite gives its -wal and -shm files the index's mode; files an
        // older version left readable are tightened too.
        for suffix in ["-wal", "-shm"] {
            let mut name = db_path.clone().into_os_string();
            name.push(suffix);
            tighten(Path::new(&name), 0o600)?;
        }
        let blobs = BlobStore::open(dir.join("blobs"))?;
        blobs.clean_temp();
        let (feed, _) = broadcast::channel(1024);
        Ok(SqliteStore {
            db,
            blobs,
            feed,
            origin: random_origin(),
            watching: Arc::new(AtomicBool::new(false)),
            collector: Arc::new(std::sync::OnceLock::new()),
            flights: Arc::new(Flights::default()),
            logins: Arc::new(password::Verified::new()),
        })
    }

    /// Deletes blob files that no message refers to any more, in batches,
    /// each under the index write lock so no append can re-use a blob while
    /// it is unlinked.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            let blobs = self.blobs.clone();
            // Alone: only committed rows may decide that a file goes.
            let batch = self
                .db
                .write_alone(move |c| {
                    let batch: Vec<String> =
                        all(c, "SELECT hash FROM blob_gc LIMIT ?1", [GC_BATCH], |r| {
                            r.get(0)
                        })?;
                    if batch.is_empty() {
                        return Ok(None);
                    }
                    let list = string_json(&batch);
                    let removed = unlink_unreferenced(c, &blobs, &list)?;
                    exec(
                        c,
                        "DELETE FROM blob_gc WHERE hash IN (SELECT value FROM json_each(?1))",
                        [&list],
                    )?;
                    Ok(Some(removed))
                })
                .await?;
            match batch {
                Some(n) => removed += n,
                None => return Ok(removed),
            }
        }
    }

    /// After an expunge or deletion: wakes the collector task, or collects
    /// now when there is none.
    async fn collect_soon(&self) -> Result<()> {
        match self.collector.get() {
            Some(wake) => {
                wake.notify_one();
                Ok(())
            }
            None => self.collect_garbage().await.map(|_| ()),
        }
    }

    /// One of an account's own settings (`None`: the server's applies).
    async fn set_account_setting(
        &self,
        address: &str,
        setting: AccountSetting,
        value: Option<&'static str>,
    ) -> Result<()> {
        let address = normalize_address(address)?;
        let sql = match setting {
            AccountSetting::Pop3Delete => "UPDATE accounts SET pop3_delete = ?1 WHERE address = ?2",
            AccountSetting::SentCopy => "UPDATE accounts SET sent_copy = ?1 WHERE address = ?2",
        };
        self.db
            .write(move |c| match exec(c, sql, params![value, address])? {
                0 => Err(Error::NoAccount(address)),
                _ => Ok(()),
            })
            .await
    }

    /// Deletes blob files that no row refers to and that are older than
    /// `age`: left behind by a writer that died between putting the file in
    /// place and committing its index rows.
    pub async fn sweep_orphans(&self, age: Duration) -> Result<usize> {
        let blobs = self.blobs.clone();
        let candidates = tokio::task::spawn_blocking(move || blobs.older_than(age))
            .await
            .map_err(|e| Error::Corrupt(format!("blob sweep failed: {e}")))?;
        let mut removed = 0;
        for chunk in candidates.chunks(GC_BATCH as usize) {
            let names: Vec<String> = chunk.iter().map(|h| h.0.clone()).collect();
            let blobs = self.blobs.clone();
            removed += self
                .db
                .write_alone(move |c| unlink_unreferenced(c, &blobs, &string_json(&names)))
                .await?;
        }
        Ok(removed)
    }

    /// Stores each message into its mailbox, in one transaction; answers
    /// in the same order. Runs of messages for one mailbox take their UIDs
    /// in one step (append, import); byte-equal messages share a blob,
    /// written once.
    ///
    /// With `claim`, the \Recent claim of that mailbox goes in the same
    /// transaction (see [`MailStore::append_claiming`]).
    async fn append_to(
        &self,
        items: Vec<(MailboxId, NewMessage<'_>)>,
        claim: Option<MailboxId>,
    ) -> Result<(Vec<Appended>, Option<std::ops::Range<u32>>)> {
        if items.iter().any(|(_, m)| m.raw.is_empty()) {
            return Err(Error::EmptyMessage);
        }
        if items
            .iter()
            .any(|(_, m)| m.raw.len() as u64 > MAX_MESSAGE_SIZE)
        {
            return Err(Error::TooLarge);
        }
        // Distinct bodies, and which one each item stores.
        let mut distinct: Vec<&[u8]> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let mut rows = Vec::with_capacity(items.len());
        for (mailbox, m) in &items {
            let body = *seen.entry(m.raw).or_insert_with(|| {
                distinct.push(m.raw);
                distinct.len() - 1
            });
            rows.push(NewRow::of(*mailbox, m, body));
        }
        // Blobs are written and fsync'd before the write turn.
        let raws: Vec<Vec<u8>> = distinct.iter().map(|r| r.to_vec()).collect();
        let blobs = self.blobs.clone();
        let staged = tokio::task::spawn_blocking(move || {
            raws.iter()
                .map(|r| blobs.stage(r))
                .collect::<Result<Vec<Staged>>>()
        })
        .await
        .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;

        let blobs = self.blobs.clone();
        let origin = self.origin;
        let (out, touched, claimed) = self
            .db
            .write(move |c| {
                // In the turn: the collector (alone in its own) never sees
                // the file before the row that holds it.
                let hashes = place(c, &blobs, staged)?;
                let (out, touched) = insert_rows(c, origin, &rows, &hashes)?;
                let claimed = claim.map(|mailbox| claim_in_tx(c, mailbox)).transpose()?;
                Ok((out, touched, claimed))
            })
            .await?;
        for (account_id, mailbox, modseq) in touched {
            self.publish(account_id, mailbox, modseq);
        }
        Ok((out, claimed))
    }

    async fn copy_or_move(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
        is_move: bool,
    ) -> Result<CopyResult> {
        let uids = uids.to_vec();
        let origin = self.origin;
        let done = self
            .db
            .write(move |c| {
                let done = move_in_tx(c, from, &uids, to, is_move)?;
                for (mailbox, modseq) in &done.touched {
                    record_change(c, origin, done.account, *mailbox, *modseq)?;
                }
                Ok(done)
            })
            .await?;
        for (mailbox, modseq) in &done.touched {
            self.publish(done.account, *mailbox, *modseq);
        }
        Ok(done.result)
    }

    fn publish(&self, account_id: AccountId, mailbox_id: MailboxId, modseq: u64) {
        // No subscribers is fine: nobody is looking at this mailbox.
        let _ = self.feed.send(Change {
            account_id,
            mailbox_id,
            modseq,
        });
    }

    /// The account `address` (or an alias of it) names, with its password hash.
    async fn account_row(&self, address: &str) -> Result<Option<(Account, String)>> {
        let Ok(address) = normalize_address(address) else {
            return Ok(None);
        };
        self.db
            .read(move |c| {
                one(
                    c,
                    select_accounts!(
                        ", password_hash",
                        "WHERE address = ?1 OR id = (SELECT account_id FROM aliases WHERE address = ?1)"
                    ),
                    [address],
                    |r| Ok((account_from_row(r)?, r.get("password_hash")?)),
                )
            })
            .await
    }
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn create_account(&self, address: &str, password: &str, admin: bool) -> Result<Account> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        self.db
            .write(move |c| {
                if taken(c, &address)? {
                    return Err(Error::AccountExists(address));
                }
                let id: i64 = c
                    .prepare_cached(
                        "INSERT INTO accounts (address, password_hash, is_admin, created_at) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING id",
                    )?
                    .query_row(params![address, hash, admin, unix_now()], |r| r.get(0))?;
                for (name, special_use) in DEFAULT_MAILBOXES {
                    insert_mailbox(c, id, name, *special_use)?;
                    exec(
                        c,
                        "INSERT INTO subscriptions (account_id, name) VALUES (?1, ?2)",
                        params![id, name],
                    )?;
                }
                Ok(Account {
                    id,
                    address,
                    is_admin: admin,
                    quota_bytes: 0,
                    pop3_delete: None,
                    sent_copy: None,
                })
            })
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.db
            .read(|c| {
                all(
                    c,
                    select_accounts!("", "ORDER BY address"),
                    [],
                    account_from_row,
                )
            })
            .await
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        Ok(self.account_row(address).await?.map(|(a, _)| a))
    }

    async fn add_alias(&self, alias: &str, account: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let account = normalize_address(account)?;
        self.db
            .write(move |c| {
                if taken(c, &alias)? {
                    return Err(Error::AliasExists(alias));
                }
                let id: i64 = one(
                    c,
                    "SELECT id FROM accounts WHERE address = ?1",
                    [&account],
                    |r| r.get(0),
                )?
                .ok_or(Error::NoAccount(account))?;
                exec(
                    c,
                    "INSERT INTO aliases (address, account_id) VALUES (?1, ?2)",
                    params![alias, id],
                )?;
                Ok(())
            })
            .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        self.db
            .write(
                move |c| match exec(c, "DELETE FROM aliases WHERE address = ?1", [&alias])? {
                    0 => Err(Error::NoAlias(alias)),
                    _ => Ok(()),
                },
            )
            .await
    }

    async fn aliases(&self) -> Result<Vec<(String, String)>> {
        self.db
            .read(|c| {
                all(
                    c,
                    "SELECT l.address, a.address FROM aliases l \
                     JOIN accounts a ON a.id = l.account_id ORDER BY l.address",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn catch_all(&self, domain: &str) -> Result<Option<Account>> {
        let alias = format!("@{}", domain.to_lowercase());
        self.db
            .read(move |c| {
                one(
                    c,
                    select_accounts!(
                        "",
                        "WHERE id = (SELECT account_id FROM aliases WHERE address = ?1)"
                    ),
                    [alias],
                    account_from_row,
                )
            })
            .await
    }

    async fn has_domain(&self, domain: &str) -> Result<bool> {
        let pattern = format!("%@{}", domain.to_lowercase().replace(['%', '_'], ""));
        self.db
            .read(move |c| {
                Ok(one(
                    c,
                    "SELECT 1 FROM accounts WHERE address LIKE ?1 UNION ALL \
                     SELECT 1 FROM aliases WHERE address LIKE ?1 LIMIT 1",
                    [pattern],
                    |_| Ok(()),
                )?
                .is_some())
            })
            .await
    }

    async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        self.db
            .write(move |c| {
                match exec(
                    c,
                    "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
                    params![hash, address],
                )? {
                    0 => Err(Error::NoAccount(address)),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn set_pop3_delete(&self, address: &str, mode: Option<Pop3Delete>) -> Result<()> {
        self.set_account_setting(
            address,
            AccountSetting::Pop3Delete,
            mode.map(Pop3Delete::as_str),
        )
        .await
    }

    async fn set_sent_copy(&self, address: &str, rule: Option<SentCopy>) -> Result<()> {
        self.set_account_setting(
            address,
            AccountSetting::SentCopy,
            rule.map(SentCopy::as_str),
        )
        .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address)?;
        self.db
            .write(move |c| {
                let id: i64 = one(
                    c,
                    "SELECT id FROM accounts WHERE address = ?1",
                    [&address],
                    |r| r.get(0),
                )?
                .ok_or_else(|| Error::NoAccount(address.clone()))?;
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
                    [id],
                )?;
                exec(c, "DELETE FROM accounts WHERE id = ?1", [id])?;
                // Its Bayes model too: ids may be given again to a new account.
                exec(c, "DELETE FROM bayes_tokens WHERE scope = ?1", [id])?;
                exec(c, "DELETE FROM bayes_totals WHERE scope = ?1", [id])?;
                Ok(())
            })
            .await?;
        self.collect_soon().await
    }

    async fn authenticate(&self, address: &str, password: &str) -> Result<Option<Account>> {
        let row = self.account_row(address).await?;
        let (account, stored) = match row {
            Some((account, hash)) => (Some(account), Some(hash)),
            None => (None, None),
        };
        if self.logins.verify(password.to_string(), stored).await {
            Ok(account)
        } else {
            Ok(None)
        }
    }

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    select_mailboxes!("WHERE account_id = ?1 ORDER BY name"),
                    [account],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = normalize_mailbox_name(name)?;
        self.db
            .read(move |c| {
                one(
                    c,
                    select_mailboxes!("WHERE account_id = ?1 AND name = ?2"),
                    params![account, name],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_mailbox_name(name)?;
        self.db
            .write(move |c| {
                if mailbox_id(c, account, &name)?.is_some() {
                    return Err(Error::MailboxExists(name));
                }
                create_parents(c, account, &name)?;
                let id = insert_mailbox(c, account, &name, special_use)?;
                one(
                    c,
                    select_mailboxes!("WHERE id = ?1"),
                    [id],
                    mailbox_from_row,
                )?
                .ok_or_else(|| Error::Corrupt("a new mailbox vanished".into()))
            })
            .await
    }

    async fn append(&self, mailbox: MailboxId, message: NewMessage<'_>) -> Result<Appended> {
        let (mut done, _) = self.append_to(vec![(mailbox, message)], None).await?;
        done.pop()
            .ok_or_else(|| Error::Corrupt("append stored nothing".into()))
    }

    async fn append_batch(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<Vec<Appended>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let items = messages.into_iter().map(|m| (mailbox, m)).collect();
        Ok(self.append_to(items, None).await?.0)
    }

    async fn append_claiming(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<(Vec<Appended>, std::ops::Range<u32>)> {
        let items = messages.into_iter().map(|m| (mailbox, m)).collect();
        let (done, claimed) = self.append_to(items, Some(mailbox)).await?;
        let claimed = claimed.ok_or_else(|| Error::Corrupt("the claim went missing".into()))?;
        Ok((done, claimed))
    }

    async fn append_copies(
        &self,
        copies: Vec<(MailboxId, NewMessage<'_>)>,
    ) -> Result<Vec<Appended>> {
        if copies.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.append_to(copies, None).await?.0)
    }

    async fn spam_note(&self, mailbox: MailboxId, uid: u32) -> Result<Option<SpamNote>> {
        let row = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT spam_score, spam_reasons FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
                    params![mailbox, uid],
                    |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                        ))
                    },
                )
            })
            .await?;
        Ok(row.and_then(|(score, reasons)| {
            score.map(|score| SpamNote {
                score,
                reasons: reasons.unwrap_or_default(),
            })
        }))
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    select_messages!("WHERE mailbox_id = ?1 ORDER BY uid"),
                    [mailbox],
                    message_from_row,
                )
            })
            .await
    }

    async fn details(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>> {
        let uids = uid_json(uids);
        self.db
            .read(move |c| {
                all(
                    c,
                    select_messages!(
                        "WHERE mailbox_id = ?1 AND uid IN (SELECT value FROM json_each(?2)) \
                         ORDER BY uid"
                    ),
                    params![mailbox, uids],
                    message_from_row,
                )
            })
            .await
    }

    async fn read_blob(&self, blob: &BlobHash) -> Result<Vec<u8>> {
        if let Some(bytes) = self.blobs.cached(blob) {
            return Ok(bytes);
        }
        let blobs = self.blobs.clone();
        let blob = blob.clone();
        tokio::task::spawn_blocking(move || blobs.read(&blob))
            .await
            .map_err(|e| Error::Corrupt(format!("blob reader failed: {e}")))?
    }

    async fn read_blobs(&self, wanted: &[BlobHash]) -> Result<Vec<Result<Vec<u8>>>> {
        // Those read lately come from memory; the disk threads only for
        // the rest.
        let mut out: Vec<Option<Result<Vec<u8>>>> = wanted
            .iter()
            .map(|b| self.blobs.cached(b).map(Ok))
            .collect();
        let missing: Vec<(usize, BlobHash)> = out
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| (i, wanted[i].clone()))
            .collect();
        if !missing.is_empty() {
            let blobs = self.blobs.clone();
            let read = tokio::task::spawn_blocking(move || {
                missing
                    .into_iter()
                    .map(|(i, b)| (i, blobs.read(&b)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| Error::Corrupt(format!("blob reader failed: {e}")))?;
            for (i, r) in read {
                out[i] = Some(r);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Corrupt("a body was not read".into()))))
            .collect())
    }

    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<Mailbox>> {
        self.db
            .read(move |c| {
                one(
                    c,
                    select_mailboxes!("WHERE id = ?1"),
                    [mailbox],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        if name == "INBOX" {
            return Err(Error::InboxUndeletable);
        }
        let origin = self.origin;
        let id = self
            .db
            .write(move |c| {
                let id = mailbox_id(c, account, &name)?.ok_or(Error::NoMailbox(name))?;
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
                     WHERE mailbox_id = ?1",
                    [id],
                )?;
                exec(c, "DELETE FROM mailboxes WHERE id = ?1", [id])?;
                // Sessions showing it look again, and find it gone.
                record_change(c, origin, account, id, 0)?;
                Ok(id)
            })
            .await?;
        self.publish(account, id, 0);
        self.collect_soon().await
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let from = normalize_mailbox_name(from)?;
        let to = normalize_mailbox_name(to)?;
        if to == from || to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(Error::RenameIntoItself);
        }
        let origin = self.origin;
        let touched = self
            .db
            .write(move |c| rename_in_tx(c, origin, account, &from, &to))
            .await?;
        for (mailbox, modseq) in touched {
            self.publish(account, mailbox, modseq);
        }
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        let sql = if subscribed {
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)"
        } else {
            "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2"
        };
        self.db
            .write(move |c| exec(c, sql, params![account, name]).map(|_| ()))
            .await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name",
                    [account],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT COUNT(m.uid), \
                     COALESCE(SUM((m.flags & 1) = 0), 0), \
                     COALESCE(SUM((m.flags & 8) != 0), 0), \
                     COALESCE(SUM(m.uid >= b.first_recent), 0), \
                     COALESCE(SUM(m.size), 0) \
                     FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = ?1",
                    [mailbox],
                    |r| {
                        Ok(MailboxStatus {
                            messages: r.get(0)?,
                            unseen: r.get(1)?,
                            deleted: r.get(2)?,
                            recent: r.get(3)?,
                            size: r.get::<_, i64>(4)? as u64,
                        })
                    },
                )?
                .ok_or_else(|| Error::Corrupt("a count gave no row".into()))
            })
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<std::ops::Range<u32>> {
        if !claim {
            // EXAMINE changes nothing: a read, no write turn.
            return self.db.read(move |c| recent_range(c, mailbox)).await;
        }
        // Sessions that see the same delivery all try to claim it; a look
        // on a reader first keeps all but the first off the writer.
        let range = self.db.read(move |c| recent_range(c, mailbox)).await?;
        if range.is_empty() {
            return Ok(range);
        }
        self.db.write(move |c| claim_in_tx(c, mailbox)).await
    }

    async fn views(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageCache)>> {
        let uids = uid_json(uids);
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT uid, envelope, bodystructure FROM messages WHERE mailbox_id = ?1 \
                     AND uid IN (SELECT value FROM json_each(?2)) ORDER BY uid",
                    params![mailbox, uids],
                    |r| {
                        Ok((
                            r.get(0)?,
                            MessageCache {
                                envelope: r.get(1)?,
                                bodystructure: r.get(2)?,
                            },
                        ))
                    },
                )
            })
            .await
    }

    async fn changes_since(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        covering: Option<u64>,
    ) -> Result<MailboxDelta> {
        // Sessions watching one mailbox all ask the same question after a
        // delivery (10,000 idle clients: 10,000 identical reads). A caller
        // joins a read for the same (mailbox, MODSEQ) that has not started
        // yet, which therefore sees everything committed before the caller
        // asked; or, when it says which change it needs (`covering`), one
        // already under way, whose answer it takes if it holds that change.
        let key = (mailbox, modseq);
        static FLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = FLIGHT.fetch_add(1, Ordering::Relaxed);
        enum Role {
            Join(tokio::sync::watch::Receiver<Option<Arc<MailboxDelta>>>),
            Lead,
            Alone,
        }
        let role = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&key) {
                Some(f) if !f.started || covering.is_some() => Role::Join(f.answer.subscribe()),
                // A read under way that this caller may not join.
                Some(_) => Role::Alone,
                None => {
                    let answer = tokio::sync::watch::channel(None).0;
                    let started = false;
                    flights.insert(
                        key,
                        Flight {
                            id,
                            answer,
                            started,
                        },
                    );
                    Role::Lead
                }
            }
        };
        match role {
            Role::Join(mut answer) => {
                if let Ok(delta) = answer.wait_for(Option::is_some).await
                    && let Some(delta) = delta.as_ref()
                    && covering.is_none_or(|m| delta.highestmodseq >= m)
                {
                    return Ok(MailboxDelta::clone(delta));
                }
                // The leader failed, or its read began before the change
                // the caller needs: ask on our own.
                return self
                    .db
                    .read(move |c| read_changes(c, mailbox, modseq))
                    .await;
            }
            Role::Alone => {
                return self
                    .db
                    .read(move |c| read_changes(c, mailbox, modseq))
                    .await;
            }
            Role::Lead => {}
        }
        // Ends the flight if the read never runs (the engine gone): the
        // joiners then find the channel closed and read on their own.
        let _leader = Leader {
            flights: self.flights.clone(),
            key,
            id,
        };
        let flights = self.flights.clone();
        self.db
            .read(move |c| {
                // From here on, joiners that asked later may miss what is
                // committed meanwhile: only those that name a change join.
                start_flight(&flights, key, id);
                let delta = read_changes(c, mailbox, modseq);
                if let (Ok(delta), Some(answer)) = (&delta, end_flight(&flights, key, id)) {
                    let _ = answer.send(Some(Arc::new(delta.clone())));
                }
                delta
            })
            .await
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult> {
        let uids = uid_json(uids);
        let change = change.clone();
        let origin = self.origin;
        let (result, changed) = self
            .db
            .write(move |c| store_in_tx(c, origin, mailbox, &uids, &change, unchanged_since))
            .await?;
        if let Some((account_id, modseq)) = changed {
            self.publish(account_id, mailbox, modseq);
        }
        Ok(result)
    }

    async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        only_deleted: bool,
    ) -> Result<Expunged> {
        let uids = uids.to_vec();
        let origin = self.origin;
        let (account_id, modseq, gone) = self
            .db
            .write(move |c| {
                let done = expunge_in_tx(c, mailbox, &uids, only_deleted)?;
                if !done.2.is_empty() {
                    record_change(c, origin, done.0, mailbox, done.1)?;
                }
                Ok(done)
            })
            .await?;
        if gone.is_empty() {
            return Ok(Expunged::default());
        }
        self.publish(account_id, mailbox, modseq);
        self.collect_soon().await?;
        Ok(Expunged { uids: gone, modseq })
    }

    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<CopyResult> {
        self.copy_or_move(from, uids, to, false).await
    }

    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<CopyResult> {
        self.copy_or_move(from, uids, to, true).await
    }

    async fn bayes_counts(&self, scopes: &[i64], tokens: &[String]) -> Result<Vec<ModelCounts>> {
        let scope_json = format!(
            "[{}]",
            scopes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let token_json = string_json(tokens);
        // One statement and one row, so one read snapshot: JSON arrays of
        // [scope, spam, ham] totals and of [token position, scope, spam, ham].
        let (totals, found) = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT \
                     (SELECT json_group_array(json_array(scope, spam, ham)) FROM bayes_totals \
                      WHERE scope IN (SELECT value FROM json_each(?1))), \
                     (SELECT json_group_array(json_array(t.key, b.scope, b.spam, b.ham)) \
                      FROM json_each(?2) t, json_each(?1) s \
                      CROSS JOIN bayes_tokens b ON b.scope = s.value AND b.token = t.value)",
                    params![scope_json, token_json],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?
                .ok_or_else(|| Error::Corrupt("the Bayes lookup gave no row".into()))
            })
            .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes lookup: {e}"));
        let totals: Vec<(i64, i64, i64)> = serde_json::from_str(&totals).map_err(corrupt)?;
        let found: Vec<(usize, i64, i64, i64)> = serde_json::from_str(&found).map_err(corrupt)?;
        let mut out: Vec<ModelCounts> = scopes
            .iter()
            .map(|_| ModelCounts {
                totals: (0, 0),
                counts: vec![(0, 0); tokens.len()],
            })
            .collect();
        for (scope, spam, ham) in totals {
            for (i, _) in scopes.iter().enumerate().filter(|(_, s)| **s == scope) {
                out[i].totals = (spam as u64, ham as u64);
            }
        }
        for (at, scope, spam, ham) in found {
            for (i, _) in scopes.iter().enumerate().filter(|(_, s)| **s == scope) {
                if let Some(c) = out[i].counts.get_mut(at) {
                    *c = (spam as u64, ham as u64);
                }
            }
        }
        Ok(out)
    }

    async fn bayes_changes(&self, scope: i64, since: u64) -> Result<ModelChanges> {
        // All of a model: read in key order, not through the `gen` index
        // (which would cost a key lookup per token).
        let sql = if since == 0 {
            "SELECT \
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = ?1), \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = ?1 AND ?2 = 0)"
        } else {
            "SELECT \
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = ?1), \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = ?1 AND gen > ?2)"
        };
        let (totals, tokens) = self
            .db
            .read(move |c| {
                one(c, sql, params![scope, since as i64], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
                })?
                .ok_or_else(|| Error::Corrupt("the Bayes model gave no row".into()))
            })
            .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes model: {e}"));
        let totals: (u64, u64) = match totals {
            Some(t) => serde_json::from_str(&t).map_err(corrupt)?,
            None => (0, 0),
        };
        let tokens: Vec<(String, u64, u64)> = serde_json::from_str(&tokens).map_err(corrupt)?;
        Ok(ModelChanges {
            totals,
            tokens: tokens.into_iter().map(|(t, s, h)| (t, (s, h))).collect(),
        })
    }

    async fn bayes_train(&self, scope: i64, tokens: &[String], spam: bool) -> Result<()> {
        let tokens = string_json(tokens);
        self.db
            .write(move |c| train_in_tx(c, scope, &tokens, spam))
            .await
    }

    async fn pending_training(&self, limit: usize) -> Result<Vec<TrainingEvent>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT id, account_id, blob, spam FROM training ORDER BY id LIMIT ?1",
                    [limit as i64],
                    |r| {
                        Ok(TrainingEvent {
                            id: r.get(0)?,
                            account: r.get(1)?,
                            blob: BlobHash(r.get(2)?),
                            spam: r.get(3)?,
                        })
                    },
                )
            })
            .await
    }

    async fn finish_training(
        &self,
        event: &TrainingEvent,
        scopes: &[i64],
        tokens: Option<&[String]>,
    ) -> Result<()> {
        let (id, spam, blob) = (event.id, event.spam, event.blob.0.clone());
        let scopes = scopes.to_vec();
        let tokens = tokens.map(string_json);
        self.db
            .write(move |c| {
                // Another trainer (a second process on the same store) got it first.
                if exec(c, "DELETE FROM training WHERE id = ?1", [id])? == 0 {
                    return Ok(());
                }
                if let Some(tokens) = &tokens {
                    for &scope in &scopes {
                        train_in_tx(c, scope, tokens, spam)?;
                    }
                }
                // The blob may have been waiting for this row to go.
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) VALUES (?1)",
                    [blob],
                )?;
                Ok(())
            })
            .await
    }

    async fn spam_lists(&self, account: AccountId) -> Result<Vec<ListedSender>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT pattern, allow FROM spam_lists WHERE account_id = ?1 ORDER BY pattern",
                    [account],
                    |r| {
                        Ok(ListedSender {
                            pattern: r.get(0)?,
                            allow: r.get(1)?,
                        })
                    },
                )
            })
            .await
    }

    async fn set_spam_list(
        &self,
        account: AccountId,
        pattern: &str,
        allow: Option<bool>,
    ) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        self.db
            .write(move |c| {
                match allow {
                    Some(allow) => exec(
                        c,
                        "INSERT INTO spam_lists (account_id, pattern, allow) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (account_id, pattern) DO UPDATE SET allow = ?3",
                        params![account, pattern, allow],
                    )?,
                    None => exec(
                        c,
                        "DELETE FROM spam_lists WHERE account_id = ?1 AND pattern = ?2",
                        params![account, pattern],
                    )?,
                };
                Ok(())
            })
            .await
    }

    async fn record_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
        let list = string_json(&addresses);
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO correspondents (account_id, address, sent, last_sent) \
                     SELECT ?1, value, 1, ?3 FROM json_each(?2) WHERE true \
                     ON CONFLICT (account_id, address) DO UPDATE SET sent = sent + 1, last_sent = ?3",
                    params![account, list, unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    async fn sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScript>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT name, active, length(CAST(content AS BLOB)) FROM sieve_scripts \
                     WHERE account_id = ?1 ORDER BY name",
                    [account],
                    |r| {
                        Ok(SieveScript {
                            name: r.get(0)?,
                            active: r.get(1)?,
                            size: r.get::<_, i64>(2)? as u64,
                        })
                    },
                )
            })
            .await
    }

    async fn sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let name = name.to_string();
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT content FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>> {
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT name, content FROM sieve_scripts WHERE account_id = ?1 AND active = 1",
                    [account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()> {
        check_script_name(name)?;
        let (name, content) = (name.to_string(), content.to_string());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO sieve_scripts (account_id, name, content) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (account_id, name) DO UPDATE SET content = ?3",
                    params![account, name, content],
                )?;
                Ok(())
            })
            .await
    }

    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        let name = name.map(str::to_string);
        self.db
            .write(move |c| {
                if let Some(name) = &name
                    && !script_exists(c, account, name)?
                {
                    return Err(Error::NoScript(name.clone()));
                }
                exec(
                    c,
                    "UPDATE sieve_scripts SET active = 0 WHERE account_id = ?1 AND active = 1",
                    [account],
                )?;
                if let Some(name) = &name {
                    exec(
                        c,
                        "UPDATE sieve_scripts SET active = 1 WHERE account_id = ?1 AND name = ?2",
                        params![account, name],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        let name = name.to_string();
        self.db
            .write(move |c| {
                let active: bool = one(
                    c,
                    "SELECT active FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                    |r| r.get(0),
                )?
                .ok_or_else(|| Error::NoScript(name.clone()))?;
                if active {
                    return Err(Error::ScriptActive(name));
                }
                exec(
                    c,
                    "DELETE FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                )?;
                Ok(())
            })
            .await
    }

    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        check_script_name(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        self.db
            .write(move |c| {
                if script_exists(c, account, &to)? {
                    return Err(Error::ScriptExists(to));
                }
                match exec(
                    c,
                    "UPDATE sieve_scripts SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account, from, to],
                )? {
                    0 => Err(Error::NoScript(from)),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn vacation_due(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        days: u64,
    ) -> Result<bool> {
        use sha2::Digest;
        let handle = hex::encode(sha2::Sha256::digest(handle.as_bytes()));
        let sender = sender.to_lowercase();
        let now = unix_now();
        self.db
            .write(move |c| {
                let until: Option<i64> = one(
                    c,
                    "SELECT until FROM vacation_replies \
                     WHERE account_id = ?1 AND handle = ?2 AND sender = ?3",
                    params![account, handle, sender],
                    |r| r.get(0),
                )?;
                if until.is_some_and(|u| u > now) {
                    return Ok(false);
                }
                exec(
                    c,
                    "INSERT INTO vacation_replies (account_id, handle, sender, until) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (account_id, handle, sender) DO UPDATE SET until = ?4",
                    params![
                        account,
                        handle,
                        sender,
                        now + (days.min(365) as i64) * 86_400
                    ],
                )?;
                Ok(true)
            })
            .await
    }

    async fn sent_to(&self, account: AccountId, address: &str) -> Result<u64> {
        let address = address.to_lowercase();
        let n: Option<i64> = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT sent FROM correspondents WHERE account_id = ?1 AND address = ?2",
                    params![account, address],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }

    async fn maintenance(&self) -> Result<()> {
        self.collect_garbage().await?;
        let swept = self.sweep_orphans(ORPHAN_AGE).await?;
        if swept > 0 {
            tracing::info!("removed {swept} orphaned blob files");
        }
        self.blobs.clean_temp();
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn collect_in_background(&self) {
        let wake = Arc::new(tokio::sync::Notify::new());
        if self.collector.set(wake.clone()).is_err() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                // Expunges in the meantime are taken in the same pass.
                tokio::time::sleep(COLLECT_DELAY).await;
                if let Err(e) = store.collect_garbage().await {
                    tracing::warn!("blob collection failed (retried at the next expunge): {e}");
                }
            }
        });
    }

    fn watch_other_processes(&self) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(watch(self.db.clone(), self.feed.clone(), self.origin));
    }
}

/// Relays rows other processes add to `changes` onto the broadcast feed, and
/// trims old rows.
async fn watch(db: Engine, feed: broadcast::Sender<Change>, origin: i64) {
    let start = db
        .read(|c| {
            Ok(
                one(c, "SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                    r.get(0)
                })?
                .unwrap_or(0),
            )
        })
        .await;
    let mut last: i64 = match start {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("change watcher could not start: {e}");
            return;
        }
    };
    let mut ticks: u64 = 0;
    let mut interval = tokio::time::interval(WATCH_INTERVAL);
    loop {
        interval.tick().await;
        let after = last;
        let rows = db
            .read(move |c| {
                all(
                    c,
                    "SELECT seq, origin, account_id, mailbox_id, modseq FROM changes \
                     WHERE seq > ?1 ORDER BY seq",
                    [after],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            Change {
                                account_id: r.get(2)?,
                                mailbox_id: r.get(3)?,
                                modseq: r.get::<_, i64>(4)? as u64,
                            },
                        ))
                    },
                )
            })
            .await;
        match rows {
            Ok(rows) => {
                for (seq, from, change) in rows {
                    last = seq;
                    if from != origin {
                        let _ = feed.send(change);
                    }
                }
            }
            Err(e) => tracing::warn!("change watcher: {e}"),
        }
        ticks += 1;
        if ticks.is_multiple_of(200) {
            let _ = db
                .write(|c| {
                    exec(
                        c,
                        "DELETE FROM changes WHERE at < ?1",
                        [unix_now() - CHANGE_TTL_SECS],
                    )
                })
                .await;
        }
    }
}

/// Brings the schema up to date, under the write lock (another process
/// may be migrating at the same moment).
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let version = |c: &Connection| -> Result<i64> {
        Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    };
    if version(conn)? == known {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        // Read again under the lock: another process may have migrated meanwhile.
        let current = version(conn)?;
        if current > known {
            return Err(Error::SchemaTooNew {
                path: PathBuf::from(path),
                found: current,
                known,
            });
        }
        for sql in &MIGRATIONS[current.max(0) as usize..] {
            conn.execute_batch(sql)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {known}"))?;
        Ok(())
    })();
    match done {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// `SELECT` of every account column (and `$extra` ones), followed by the
/// rest of the query.
macro_rules! select_accounts {
    ($extra:literal, $rest:literal) => {
        concat!(
            "SELECT id, address, is_admin, quota_bytes, pop3_delete, sent_copy",
            $extra,
            " FROM accounts ",
            $rest
        )
    };
}
use select_accounts;

/// `SELECT` of every mailbox column, followed by the rest of the query.
macro_rules! select_mailboxes {
    ($rest:literal) => {
        concat!(
            "SELECT id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, \
             EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = mailboxes.account_id \
             AND s.name = mailboxes.name) AS subscribed FROM mailboxes ",
            $rest
        )
    };
}
use select_mailboxes;

/// `SELECT` of the columns [`message_from_row`] reads, followed by the
/// rest of the query.
macro_rules! select_messages {
    ($rest:literal) => {
        concat!(
            "SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob \
             FROM messages ",
            $rest
        )
    };
}
use select_messages;

/// The UIDs nobody has seen as \Recent yet.
fn recent_range(c: &Connection, mailbox: MailboxId) -> Result<std::ops::Range<u32>> {
    one(
        c,
        "SELECT first_recent, uidnext FROM mailboxes WHERE id = ?1",
        [mailbox],
        |r| Ok(r.get::<_, u32>(0)?..r.get::<_, u32>(1)?),
    )?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))
}

/// Takes the \Recent UIDs for the caller (RFC 3501 2.3.2); a write only
/// when there is something to take.
fn claim_in_tx(c: &Connection, mailbox: MailboxId) -> Result<std::ops::Range<u32>> {
    let range = recent_range(c, mailbox)?;
    if !range.is_empty() {
        exec(
            c,
            "UPDATE mailboxes SET first_recent = uidnext WHERE id = ?1",
            [mailbox],
        )?;
    }
    Ok(range)
}

/// Whether an account or an alias has the address.
fn taken(c: &Connection, address: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM accounts WHERE address = ?1 UNION SELECT 1 FROM aliases WHERE address = ?1",
        [address],
        |_| Ok(()),
    )?
    .is_some())
}

fn mailbox_id(c: &Connection, account: AccountId, name: &str) -> Result<Option<MailboxId>> {
    one(
        c,
        "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2",
        params![account, name],
        |r| r.get(0),
    )
}

/// Inserts a mailbox with a UIDVALIDITY never handed out before in this store:
/// the larger of the clock and one past the last one given.
fn insert_mailbox(
    c: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    let next: i64 = one(
        c,
        "SELECT value FROM meta WHERE key = 'next_uidvalidity'",
        [],
        |r| r.get(0),
    )?
    .unwrap_or(1);
    let uidvalidity = next.max(unix_now()).clamp(1, u32::MAX as i64);
    exec(
        c,
        "INSERT INTO meta (key, value) VALUES ('next_uidvalidity', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [uidvalidity + 1],
    )?;
    Ok(c.prepare_cached(
        "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) \
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?
    .query_row(
        params![account, name, special_use.map(|s| s.as_imap()), uidvalidity],
        |r| r.get(0),
    )?)
}

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get("id")?,
        address: r.get("address")?,
        is_admin: r.get("is_admin")?,
        quota_bytes: r.get("quota_bytes")?,
        pop3_delete: r
            .get::<_, Option<String>>("pop3_delete")?
            .as_deref()
            .and_then(Pop3Delete::parse),
        sent_copy: r
            .get::<_, Option<String>>("sent_copy")?
            .as_deref()
            .and_then(SentCopy::parse),
    })
}

fn mailbox_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        name: r.get("name")?,
        special_use: r
            .get::<_, Option<String>>("special_use")?
            .as_deref()
            .and_then(SpecialUse::parse),
        uidvalidity: r.get("uidvalidity")?,
        uidnext: r.get("uidnext")?,
        highestmodseq: r.get::<_, i64>("highestmodseq")? as u64,
        subscribed: r.get("subscribed")?,
    })
}

/// A message's index entry from the columns of [`select_messages`], in
/// that order.
fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    let keywords: String = r.get(3)?;
    Ok(MessageMeta {
        uid: r.get(0)?,
        modseq: r.get::<_, i64>(1)? as u64,
        flags: Flags::from_bits(r.get::<_, i64>(2)? as u8),
        keywords: keywords.split_whitespace().map(String::from).collect(),
        internal_date: InternalDate {
            unix: r.get(4)?,
            tz_minutes: r.get::<_, i64>(5)? as i32,
        },
        size: r.get::<_, i64>(6)? as u64,
        blob: BlobHash(r.get(7)?),
    })
}
/// The data folder and the index (which holds the password hashes) are
/// the server user's alone, whatever the umask: the folder is made (or
/// tightened) 0700, the index created (or tightened) 0600 before SQLite
/// opens it.
fn make_private(dir: &Path, db_path: &Path) -> Result<()> {
    crate::blob::private_dir(dir)?;
    tighten(dir, 0o700)?;
    if !db_path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db_path)
            .map_err(|source| Error::Io {
                path: db_path.to_path_buf(),
                source,
            })?;
    }
    tighten(db_path, 0o600)
}

/// Takes group and other permissions off `path` if it exists.
fn tighten(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// An alias: an address, or `@domain` for a domain's catch-all.
fn normalize_alias(alias: &str) -> Result<String> {
    match alias.strip_prefix('@') {
        Some(domain) => {
            let whole = normalize_address(&format!("catch-all@{domain}"))?;
            Ok(format!("@{}", &whole["catch-all@".len()..]))
        }
        None => normalize_address(alias),
    }
}

fn random_origin() -> i64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (OsRng.next_u64() >> 1) as i64
}

/// Strings as a JSON array.
fn string_json(items: &[String]) -> String {
    let mut s = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for c in item.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push(']');
    s
}

/// UIDs as a JSON array, for `IN (SELECT value FROM json_each(?n))`.
fn uid_json(uids: &[u32]) -> String {
    let mut s = String::with_capacity(uids.len() * 6 + 2);
    s.push('[');
    for (i, u) in uids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&u.to_string());
    }
    s.push(']');
    s
}

/// Puts staged bodies in place inside the write group `tx`, whose commit
/// then waits for their folders to be durable.
fn place(tx: &Tx, blobs: &BlobStore, staged: Vec<Staged>) -> Result<Vec<BlobHash>> {
    let (hashes, dirs) = blobs.place(staged)?;
    for dir in dirs {
        tx.sync_dir(dir);
    }
    Ok(hashes)
}

/// Notes a change in `changes`, for the other processes' watchers.
fn record_change(
    c: &Connection,
    origin: i64,
    account_id: AccountId,
    mailbox: MailboxId,
    modseq: u64,
) -> Result<()> {
    exec(
        c,
        "INSERT INTO changes (origin, account_id, mailbox_id, modseq, at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![origin, account_id, mailbox, modseq as i64, unix_now()],
    )?;
    Ok(())
}

/// Unlinks the blobs of `hashes` (a JSON array) that no message or
/// training row refers to; the caller's turn is alone (sees committed
/// rows only), so a file goes only once nothing durable refers to it.
fn unlink_unreferenced(c: &Connection, blobs: &BlobStore, hashes: &str) -> Result<usize> {
    let dead: Vec<BlobHash> = all(c, UNREFERENCED, [hashes], |r| r.get(0).map(BlobHash))?;
    dead.iter().try_for_each(|h| blobs.remove(h))?;
    Ok(dead.len())
}

/// One message to insert, owned, so it can go to the writer thread.
struct NewRow {
    mailbox: MailboxId,
    /// Which of the distinct bodies it stores.
    body: usize,
    flags: i64,
    keywords: String,
    internal_date: InternalDate,
    size: i64,
    cache: MessageCache,
    spam: Option<SpamNote>,
}

impl NewRow {
    fn of(mailbox: MailboxId, m: &NewMessage<'_>, body: usize) -> NewRow {
        NewRow {
            mailbox,
            body,
            flags: m.flags.bits() as i64,
            keywords: m.keywords.join(" "),
            internal_date: m.internal_date,
            size: m.size as i64,
            cache: m.cache.clone(),
            spam: m.spam.clone(),
        }
    }
}

/// Mailboxes changed by an append: (account, mailbox, new HIGHESTMODSEQ).
type Touched = Vec<(AccountId, MailboxId, u64)>;

/// Inserts `rows` (bodies already in place as `hashes`); runs of rows for
/// one mailbox take their UIDs and MODSEQs in one step.
fn insert_rows(
    c: &Connection,
    origin: i64,
    rows: &[NewRow],
    hashes: &[BlobHash],
) -> Result<(Vec<Appended>, Touched)> {
    let mut out = Vec::with_capacity(rows.len());
    let mut touched: Touched = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mailbox = rows[start].mailbox;
        let run = rows[start..]
            .iter()
            .take_while(|r| r.mailbox == mailbox)
            .count();
        let n = run as i64;
        let (account_id, name, uidvalidity, uidnext, highest): (i64, String, u32, i64, i64) = one(
            c,
            "UPDATE mailboxes SET uidnext = uidnext + ?1, highestmodseq = highestmodseq + ?1 \
             WHERE id = ?2 RETURNING account_id, name, uidvalidity, uidnext, highestmodseq",
            params![n, mailbox],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
        let first_uid = uidnext - n;
        let first_modseq = highest - n + 1;
        // The last UID handed out must leave UIDNEXT within 32 bits.
        if first_uid + n > u32::MAX as i64 {
            return Err(Error::UidsExhausted(name));
        }
        let mut insert = c.prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
             internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for (i, row) in rows[start..start + run].iter().enumerate() {
            let uid = first_uid + i as i64;
            let modseq = first_modseq + i as i64;
            let hash = hashes
                .get(row.body)
                .ok_or_else(|| Error::Corrupt("a body went missing on its way in".into()))?;
            insert.execute(params![
                mailbox,
                uid,
                modseq,
                row.flags,
                row.keywords,
                row.internal_date.unix,
                row.internal_date.tz_minutes,
                row.size,
                hash.0,
                row.cache.envelope,
                row.cache.bodystructure,
                row.spam.as_ref().map(|n| n.score),
                row.spam.as_ref().map(|n| n.reasons.as_str()),
            ])?;
            out.push(Appended {
                mailbox_id: mailbox,
                uidvalidity,
                uid: uid as u32,
                modseq: modseq as u64,
            });
        }
        let last_modseq = (first_modseq + n - 1) as u64;
        record_change(c, origin, account_id, mailbox, last_modseq)?;
        match touched.iter_mut().find(|t| t.1 == mailbox) {
            Some(t) => t.2 = last_modseq,
            None => touched.push((account_id, mailbox, last_modseq)),
        }
        start += run;
    }
    Ok((out, touched))
}

/// Changes flags of the messages of `uids` (a JSON array); the mailbox's
/// account and new MODSEQ when anything changed.
fn store_in_tx(
    c: &Connection,
    origin: i64,
    mailbox: MailboxId,
    uids: &str,
    change: &FlagChange,
    unchanged_since: Option<u64>,
) -> Result<(StoreFlagsResult, Option<(AccountId, u64)>)> {
    let rows: Vec<(u32, i64, i64, String)> = all(
        c,
        "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = ?1 \
         AND uid IN (SELECT value FROM json_each(?2)) ORDER BY uid",
        params![mailbox, uids],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut result = StoreFlagsResult::default();
    let mut planned = Vec::new();
    for (uid, modseq, flags, keywords) in rows {
        if unchanged_since.is_some_and(|u| modseq as u64 > u) {
            result.refused.push(uid);
            continue;
        }
        let flags = Flags::from_bits(flags as u8);
        let keywords: Vec<String> = keywords.split_whitespace().map(String::from).collect();
        let (new_flags, new_keywords) = change.apply(flags, &keywords);
        if new_flags != flags || new_keywords != keywords {
            planned.push((uid, new_flags, new_keywords));
        }
    }
    if planned.is_empty() {
        return Ok((result, None));
    }
    let (account_id, modseq) = bump_modseq(c, mailbox)?;
    let mut update = c.prepare_cached(
        "UPDATE messages SET flags = ?1, keywords = ?2, modseq = ?3 \
         WHERE mailbox_id = ?4 AND uid = ?5",
    )?;
    for (uid, flags, keywords) in planned {
        update.execute(params![
            flags.bits() as i64,
            keywords.join(" "),
            modseq as i64,
            mailbox,
            uid
        ])?;
        result.updated.push(FlagUpdate {
            uid,
            flags,
            keywords,
            modseq,
        });
    }
    record_change(c, origin, account_id, mailbox, modseq)?;
    Ok((result, Some((account_id, modseq))))
}

/// Renames a mailbox and those under it (RFC 9051 6.3.6), or for INBOX
/// moves its messages into a new mailbox; the mailboxes that changed.
fn rename_in_tx(
    c: &Connection,
    origin: i64,
    account: AccountId,
    from: &str,
    to: &str,
) -> Result<Vec<(MailboxId, u64)>> {
    let source = mailbox_id(c, account, from)?.ok_or_else(|| Error::NoMailbox(from.into()))?;
    if mailbox_id(c, account, to)?.is_some() {
        return Err(Error::MailboxExists(to.into()));
    }
    create_parents(c, account, to)?;
    if from == "INBOX" {
        // INBOX stays; its messages move to the new mailbox.
        let target = insert_mailbox(c, account, to, None)?;
        let uids: Vec<u32> = all(
            c,
            "SELECT uid FROM messages WHERE mailbox_id = ?1",
            [source],
            |r| r.get(0),
        )?;
        let moved = move_in_tx(c, source, &uids, target, true)?;
        for (mailbox, modseq) in &moved.touched {
            record_change(c, origin, account, *mailbox, *modseq)?;
        }
        return Ok(moved.touched);
    }
    let prefix = format!("{from}{DELIMITER}");
    let children: Vec<(MailboxId, String)> = all(
        c,
        "SELECT id, name FROM mailboxes WHERE account_id = ?1 AND substr(name, 1, length(?2)) = ?2",
        params![account, prefix],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut renames = vec![(source, from.to_string(), to.to_string())];
    for (id, name) in children {
        let new = format!("{to}{}", &name[from.len()..]);
        renames.push((id, name, new));
    }
    let mut touched = Vec::with_capacity(renames.len());
    for (id, old, new) in &renames {
        normalize_mailbox_name(new)?;
        exec(
            c,
            "UPDATE mailboxes SET name = ?1 WHERE id = ?2",
            params![new, id],
        )?;
        exec(
            c,
            "UPDATE OR IGNORE subscriptions SET name = ?1 WHERE account_id = ?2 AND name = ?3",
            params![new, account, old],
        )?;
        record_change(c, origin, account, *id, 0)?;
        touched.push((*id, 0));
    }
    Ok(touched)
}

/// Raises a mailbox's HIGHESTMODSEQ by one; returns its account and the new value.
fn bump_modseq(c: &Connection, mailbox: MailboxId) -> Result<(AccountId, u64)> {
    one(
        c,
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?1 \
         RETURNING account_id, highestmodseq",
        [mailbox],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
    )?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))
}

/// Deletes messages inside a write transaction, remembering their UIDs
/// for VANISHED and their blobs for the collector. Bumps MODSEQ only when
/// something was there.
fn expunge_in_tx(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
    only_deleted: bool,
) -> Result<(AccountId, u64, Vec<u32>)> {
    let present: Vec<u32> = all(
        c,
        "SELECT uid FROM messages WHERE mailbox_id = ?1 \
         AND uid IN (SELECT value FROM json_each(?2)) AND (?3 = 0 OR (flags & 8) != 0) \
         ORDER BY uid",
        params![mailbox, uid_json(uids), only_deleted],
        |r| r.get(0),
    )?;
    if present.is_empty() {
        return Ok((0, 0, present));
    }
    let (account, modseq) = bump_modseq(c, mailbox)?;
    let list = uid_json(&present);
    exec(
        c,
        "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
         WHERE mailbox_id = ?1 AND uid IN (SELECT value FROM json_each(?2))",
        params![mailbox, list],
    )?;
    exec(
        c,
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) \
         SELECT ?1, value, ?3 FROM json_each(?2)",
        params![mailbox, list, modseq as i64],
    )?;
    exec(
        c,
        "DELETE FROM messages WHERE mailbox_id = ?1 AND uid IN (SELECT value FROM json_each(?2))",
        params![mailbox, list],
    )?;
    Ok((account, modseq, present))
}

struct Moved {
    /// The source mailbox's account.
    account: AccountId,
    result: CopyResult,
    /// (mailbox, new HIGHESTMODSEQ) of every mailbox that changed.
    touched: Vec<(MailboxId, u64)>,
}

/// A mailbox as copying into or out of it sees it.
struct Side {
    account: AccountId,
    name: String,
    special_use: Option<SpecialUse>,
}

fn side_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Side> {
    Ok(Side {
        account: r.get("account_id")?,
        name: r.get("name")?,
        special_use: r
            .get::<_, Option<String>>("special_use")?
            .as_deref()
            .and_then(SpecialUse::parse),
    })
}

/// Copies messages to `to` (new UIDs, same blobs, flags and dates), and
/// with `is_move` expunges them from `from`, inside one transaction.
fn move_in_tx(
    c: &Connection,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
    is_move: bool,
) -> Result<Moved> {
    let source_box = one(
        c,
        "SELECT account_id, name, special_use FROM mailboxes WHERE id = ?1",
        [from],
        side_from_row,
    )?
    .ok_or_else(|| Error::NoMailbox(format!("#{from}")))?;
    let source: Vec<u32> = all(
        c,
        "SELECT uid FROM messages WHERE mailbox_id = ?1 \
         AND uid IN (SELECT value FROM json_each(?2)) ORDER BY uid",
        params![from, uid_json(uids)],
        |r| r.get(0),
    )?;
    let n = source.len() as i64;
    let (dest, uidvalidity, uidnext, modseq) = one(
        c,
        "UPDATE mailboxes SET uidnext = uidnext + ?1, highestmodseq = highestmodseq + 1 \
         WHERE id = ?2 RETURNING account_id, name, special_use, uidvalidity, uidnext, highestmodseq",
        params![n, to],
        |r| {
            Ok((
                side_from_row(r)?,
                r.get::<_, u32>("uidvalidity")?,
                r.get::<_, i64>("uidnext")?,
                r.get::<_, i64>("highestmodseq")?,
            ))
        },
    )?
    .ok_or_else(|| Error::NoMailbox(format!("#{to}")))?;
    let first = uidnext - n;
    if first + n > u32::MAX as i64 {
        return Err(Error::UidsExhausted(dest.name));
    }
    let mut result = CopyResult {
        uidvalidity,
        pairs: Vec::with_capacity(source.len()),
        source_modseq: 0,
    };
    if source.is_empty() {
        return Ok(Moved {
            account: source_box.account,
            result,
            touched: Vec::new(),
        });
    }
    let mut copy = c.prepare_cached(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
         internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons) \
         SELECT ?1, ?2, ?3, flags, keywords, internal_date, internal_tz, size, blob, \
         envelope, bodystructure, spam_score, spam_reasons \
         FROM messages WHERE mailbox_id = ?4 AND uid = ?5",
    )?;
    for (i, uid) in source.iter().enumerate() {
        let new_uid = first + i as i64;
        copy.execute(params![to, new_uid, modseq, from, uid])?;
        result.pairs.push((*uid, new_uid as u32));
    }
    record_training(c, from, &source, &source_box, &dest)?;
    let mut touched = vec![(to, modseq as u64)];
    if is_move {
        let (_, source_modseq, _) = expunge_in_tx(c, from, &source, false)?;
        touched.push((from, source_modseq));
        result.source_modseq = source_modseq;
    }
    Ok(Moved {
        account: source_box.account,
        result,
        touched,
    })
}

/// Records what copying `uids` of `from` (as `source`) into the mailbox
/// `dest` teaches the spam filter, one training event a message, in the
/// copy's own transaction: the trainer sees exactly the moves that happened.
fn record_training(
    c: &Connection,
    from: MailboxId,
    uids: &[u32],
    source: &Side,
    dest: &Side,
) -> Result<()> {
    let Some(spam) = training(
        (&source.name, source.special_use),
        (&dest.name, dest.special_use),
    ) else {
        return Ok(());
    };
    exec(
        c,
        "INSERT INTO training (account_id, blob, spam, at) \
         SELECT ?1, blob, ?2, ?3 FROM messages WHERE mailbox_id = ?4 \
         AND uid IN (SELECT value FROM json_each(?5)) ORDER BY uid",
        params![source.account, spam, unix_now(), from, uid_json(uids)],
    )?;
    Ok(())
}

/// Creates the missing superior levels of `name` (RFC 9051 6.3.4).
fn create_parents(c: &Connection, account: AccountId, name: &str) -> Result<()> {
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    let mut parent = String::new();
    for level in &levels[..levels.len() - 1] {
        if !parent.is_empty() {
            parent.push(DELIMITER);
        }
        parent.push_str(level);
        if mailbox_id(c, account, &parent)?.is_none() {
            insert_mailbox(c, account, &parent, None)?;
        }
    }
    Ok(())
}

/// Adds one message's tokens (a JSON array) to the model of `scope`.
fn train_in_tx(c: &Connection, scope: i64, tokens: &str, spam: bool) -> Result<()> {
    let (s, h) = if spam { (1i64, 0i64) } else { (0, 1) };
    let generation: i64 = one(
        c,
        "INSERT INTO bayes_totals (scope, spam, ham) VALUES (?1, ?2, ?3) \
         ON CONFLICT (scope) DO UPDATE SET spam = spam + ?2, ham = ham + ?3 \
         RETURNING spam + ham",
        params![scope, s, h],
        |r| r.get(0),
    )?
    .ok_or_else(|| Error::Corrupt("training gave no generation".into()))?;
    exec(
        c,
        "INSERT INTO bayes_tokens (scope, token, spam, ham, gen) \
         SELECT ?1, value, ?3, ?4, ?5 FROM json_each(?2) WHERE true \
         ON CONFLICT (scope, token) DO UPDATE SET spam = spam + ?3, ham = ham + ?4, gen = ?5",
        params![scope, tokens, s, h, generation],
    )?;
    Ok(())
}

fn script_exists(c: &Connection, account: AccountId, name: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
        params![account, name],
        |_| Ok(()),
    )?
    .is_some())
}

/// An allow/block list entry: `user@domain` or `@domain`, lower case.
fn normalize_sender_pattern(pattern: &str) -> Result<String> {
    let p = pattern.trim().to_lowercase();
    let bad = |why| Err(Error::InvalidAddress(pattern.to_string(), why));
    let Some((local, domain)) = p.rsplit_once('@') else {
        return bad("give an address (bob@example.com) or a domain with its @ (@example.com)");
    };
    if domain.is_empty() || !domain.contains('.') && domain != "localhost" {
        return bad("the domain after @ is missing or has no dot");
    }
    if p.len() > 320
        || p.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return bad("spaces, control characters and <> are not allowed");
    }
    if local.contains('@') {
        return bad("more than one @");
    }
    Ok(p)
}

/// A script name: 1 to 128 characters, no control characters (RFC 5804
/// 1.6), no slash (names may become file names elsewhere).
fn check_script_name(name: &str) -> Result<()> {
    let bad = |why| Err(Error::InvalidScriptName(name.to_string(), why));
    if name.is_empty() || name.chars().count() > 128 {
        return bad("a name is 1 to 128 characters long");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\u{2028}' || c == '\u{2029}')
    {
        return bad("control characters and / are not allowed");
    }
    Ok(())
}

type Answer = tokio::sync::watch::Sender<Option<Arc<MailboxDelta>>>;

/// A read of a mailbox's changes that other callers may join.
struct Flight {
    /// The leader's id.
    id: u64,
    answer: Answer,
    /// The read has begun: a caller that joins now may miss what was
    /// committed after its snapshot.
    started: bool,
}

/// The reads under way, by (mailbox, MODSEQ asked from).
type Flights = std::sync::Mutex<std::collections::HashMap<(MailboxId, u64), Flight>>;

fn start_flight(flights: &Flights, key: (MailboxId, u64), id: u64) {
    let mut flights = flights.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = flights.get_mut(&key).filter(|f| f.id == id) {
        f.started = true;
    }
}

/// Takes the read `id` out of the map, handing back the channel its
/// joiners wait on. Only its own entry: a later caller's read under the
/// same key has joiners of its own.
fn end_flight(flights: &Flights, key: (MailboxId, u64), id: u64) -> Option<Answer> {
    let mut flights = flights.lock().unwrap_or_else(|p| p.into_inner());
    if flights.get(&key).is_some_and(|f| f.id == id) {
        return flights.remove(&key).map(|f| f.answer);
    }
    None
}

/// The caller running a shared read: dropped (answered, failed or
/// cancelled) it ends the read if the read never did, so that joiners
/// find the channel closed and read on their own.
struct Leader {
    flights: Arc<Flights>,
    key: (MailboxId, u64),
    id: u64,
}

impl Drop for Leader {
    fn drop(&mut self) {
        end_flight(&self.flights, self.key, self.id);
    }
}

/// The changes of `mailbox` after `modseq`, read now, in one statement,
/// so the three answers come from one snapshot (sessions ask after every
/// change to their mailbox). The last column, `kind`: 0 the mailbox
/// (HIGHESTMODSEQ and UIDNEXT in the first columns); 1 a message changed
/// or added; 2 a message expunged.
fn read_changes(c: &Connection, mailbox: MailboxId, modseq: u64) -> Result<MailboxDelta> {
    let mut statement = c.prepare_cached(
        "SELECT highestmodseq, uidnext, 0, '', 0, 0, 0, '', 0 AS kind \
         FROM mailboxes WHERE id = ?1 \
         UNION ALL \
         SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob, 1 \
         FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 \
         UNION ALL \
         SELECT uid, 0, 0, '', 0, 0, 0, '', 2 FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 \
         ORDER BY kind, 1",
    )?;
    let mut rows = statement.query(params![mailbox, modseq as i64])?;
    let mut delta = None;
    let mut changed = Vec::new();
    let mut expunged = Vec::new();
    while let Some(r) = rows.next()? {
        match r.get::<_, i64>(8)? {
            0 => delta = Some((r.get::<_, i64>(0)? as u64, r.get::<_, u32>(1)?)),
            1 => changed.push(message_from_row(r)?),
            _ => expunged.push(r.get(0)?),
        }
    }
    let (highestmodseq, uidnext) = delta.ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    Ok(MailboxDelta {
        highestmodseq,
        uidnext,
        changed,
        expunged,
    })
}
