//! The embedded backend: SQLite (WAL, synchronous=FULL) for the index,
//! [`BlobStore`] files for bodies, a broadcast channel for the change feed and
//! a small `changes` table that carries wake-ups between processes.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::broadcast;

use crate::blob::{BlobStore, Staged};
use crate::group::{Turn, WriteTx, Writers};
use crate::names::{normalize_address, normalize_mailbox_name};
use crate::types::*;
use crate::{Error, MailStore, Result, WATCH_INTERVAL, password, unix_now};

mod check;
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

/// How much of the index file SQLite maps into memory for reading.
const MMAP_SIZE: u64 = 1 << 30;
/// Pages each connection keeps decoded (KiB; SQLite's default is 2 MiB).
const CACHE_KIB: u64 = 16 * 1024;
/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
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

/// Of the blob hashes in `$1` (a JSON array), those no row refers to: the
/// one list of what holds a blob, for the collector, the sweep and the
/// check.
const UNREFERENCED: &str = "SELECT value AS hash FROM json_each($1) WHERE NOT EXISTS \
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
    pool: SqlitePool,
    blobs: BlobStore,
    feed: broadcast::Sender<Change>,
    /// Tags this process's rows in `changes`, so its watcher skips them.
    origin: i64,
    watching: Arc<AtomicBool>,
    /// This process's write transactions, one at a time, committed in
    /// groups: they queue here in order instead of racing for SQLite's
    /// lock, whose busy handler sleeps (up to 100 ms a try).
    writers: Writers,
    /// Set once a collector task runs: expunges then only wake it.
    collector: Arc<std::sync::OnceLock<Arc<tokio::sync::Notify>>>,
    /// Reads of a mailbox's changes that callers asking the same may join.
    flights: Arc<Flights>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: `dir/index.sqlite` and
    /// `dir/blobs/`.
    pub async fn open(dir: &Path) -> Result<SqliteStore> {
        let db_path = dir.join("index.sqlite");
        make_private(dir, &db_path)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Reads (the spam model above all: hundreds of token lookups a
            // message) come from the page cache without a copy per page.
            .pragma("mmap_size", MMAP_SIZE.to_string())
            .pragma("cache_size", format!("-{}", CACHE_KIB));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // The default pings each connection on its way out of the pool:
            // a round trip to its thread per query, for an embedded
            // database that has no server to lose.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        migrate(&pool, &db_path).await?;
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
            writers: Writers::new(pool.clone()),
            pool,
            blobs,
            feed,
            origin: random_origin(),
            watching: Arc::new(AtomicBool::new(false)),
            collector: Arc::new(std::sync::OnceLock::new()),
            flights: Arc::new(Flights::default()),
        })
    }

    /// Deletes blob files that no message refers to any more, in batches,
    /// each under the index write lock so no append can re-use a blob while
    /// it is unlinked.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            // Alone: only committed rows may decide that a file goes.
            let mut turn = self.writers.turn_alone().await?;
            let mut tx = turn.begin().await?;
            let batch: Vec<String> = sqlx::query("SELECT hash FROM blob_gc LIMIT $1")
                .bind(GC_BATCH)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("hash"))
                .collect::<Result<_, _>>()?;
            if batch.is_empty() {
                tx.commit().await?;
                turn.durable().await?;
                return Ok(removed);
            }
            let list = string_json(&batch);
            removed += self.unlink_unreferenced(&mut tx, &list).await?;
            sqlx::query("DELETE FROM blob_gc WHERE hash IN (SELECT value FROM json_each($1))")
                .bind(&list)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            turn.durable().await?;
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
        value: Option<&str>,
    ) -> Result<()> {
        let address = normalize_address(address)?;
        let sql = match setting {
            AccountSetting::Pop3Delete => "UPDATE accounts SET pop3_delete = $1 WHERE address = $2",
            AccountSetting::SentCopy => "UPDATE accounts SET sent_copy = $1 WHERE address = $2",
        };
        let done = sqlx::query(sql)
            .bind(value)
            .bind(&address)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NoAccount(address));
        }
        Ok(())
    }

    /// A write turn, once this process's earlier ones are done: work goes
    /// in `turn.begin()`'s transaction, and after its commit,
    /// `turn.durable()` waits for the group's commit to reach the disk.
    async fn write(&self) -> Result<Turn> {
        self.writers.turn().await
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
            let mut turn = self.writers.turn_alone().await?;
            let mut tx = turn.begin().await?;
            removed += self
                .unlink_unreferenced(&mut tx, &string_json(&names))
                .await?;
            tx.commit().await?;
            turn.durable().await?;
        }
        Ok(removed)
    }

    /// Unlinks the blobs of `hashes` (a JSON array) that no message or
    /// training row refers to; the caller's turn is alone (sees committed
    /// rows only), so a file goes only once nothing durable refers to it.
    async fn unlink_unreferenced(&self, tx: &mut WriteTx<'_>, hashes: &str) -> Result<usize> {
        let dead: Vec<BlobHash> = sqlx::query(UNREFERENCED)
            .bind(hashes)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| r.try_get("hash").map(BlobHash))
            .collect::<Result<_, _>>()?;
        let n = dead.len();
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || dead.iter().try_for_each(|h| blobs.remove(h)))
            .await
            .map_err(|e| Error::Corrupt(format!("blob removal failed: {e}")))??;
        Ok(n)
    }

    /// Stores each message into its mailbox, in one transaction; answers
    /// in the same order. Runs of messages for one mailbox take their UIDs
    /// in one step (append, import); byte-equal messages share a blob,
    /// written once.
    async fn append_to(&self, items: Vec<(MailboxId, NewMessage<'_>)>) -> Result<Vec<Appended>> {
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
        let mut body_of = Vec::with_capacity(items.len());
        for (_, m) in &items {
            let i = *seen.entry(m.raw).or_insert_with(|| {
                distinct.push(m.raw);
                distinct.len() - 1
            });
            body_of.push(i);
        }
        // Blobs are written and fsync'd before the write lock is taken.
        let raws: Vec<Vec<u8>> = distinct.iter().map(|r| r.to_vec()).collect();
        let blobs = self.blobs.clone();
        let staged = tokio::task::spawn_blocking(move || {
            raws.iter()
                .map(|r| blobs.stage(r))
                .collect::<Result<Vec<Staged>>>()
        })
        .await
        .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;

        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let blobs = self.blobs.clone();
        let hashes = tokio::task::spawn_blocking(move || blobs.publish(staged))
            .await
            .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;
        let mut out = Vec::with_capacity(items.len());
        let mut touched: Vec<(AccountId, MailboxId, u64)> = Vec::new();
        let mut start = 0;
        while start < items.len() {
            let mailbox = items[start].0;
            let run = items[start..]
                .iter()
                .take_while(|(m, _)| *m == mailbox)
                .count();
            let n = run as i64;
            let row = sqlx::query(
                "UPDATE mailboxes SET uidnext = uidnext + $1, highestmodseq = highestmodseq + $1 \
                 WHERE id = $2 RETURNING account_id, name, uidvalidity, uidnext, highestmodseq",
            )
            .bind(n)
            .bind(mailbox)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
            let account_id: i64 = row.try_get("account_id")?;
            let uidvalidity = row.try_get::<i64, _>("uidvalidity")? as u32;
            let first_uid = row.try_get::<i64, _>("uidnext")? - n;
            let first_modseq = row.try_get::<i64, _>("highestmodseq")? - n + 1;
            // The last UID handed out must leave UIDNEXT within 32 bits.
            if first_uid + n > u32::MAX as i64 {
                return Err(Error::UidsExhausted(row.try_get("name")?));
            }
            for i in 0..run {
                let (_, m) = &items[start + i];
                let hash = &hashes[body_of[start + i]];
                let uid = first_uid + i as i64;
                let modseq = first_modseq + i as i64;
                sqlx::query(
                    "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
                     internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(mailbox)
                .bind(uid)
                .bind(modseq)
                .bind(m.flags.bits() as i64)
                .bind(m.keywords.join(" "))
                .bind(m.internal_date.unix)
                .bind(m.internal_date.tz_minutes as i64)
                .bind(m.size as i64)
                .bind(&hash.0)
                .bind(m.cache.envelope.as_deref())
                .bind(m.cache.bodystructure.as_deref())
                .bind(m.spam.as_ref().map(|n| n.score))
                .bind(m.spam.as_ref().map(|n| n.reasons.as_str()))
                .execute(&mut *tx)
                .await?;
                out.push(Appended {
                    mailbox_id: mailbox,
                    uidvalidity,
                    uid: uid as u32,
                    modseq: modseq as u64,
                });
            }
            let last_modseq = (first_modseq + n - 1) as u64;
            self.record_change(&mut tx, account_id, mailbox, last_modseq)
                .await?;
            match touched.iter_mut().find(|t| t.1 == mailbox) {
                Some(t) => t.2 = last_modseq,
                None => touched.push((account_id, mailbox, last_modseq)),
            }
            start += run;
        }
        tx.commit().await?;
        turn.durable().await?;
        for (account_id, mailbox, modseq) in touched {
            self.publish(account_id, mailbox, modseq);
        }
        Ok(out)
    }

    async fn copy_or_move(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
        is_move: bool,
    ) -> Result<CopyResult> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let done = move_in_tx(&mut tx, from, uids, to, is_move).await?;
        let account = done.account;
        for (mailbox, modseq) in &done.touched {
            self.record_change(&mut tx, account, *mailbox, *modseq)
                .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        for (mailbox, modseq) in &done.touched {
            self.publish(account, *mailbox, *modseq);
        }
        Ok(done.result)
    }

    async fn record_change(
        &self,
        tx: &mut WriteTx<'_>,
        account_id: AccountId,
        mailbox: MailboxId,
        modseq: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO changes (origin, account_id, mailbox_id, modseq, at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.origin)
        .bind(account_id)
        .bind(mailbox)
        .bind(modseq as i64)
        .bind(unix_now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    fn publish(&self, account_id: AccountId, mailbox_id: MailboxId, modseq: u64) {
        // No subscribers is fine: nobody is looking at this mailbox.
        let _ = self.feed.send(Change {
            account_id,
            mailbox_id,
            modseq,
        });
    }

    async fn account_row(&self, address: &str) -> Result<Option<SqliteRow>> {
        let Ok(address) = normalize_address(address) else {
            return Ok(None);
        };
        Ok(sqlx::query(
            "SELECT id, address, is_admin, quota_bytes, pop3_delete, sent_copy, password_hash FROM accounts \
             WHERE address = $1 OR id = (SELECT account_id FROM aliases WHERE address = $1)",
        )
        .bind(address)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn create_account(&self, address: &str, password: &str, admin: bool) -> Result<Account> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let taken = sqlx::query(
            "SELECT 1 FROM accounts WHERE address = $1 UNION SELECT 1 FROM aliases WHERE address = $1",
        )
        .bind(&address)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Error::AccountExists(address));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO accounts (address, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&address)
        .bind(&hash)
        .bind(admin as i64)
        .bind(unix_now())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for (name, special_use) in DEFAULT_MAILBOXES {
            insert_mailbox(&mut tx, id, name, *special_use).await?;
            sqlx::query("INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)")
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        Ok(Account {
            id,
            address,
            is_admin: admin,
            quota_bytes: 0,
            pop3_delete: None,
            sent_copy: None,
        })
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        sqlx::query(
            "SELECT id, address, is_admin, quota_bytes, pop3_delete, sent_copy FROM accounts ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect()
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        self.account_row(address)
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn add_alias(&self, alias: &str, account: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let account = normalize_address(account)?;
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let taken = sqlx::query(
            "SELECT 1 FROM accounts WHERE address = $1 UNION SELECT 1 FROM aliases WHERE address = $1",
        )
        .bind(&alias)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Error::AliasExists(alias));
        }
        let id: i64 = sqlx::query("SELECT id FROM accounts WHERE address = $1")
            .bind(&account)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::NoAccount(account))?
            .try_get("id")?;
        sqlx::query("INSERT INTO aliases (address, account_id) VALUES ($1, $2)")
            .bind(&alias)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn remove_alias(&self, alias: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let gone = sqlx::query("DELETE FROM aliases WHERE address = $1")
            .bind(&alias)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::NoAlias(alias));
        }
        Ok(())
    }

    async fn aliases(&self) -> Result<Vec<(String, String)>> {
        sqlx::query(
            "SELECT l.address AS alias, a.address AS account FROM aliases l \
             JOIN accounts a ON a.id = l.account_id ORDER BY l.address",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("alias")?, r.try_get("account")?)))
        .collect()
    }

    async fn catch_all(&self, domain: &str) -> Result<Option<Account>> {
        sqlx::query(
            "SELECT id, address, is_admin, quota_bytes, pop3_delete, sent_copy FROM accounts \
             WHERE id = (SELECT account_id FROM aliases WHERE address = $1)",
        )
        .bind(format!("@{}", domain.to_lowercase()))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn has_domain(&self, domain: &str) -> Result<bool> {
        let pattern = format!("%@{}", domain.to_lowercase().replace(['%', '_'], ""));
        Ok(sqlx::query(
            "SELECT 1 FROM accounts WHERE address LIKE $1 UNION ALL \
             SELECT 1 FROM aliases WHERE address LIKE $1 LIMIT 1",
        )
        .bind(pattern)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE address = $2")
            .bind(hash)
            .bind(&address)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NoAccount(address));
        }
        Ok(())
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
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let id: i64 = sqlx::query("SELECT id FROM accounts WHERE address = $1")
            .bind(&address)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NoAccount(address.clone()))?
            .try_get("id")?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
             WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Its Bayes model too: ids may be given again to a new account.
        for table in ["bayes_tokens", "bayes_totals"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE scope = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        self.collect_soon().await?;
        Ok(())
    }

    async fn authenticate(&self, address: &str, password: &str) -> Result<Option<Account>> {
        let row = self.account_row(address).await?;
        let stored = row
            .as_ref()
            .map(|r| r.try_get::<String, _>("password_hash"))
            .transpose()?;
        if password::verify(password.to_string(), stored).await {
            row.as_ref().map(account_from_row).transpose()
        } else {
            Ok(None)
        }
    }

    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        sqlx::query(select_mailboxes!("WHERE account_id = $1 ORDER BY name"))
            .bind(account)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(mailbox_from_row)
            .collect()
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = normalize_mailbox_name(name)?;
        sqlx::query(select_mailboxes!("WHERE account_id = $1 AND name = $2"))
            .bind(account)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(mailbox_from_row)
            .transpose()
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_mailbox_name(name)?;
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        if mailbox_id(&mut tx, account, &name).await?.is_some() {
            return Err(Error::MailboxExists(name));
        }
        create_parents(&mut tx, account, &name).await?;
        let id = insert_mailbox(&mut tx, account, &name, special_use).await?;
        let row = sqlx::query(select_mailboxes!("WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await?;
        mailbox_from_row(&row)
    }

    async fn append(&self, mailbox: MailboxId, message: NewMessage<'_>) -> Result<Appended> {
        let mut done = self.append_to(vec![(mailbox, message)]).await?;
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
        self.append_to(messages.into_iter().map(|m| (mailbox, m)).collect())
            .await
    }

    async fn append_copies(
        &self,
        copies: Vec<(MailboxId, NewMessage<'_>)>,
    ) -> Result<Vec<Appended>> {
        if copies.is_empty() {
            return Ok(Vec::new());
        }
        self.append_to(copies).await
    }

    async fn spam_note(&self, mailbox: MailboxId, uid: u32) -> Result<Option<SpamNote>> {
        let row = sqlx::query(
            "SELECT spam_score, spam_reasons FROM messages WHERE mailbox_id = $1 AND uid = $2",
        )
        .bind(mailbox)
        .bind(uid as i64)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let score: Option<i64> = row.try_get("spam_score")?;
        let reasons: Option<String> = row.try_get("spam_reasons")?;
        Ok(score.map(|score| SpamNote {
            score,
            reasons: reasons.unwrap_or_default(),
        }))
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        sqlx::query(
            "SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob \
             FROM messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>>>()
        // Sessions keep this list while the mailbox is selected: no room
        // for growth (collecting doubles as it goes).
        .map(|mut list| {
            list.shrink_to_fit();
            list
        })
    }

    async fn details(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>> {
        sqlx::query(
            "SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob \
             FROM messages WHERE mailbox_id = $1 AND uid IN (SELECT value FROM json_each($2)) \
             ORDER BY uid",
        )
        .bind(mailbox)
        .bind(uid_json(uids))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(message_from_row)
        .collect()
    }

    async fn read_blob(&self, blob: &BlobHash) -> Result<Vec<u8>> {
        let blobs = self.blobs.clone();
        let blob = blob.clone();
        tokio::task::spawn_blocking(move || blobs.read(&blob))
            .await
            .map_err(|e| Error::Corrupt(format!("blob reader failed: {e}")))?
    }

    async fn read_blobs(&self, wanted: &[BlobHash]) -> Result<Vec<Result<Vec<u8>>>> {
        let blobs = self.blobs.clone();
        let wanted = wanted.to_vec();
        tokio::task::spawn_blocking(move || wanted.iter().map(|b| blobs.read(b)).collect())
            .await
            .map_err(|e| Error::Corrupt(format!("blob reader failed: {e}")))
    }

    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<Mailbox>> {
        sqlx::query(select_mailboxes!("WHERE id = $1"))
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(mailbox_from_row)
            .transpose()
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        if name == "INBOX" {
            return Err(Error::InboxUndeletable);
        }
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let id = mailbox_id(&mut tx, account, &name)
            .await?
            .ok_or_else(|| Error::NoMailbox(name.clone()))?;
        sqlx::query(
            "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
             WHERE mailbox_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mailboxes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Sessions showing it look again, and find it gone.
        self.record_change(&mut tx, account, id, 0).await?;
        tx.commit().await?;
        turn.durable().await?;
        self.publish(account, id, 0);
        self.collect_soon().await?;
        Ok(())
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let from = normalize_mailbox_name(from)?;
        let to = normalize_mailbox_name(to)?;
        if to == from || to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(Error::RenameIntoItself);
        }
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let source = mailbox_id(&mut tx, account, &from)
            .await?
            .ok_or_else(|| Error::NoMailbox(from.clone()))?;
        if mailbox_id(&mut tx, account, &to).await?.is_some() {
            return Err(Error::MailboxExists(to));
        }
        create_parents(&mut tx, account, &to).await?;
        if from == "INBOX" {
            // INBOX stays; its messages move to the new mailbox.
            let target = insert_mailbox(&mut tx, account, &to, None).await?;
            let uids: Vec<u32> = sqlx::query("SELECT uid FROM messages WHERE mailbox_id = $1")
                .bind(source)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("uid").map(|u| u as u32))
                .collect::<Result<_, _>>()?;
            let changes = move_in_tx(&mut tx, source, &uids, target, true).await?;
            for (mailbox, modseq) in &changes.touched {
                self.record_change(&mut tx, account, *mailbox, *modseq)
                    .await?;
            }
            tx.commit().await?;
            turn.durable().await?;
            for (mailbox, modseq) in changes.touched {
                self.publish(account, mailbox, modseq);
            }
            return Ok(());
        }
        let prefix = format!("{from}{DELIMITER}");
        let children = sqlx::query(
            "SELECT id, name FROM mailboxes WHERE account_id = $1 AND substr(name, 1, length($2)) = $2",
        )
        .bind(account)
        .bind(&prefix)
        .fetch_all(&mut *tx)
        .await?;
        let mut renames = vec![(source, from.clone(), to.clone())];
        for row in &children {
            let name: String = row.try_get("name")?;
            let new = format!("{to}{}", &name[from.len()..]);
            renames.push((row.try_get("id")?, name, new));
        }
        for (id, old, new) in &renames {
            normalize_mailbox_name(new)?;
            sqlx::query("UPDATE mailboxes SET name = $1 WHERE id = $2")
                .bind(new)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE OR IGNORE subscriptions SET name = $1 WHERE account_id = $2 AND name = $3",
            )
            .bind(new)
            .bind(account)
            .bind(old)
            .execute(&mut *tx)
            .await?;
            self.record_change(&mut tx, account, *id, 0).await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        for (id, _, _) in renames {
            self.publish(account, id, 0);
        }
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        let sql = if subscribed {
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES ($1, $2)"
        } else {
            "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2"
        };
        // Through the writers' group: a write of its own would race it for
        // SQLite's lock (see record_correspondents).
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        sqlx::query(sql)
            .bind(account)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        sqlx::query("SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name")
            .bind(account)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("name")?))
            .collect()
    }

    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        let r = sqlx::query(
            "SELECT COUNT(m.uid) AS messages, \
             COALESCE(SUM((m.flags & 1) = 0), 0) AS unseen, \
             COALESCE(SUM((m.flags & 8) != 0), 0) AS deleted, \
             COALESCE(SUM(m.uid >= b.first_recent), 0) AS recent, \
             COALESCE(SUM(m.size), 0) AS size \
             FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = $1",
        )
        .bind(mailbox)
        .fetch_one(&self.pool)
        .await?;
        Ok(MailboxStatus {
            messages: r.try_get::<i64, _>("messages")? as u32,
            unseen: r.try_get::<i64, _>("unseen")? as u32,
            deleted: r.try_get::<i64, _>("deleted")? as u32,
            recent: r.try_get::<i64, _>("recent")? as u32,
            size: r.try_get::<i64, _>("size")? as u64,
        })
    }

    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<std::ops::Range<u32>> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let row = sqlx::query("SELECT first_recent, uidnext FROM mailboxes WHERE id = $1")
            .bind(mailbox)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
        let first: i64 = row.try_get("first_recent")?;
        let next: i64 = row.try_get("uidnext")?;
        if claim {
            sqlx::query("UPDATE mailboxes SET first_recent = uidnext WHERE id = $1")
                .bind(mailbox)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        Ok(first as u32..next as u32)
    }

    async fn views(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageCache)>> {
        sqlx::query(
            "SELECT uid, envelope, bodystructure FROM messages WHERE mailbox_id = $1 \
             AND uid IN (SELECT value FROM json_each($2)) ORDER BY uid",
        )
        .bind(mailbox)
        .bind(uid_json(uids))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>("uid")? as u32,
                MessageCache {
                    envelope: r.try_get("envelope")?,
                    bodystructure: r.try_get("bodystructure")?,
                },
            ))
        })
        .collect()
    }

    async fn changes_since(&self, mailbox: MailboxId, modseq: u64) -> Result<MailboxDelta> {
        // Sessions watching one mailbox all ask the same question after a
        // delivery (10,000 idle clients: 10,000 identical reads). A caller
        // joins a read for the same (mailbox, MODSEQ) that has not started
        // yet, which therefore sees everything committed before the caller
        // asked; a read that started earlier is never joined.
        let key = (mailbox, modseq);
        static FLIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = FLIGHT.fetch_add(1, Ordering::Relaxed);
        let joined = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&key) {
                Some((_, f)) => Some(f.subscribe()),
                None => {
                    flights.insert(key, (id, tokio::sync::watch::channel(None).0));
                    None
                }
            }
        };
        if let Some(mut answer) = joined {
            // The leader gave up or failed: ask on our own.
            if let Ok(delta) = answer.wait_for(Option::is_some).await
                && let Some(delta) = delta.as_ref()
            {
                return Ok(MailboxDelta::clone(delta));
            }
            return self.read_changes(mailbox, modseq, None).await;
        }
        let mut leader = Leader {
            flights: &self.flights,
            key,
            id,
            closed: false,
            answer: None,
        };
        let delta = self
            .read_changes(mailbox, modseq, Some(&mut leader))
            .await?;
        leader.answer(&delta);
        Ok(delta)
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let rows = sqlx::query(
            "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = $1 \
             AND uid IN (SELECT value FROM json_each($2)) ORDER BY uid",
        )
        .bind(mailbox)
        .bind(uid_json(uids))
        .fetch_all(&mut *tx)
        .await?;
        let mut result = StoreFlagsResult::default();
        let mut planned = Vec::new();
        for r in &rows {
            let uid = r.try_get::<i64, _>("uid")? as u32;
            if unchanged_since.is_some_and(|u| {
                r.try_get::<i64, _>("modseq")
                    .map(|m| m as u64 > u)
                    .unwrap_or(true)
            }) {
                result.refused.push(uid);
                continue;
            }
            let flags = Flags::from_bits(r.try_get::<i64, _>("flags")? as u8);
            let keywords: String = r.try_get("keywords")?;
            let keywords: Vec<String> = keywords.split_whitespace().map(String::from).collect();
            let (new_flags, new_keywords) = change.apply(flags, &keywords);
            if new_flags != flags || new_keywords != keywords {
                planned.push((uid, new_flags, new_keywords));
            }
        }
        if planned.is_empty() {
            tx.commit().await?;
            turn.durable().await?;
            return Ok(result);
        }
        let (account_id, modseq) = bump_modseq(&mut tx, mailbox).await?;
        for (uid, flags, keywords) in planned {
            sqlx::query(
                "UPDATE messages SET flags = $1, keywords = $2, modseq = $3 \
                 WHERE mailbox_id = $4 AND uid = $5",
            )
            .bind(flags.bits() as i64)
            .bind(keywords.join(" "))
            .bind(modseq as i64)
            .bind(mailbox)
            .bind(uid as i64)
            .execute(&mut *tx)
            .await?;
            result.updated.push(FlagUpdate {
                uid,
                flags,
                keywords,
                modseq,
            });
        }
        self.record_change(&mut tx, account_id, mailbox, modseq)
            .await?;
        tx.commit().await?;
        turn.durable().await?;
        self.publish(account_id, mailbox, modseq);
        Ok(result)
    }

    async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        only_deleted: bool,
    ) -> Result<Vec<u32>> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let (account_id, modseq, gone) =
            expunge_in_tx(&mut tx, mailbox, uids, only_deleted).await?;
        if gone.is_empty() {
            tx.commit().await?;
            turn.durable().await?;
            return Ok(gone);
        }
        self.record_change(&mut tx, account_id, mailbox, modseq)
            .await?;
        tx.commit().await?;
        turn.durable().await?;
        self.publish(account_id, mailbox, modseq);
        self.collect_soon().await?;
        Ok(gone)
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
        // One statement and one row, so one read snapshot and one trip to
        // SQLite's thread (a row each would wake this task hundreds of
        // times a message): JSON arrays of [scope, spam, ham] totals and of
        // [token position, scope, spam, ham].
        let row = sqlx::query(
            "SELECT \
             (SELECT json_group_array(json_array(scope, spam, ham)) FROM bayes_totals \
              WHERE scope IN (SELECT value FROM json_each($1))) AS totals, \
             (SELECT json_group_array(json_array(t.key, b.scope, b.spam, b.ham)) \
              FROM json_each($2) t, json_each($1) s \
              CROSS JOIN bayes_tokens b ON b.scope = s.value AND b.token = t.value) AS tokens",
        )
        .bind(&scope_json)
        .bind(string_json(tokens))
        .fetch_one(&self.pool)
        .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes lookup: {e}"));
        let totals: Vec<(i64, i64, i64)> =
            serde_json::from_str(&row.try_get::<String, _>("totals")?).map_err(corrupt)?;
        let found: Vec<(usize, i64, i64, i64)> =
            serde_json::from_str(&row.try_get::<String, _>("tokens")?).map_err(corrupt)?;
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
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = $1) AS totals, \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = $1 AND $2 = 0) AS tokens"
        } else {
            "SELECT \
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = $1) AS totals, \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = $1 AND gen > $2) AS tokens"
        };
        let row = sqlx::query(sql)
            .bind(scope)
            .bind(since as i64)
            .fetch_one(&self.pool)
            .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes model: {e}"));
        let totals: Option<String> = row.try_get("totals")?;
        let totals: (u64, u64) = match totals {
            Some(t) => serde_json::from_str(&t).map_err(corrupt)?,
            None => (0, 0),
        };
        let tokens: Vec<(String, u64, u64)> =
            serde_json::from_str(&row.try_get::<String, _>("tokens")?).map_err(corrupt)?;
        Ok(ModelChanges {
            totals,
            tokens: tokens.into_iter().map(|(t, s, h)| (t, (s, h))).collect(),
        })
    }

    async fn bayes_train(&self, scope: i64, tokens: &[String], spam: bool) -> Result<()> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        train_in_tx(&mut tx, scope, tokens, spam).await?;
        tx.commit().await?;
        turn.durable().await?;
        Ok(())
    }

    async fn pending_training(&self, limit: usize) -> Result<Vec<TrainingEvent>> {
        let rows =
            sqlx::query("SELECT id, account_id, blob, spam FROM training ORDER BY id LIMIT $1")
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TrainingEvent {
                    id: r.try_get("id")?,
                    account: r.try_get("account_id")?,
                    blob: BlobHash(r.try_get("blob")?),
                    spam: r.try_get::<i64, _>("spam")? != 0,
                })
            })
            .collect()
    }

    async fn finish_training(
        &self,
        event: &TrainingEvent,
        scopes: &[i64],
        tokens: Option<&[String]>,
    ) -> Result<()> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let gone = sqlx::query("DELETE FROM training WHERE id = $1")
            .bind(event.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Another trainer (a second process on the same store) got it first.
        if gone == 0 {
            tx.commit().await?;
            return turn.durable().await;
        }
        if let Some(tokens) = tokens {
            for &scope in scopes {
                train_in_tx(&mut tx, scope, tokens, event.spam).await?;
            }
        }
        // The blob may have been waiting for this row to go.
        sqlx::query("INSERT OR IGNORE INTO blob_gc (hash) VALUES ($1)")
            .bind(&event.blob.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await?;
        Ok(())
    }

    async fn spam_lists(&self, account: AccountId) -> Result<Vec<ListedSender>> {
        sqlx::query("SELECT pattern, allow FROM spam_lists WHERE account_id = $1 ORDER BY pattern")
            .bind(account)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ListedSender {
                    pattern: r.try_get("pattern")?,
                    allow: r.try_get::<i64, _>("allow")? != 0,
                })
            })
            .collect()
    }

    async fn set_spam_list(
        &self,
        account: AccountId,
        pattern: &str,
        allow: Option<bool>,
    ) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        match allow {
            Some(allow) => {
                sqlx::query(
                    "INSERT INTO spam_lists (account_id, pattern, allow) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id, pattern) DO UPDATE SET allow = $3",
                )
                .bind(account)
                .bind(&pattern)
                .bind(allow as i64)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM spam_lists WHERE account_id = $1 AND pattern = $2")
                    .bind(account)
                    .bind(&pattern)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn record_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
        // In the writers' group, like every write on a path that runs per
        // message: a write of its own would race the group for SQLite's
        // lock and wait out the busy handler's sleeps (up to 100 ms each)
        // under load.
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        sqlx::query(
            "INSERT INTO correspondents (account_id, address, sent, last_sent) \
             SELECT $1, value, 1, $3 FROM json_each($2) WHERE true \
             ON CONFLICT (account_id, address) DO UPDATE SET sent = sent + 1, last_sent = $3",
        )
        .bind(account)
        .bind(string_json(&addresses))
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScript>> {
        sqlx::query(
            "SELECT name, active, length(CAST(content AS BLOB)) AS size FROM sieve_scripts \
             WHERE account_id = $1 ORDER BY name",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(SieveScript {
                name: r.try_get("name")?,
                active: r.try_get::<i64, _>("active")? != 0,
                size: r.try_get::<i64, _>("size")? as u64,
            })
        })
        .collect()
    }

    async fn sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT content FROM sieve_scripts WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("content"))
                .transpose()?,
        )
    }

    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>> {
        sqlx::query("SELECT name, content FROM sieve_scripts WHERE account_id = $1 AND active = 1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok((r.try_get("name")?, r.try_get("content")?)))
            .transpose()
    }

    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()> {
        check_script_name(name)?;
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        sqlx::query(
            "INSERT INTO sieve_scripts (account_id, name, content) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, name) DO UPDATE SET content = $3",
        )
        .bind(account)
        .bind(name)
        .bind(content)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        if let Some(name) = name {
            let found =
                sqlx::query("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2")
                    .bind(account)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(Error::NoScript(name.to_string()));
            }
        }
        sqlx::query("UPDATE sieve_scripts SET active = 0 WHERE account_id = $1 AND active = 1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            sqlx::query("UPDATE sieve_scripts SET active = 1 WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        Ok(())
    }

    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let row =
            sqlx::query("SELECT active FROM sieve_scripts WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::NoScript(name.to_string()))?;
        if row.try_get::<i64, _>("active")? != 0 {
            return Err(Error::ScriptActive(name.to_string()));
        }
        sqlx::query("DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await?;
        Ok(())
    }

    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        check_script_name(to)?;
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let taken = sqlx::query("SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(to)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(Error::ScriptExists(to.to_string()));
        }
        let done =
            sqlx::query("UPDATE sieve_scripts SET name = $3 WHERE account_id = $1 AND name = $2")
                .bind(account)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NoScript(from.to_string()));
        }
        tx.commit().await?;
        turn.durable().await?;
        Ok(())
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
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let until: Option<i64> = sqlx::query(
            "SELECT until FROM vacation_replies WHERE account_id = $1 AND handle = $2 AND sender = $3",
        )
        .bind(account)
        .bind(&handle)
        .bind(&sender)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("until"))
        .transpose()?;
        if until.is_some_and(|u| u > now) {
            // What was read must not be another writer's uncommitted work.
            tx.commit().await?;
            turn.durable().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO vacation_replies (account_id, handle, sender, until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, handle, sender) DO UPDATE SET until = $4",
        )
        .bind(account)
        .bind(&handle)
        .bind(&sender)
        .bind(now + (days.min(365) as i64) * 86_400)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        turn.durable().await?;
        Ok(true)
    }

    async fn sent_to(&self, account: AccountId, address: &str) -> Result<u64> {
        let n: Option<i64> =
            sqlx::query("SELECT sent FROM correspondents WHERE account_id = $1 AND address = $2")
                .bind(account)
                .bind(address.to_lowercase())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get("sent"))
                .transpose()?;
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
        tokio::spawn(watch(self.pool.clone(), self.feed.clone(), self.origin));
    }
}

/// Relays rows other processes add to `changes` onto the broadcast feed, and
/// trims old rows.
async fn watch(pool: SqlitePool, feed: broadcast::Sender<Change>, origin: i64) {
    let mut last: i64 = match sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM changes")
        .fetch_one(&pool)
        .await
        .and_then(|r| r.try_get("m"))
    {
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
        if pool.is_closed() {
            return;
        }
        let rows = sqlx::query(
            "SELECT seq, origin, account_id, mailbox_id, modseq FROM changes \
             WHERE seq > $1 ORDER BY seq",
        )
        .bind(last)
        .fetch_all(&pool)
        .await;
        match rows {
            Ok(rows) => {
                for r in rows {
                    let (Ok(seq), Ok(o), Ok(account_id), Ok(mailbox_id), Ok(modseq)) = (
                        r.try_get::<i64, _>("seq"),
                        r.try_get::<i64, _>("origin"),
                        r.try_get("account_id"),
                        r.try_get("mailbox_id"),
                        r.try_get::<i64, _>("modseq"),
                    ) else {
                        continue;
                    };
                    last = seq;
                    if o != origin {
                        let _ = feed.send(Change {
                            account_id,
                            mailbox_id,
                            modseq: modseq as u64,
                        });
                    }
                }
            }
            Err(e) => tracing::warn!("change watcher: {e}"),
        }
        ticks += 1;
        if ticks.is_multiple_of(200) {
            let _ = sqlx::query("DELETE FROM changes WHERE at < $1")
                .bind(unix_now() - CHANGE_TTL_SECS)
                .execute(&pool)
                .await;
        }
    }
}

async fn migrate(pool: &SqlitePool, path: &Path) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let current: i64 = sqlx::query("PRAGMA user_version")
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    if current == known {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // Read again under the lock: another process may have migrated meanwhile.
    let current: i64 = sqlx::query("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    if current > known {
        return Err(Error::SchemaTooNew {
            path: PathBuf::from(path),
            found: current,
            known,
        });
    }
    for sql in &MIGRATIONS[current as usize..] {
        sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await?;
    }
    sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA user_version = {known}")))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

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

async fn mailbox_id(
    tx: &mut WriteTx<'_>,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxId>> {
    Ok(
        sqlx::query("SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2")
            .bind(account)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?,
    )
}

/// Inserts a mailbox with a UIDVALIDITY never handed out before in this store:
/// the larger of the clock and one past the last one given.
async fn insert_mailbox(
    tx: &mut WriteTx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    let next: i64 = sqlx::query("SELECT value FROM meta WHERE key = 'next_uidvalidity'")
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get("value"))
        .transpose()?
        .unwrap_or(1);
    let uidvalidity = next.max(unix_now()).clamp(1, u32::MAX as i64);
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('next_uidvalidity', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(uidvalidity + 1)
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query(
        "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(account)
    .bind(name)
    .bind(special_use.map(|s| s.as_imap()))
    .bind(uidvalidity)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?)
}

fn account_from_row(r: &SqliteRow) -> Result<Account> {
    Ok(Account {
        id: r.try_get("id")?,
        address: r.try_get("address")?,
        is_admin: r.try_get::<i64, _>("is_admin")? != 0,
        quota_bytes: r.try_get("quota_bytes")?,
        pop3_delete: r
            .try_get::<Option<String>, _>("pop3_delete")?
            .as_deref()
            .and_then(Pop3Delete::parse),
        sent_copy: r
            .try_get::<Option<String>, _>("sent_copy")?
            .as_deref()
            .and_then(SentCopy::parse),
    })
}

fn mailbox_from_row(r: &SqliteRow) -> Result<Mailbox> {
    Ok(Mailbox {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        special_use: r
            .try_get::<Option<String>, _>("special_use")?
            .as_deref()
            .and_then(SpecialUse::parse),
        uidvalidity: r.try_get::<i64, _>("uidvalidity")? as u32,
        uidnext: r.try_get::<i64, _>("uidnext")? as u32,
        highestmodseq: r.try_get::<i64, _>("highestmodseq")? as u64,
        subscribed: r.try_get::<i64, _>("subscribed")? != 0,
    })
}

fn message_from_row(r: &SqliteRow) -> Result<MessageMeta> {
    let keywords: String = r.try_get("keywords")?;
    Ok(MessageMeta {
        uid: r.try_get::<i64, _>("uid")? as u32,
        modseq: r.try_get::<i64, _>("modseq")? as u64,
        flags: Flags::from_bits(r.try_get::<i64, _>("flags")? as u8),
        keywords: keywords.split_whitespace().map(String::from).collect(),
        internal_date: InternalDate {
            unix: r.try_get("internal_date")?,
            tz_minutes: r.try_get::<i64, _>("internal_tz")? as i32,
        },
        size: r.try_get::<i64, _>("size")? as u64,
        blob: BlobHash(r.try_get("blob")?),
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

/// UIDs as a JSON array, for `IN (SELECT value FROM json_each($n))`.
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

/// Raises a mailbox's HIGHESTMODSEQ by one; returns its account and the new value.
async fn bump_modseq(tx: &mut WriteTx<'_>, mailbox: MailboxId) -> Result<(AccountId, u64)> {
    let r = sqlx::query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 \
         RETURNING account_id, highestmodseq",
    )
    .bind(mailbox)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    Ok((
        r.try_get("account_id")?,
        r.try_get::<i64, _>("highestmodseq")? as u64,
    ))
}

/// Deletes messages inside a write transaction, remembering their UIDs
/// for VANISHED and their blobs for the collector. Bumps MODSEQ only when
/// something was there.
async fn expunge_in_tx(
    tx: &mut WriteTx<'_>,
    mailbox: MailboxId,
    uids: &[u32],
    only_deleted: bool,
) -> Result<(AccountId, u64, Vec<u32>)> {
    let present: Vec<u32> = sqlx::query(
        "SELECT uid FROM messages WHERE mailbox_id = $1 \
         AND uid IN (SELECT value FROM json_each($2)) AND ($3 = 0 OR (flags & 8) != 0) \
         ORDER BY uid",
    )
    .bind(mailbox)
    .bind(uid_json(uids))
    .bind(only_deleted as i64)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>("uid").map(|u| u as u32))
    .collect::<Result<_, _>>()?;
    if present.is_empty() {
        return Ok((0, 0, present));
    }
    let (account, modseq) = bump_modseq(tx, mailbox).await?;
    let list = uid_json(&present);
    sqlx::query(
        "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
         WHERE mailbox_id = $1 AND uid IN (SELECT value FROM json_each($2))",
    )
    .bind(mailbox)
    .bind(&list)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) \
         SELECT $1, value, $3 FROM json_each($2)",
    )
    .bind(mailbox)
    .bind(&list)
    .bind(modseq as i64)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM messages WHERE mailbox_id = $1 AND uid IN (SELECT value FROM json_each($2))",
    )
    .bind(mailbox)
    .bind(&list)
    .execute(&mut **tx)
    .await?;
    Ok((account, modseq, present))
}

struct Moved {
    /// The source mailbox's account.
    account: AccountId,
    result: CopyResult,
    /// (mailbox, new HIGHESTMODSEQ) of every mailbox that changed.
    touched: Vec<(MailboxId, u64)>,
}

/// Copies messages to `to` (new UIDs, same blobs, flags and dates), and
/// with `is_move` expunges them from `from`, inside one transaction.
async fn move_in_tx(
    tx: &mut WriteTx<'_>,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
    is_move: bool,
) -> Result<Moved> {
    let source_box =
        sqlx::query("SELECT account_id, name, special_use FROM mailboxes WHERE id = $1")
            .bind(from)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| Error::NoMailbox(format!("#{from}")))?;
    let account: AccountId = source_box.try_get("account_id")?;
    let rows = sqlx::query(
        "SELECT uid FROM messages WHERE mailbox_id = $1 \
         AND uid IN (SELECT value FROM json_each($2)) ORDER BY uid",
    )
    .bind(from)
    .bind(uid_json(uids))
    .fetch_all(&mut **tx)
    .await?;
    let source: Vec<u32> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("uid").map(|u| u as u32))
        .collect::<Result<_, _>>()?;
    let dest = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + $1, highestmodseq = highestmodseq + 1 \
         WHERE id = $2 RETURNING name, special_use, uidvalidity, uidnext, highestmodseq",
    )
    .bind(source.len() as i64)
    .bind(to)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{to}")))?;
    let uidvalidity = dest.try_get::<i64, _>("uidvalidity")? as u32;
    let first = dest.try_get::<i64, _>("uidnext")? - source.len() as i64;
    let modseq = dest.try_get::<i64, _>("highestmodseq")?;
    if first + source.len() as i64 > u32::MAX as i64 {
        return Err(Error::UidsExhausted(dest.try_get("name")?));
    }
    let mut result = CopyResult {
        uidvalidity,
        pairs: Vec::with_capacity(source.len()),
    };
    if source.is_empty() {
        return Ok(Moved {
            account,
            result,
            touched: Vec::new(),
        });
    }
    for (i, uid) in source.iter().enumerate() {
        let new_uid = first + i as i64;
        sqlx::query(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
             internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons) \
             SELECT $1, $2, $3, flags, keywords, internal_date, internal_tz, size, blob, \
             envelope, bodystructure, spam_score, spam_reasons \
             FROM messages WHERE mailbox_id = $4 AND uid = $5",
        )
        .bind(to)
        .bind(new_uid)
        .bind(modseq)
        .bind(from)
        .bind(*uid as i64)
        .execute(&mut **tx)
        .await?;
        result.pairs.push((*uid, new_uid as u32));
    }
    record_training(tx, from, &source, &source_box, &dest).await?;
    let mut touched = vec![(to, modseq as u64)];
    if is_move {
        let (_, source_modseq, _) = expunge_in_tx(tx, from, &source, false).await?;
        touched.push((from, source_modseq));
    }
    Ok(Moved {
        account,
        result,
        touched,
    })
}

/// Records what copying `uids` of `from` (its row: `source`) into the
/// mailbox `dest` (its row) teaches the spam filter, one training event a
/// message, in the copy's own transaction: the trainer sees exactly the
/// moves that happened.
async fn record_training(
    tx: &mut WriteTx<'_>,
    from: MailboxId,
    uids: &[u32],
    source: &SqliteRow,
    dest: &SqliteRow,
) -> Result<()> {
    let special = |row: &SqliteRow| -> Result<Option<SpecialUse>> {
        let text: Option<String> = row.try_get("special_use")?;
        Ok(text.as_deref().and_then(SpecialUse::parse))
    };
    let from_name: String = source.try_get("name")?;
    let to_name: String = dest.try_get("name")?;
    let Some(spam) = training((&from_name, special(source)?), (&to_name, special(dest)?)) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO training (account_id, blob, spam, at) \
         SELECT $1, blob, $2, $3 FROM messages WHERE mailbox_id = $4 \
         AND uid IN (SELECT value FROM json_each($5)) ORDER BY uid",
    )
    .bind(source.try_get::<i64, _>("account_id")?)
    .bind(spam as i64)
    .bind(unix_now())
    .bind(from)
    .bind(uid_json(uids))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates the missing superior levels of `name` (RFC 9051 6.3.4).
async fn create_parents(tx: &mut WriteTx<'_>, account: AccountId, name: &str) -> Result<()> {
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    let mut parent = String::new();
    for level in &levels[..levels.len() - 1] {
        if !parent.is_empty() {
            parent.push(DELIMITER);
        }
        parent.push_str(level);
        if mailbox_id(tx, account, &parent).await?.is_none() {
            insert_mailbox(tx, account, &parent, None).await?;
        }
    }
    Ok(())
}

/// Adds one message's tokens to the model of `scope`.
async fn train_in_tx(
    tx: &mut WriteTx<'_>,
    scope: i64,
    tokens: &[String],
    spam: bool,
) -> Result<()> {
    let (s, h) = if spam { (1i64, 0i64) } else { (0, 1) };
    let generation: i64 = sqlx::query(
        "INSERT INTO bayes_totals (scope, spam, ham) VALUES ($1, $2, $3) \
         ON CONFLICT (scope) DO UPDATE SET spam = spam + $2, ham = ham + $3 \
         RETURNING spam + ham AS gen",
    )
    .bind(scope)
    .bind(s)
    .bind(h)
    .fetch_one(&mut **tx)
    .await?
    .try_get("gen")?;
    sqlx::query(
        "INSERT INTO bayes_tokens (scope, token, spam, ham, gen) \
         SELECT $1, value, $3, $4, $5 FROM json_each($2) WHERE true \
         ON CONFLICT (scope, token) DO UPDATE SET spam = spam + $3, ham = ham + $4, gen = $5",
    )
    .bind(scope)
    .bind(string_json(tokens))
    .bind(s)
    .bind(h)
    .bind(generation)
    .execute(&mut **tx)
    .await?;
    Ok(())
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

/// Reads of a mailbox's changes that other callers may still join, each
/// with its leader's id.
type Flights = std::sync::Mutex<std::collections::HashMap<(MailboxId, u64), (u64, Answer)>>;

/// The caller running a shared read. Taking its entry out of the map
/// closes the read to joiners; dropped without an answer (an error, or
/// cancelled), the joiners find the channel closed and read on their own.
struct Leader<'a> {
    flights: &'a Flights,
    key: (MailboxId, u64),
    id: u64,
    closed: bool,
    answer: Option<Answer>,
}

impl Leader<'_> {
    /// Closes the read to new joiners: it is about to run. Only once, and
    /// only its own entry: a later caller's read under the same key has
    /// joiners that asked after this read started.
    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            self.answer = flights.remove(&self.key).map(|(_, answer)| answer);
        }
    }

    fn answer(mut self, delta: &MailboxDelta) {
        self.close();
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(Some(Arc::new(delta.clone())));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

impl SqliteStore {
    /// The changes of `mailbox` after `modseq`, read now. A `leader`'s
    /// read is closed to joiners once it has its connection, right before
    /// the statement runs.
    async fn read_changes(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        leader: Option<&mut Leader<'_>>,
    ) -> Result<MailboxDelta> {
        let mut conn = self.pool.acquire().await?;
        if let Some(leader) = leader {
            leader.close();
        }
        // One statement, so the three answers come from one snapshot, in
        // one trip to the database thread (sessions ask after every change
        // to their mailbox). `kind` 0: the mailbox; 1: a message changed or
        // added; 2: a message expunged.
        let rows = sqlx::query(
            "SELECT 0 AS kind, highestmodseq AS uid, uidnext AS modseq, 0 AS flags, \
                    '' AS keywords, 0 AS internal_date, 0 AS internal_tz, 0 AS size, '' AS blob \
             FROM mailboxes WHERE id = $1 \
             UNION ALL \
             SELECT 1, uid, modseq, flags, keywords, internal_date, internal_tz, size, blob \
             FROM messages WHERE mailbox_id = $1 AND modseq > $2 \
             UNION ALL \
             SELECT 2, uid, 0, 0, '', 0, 0, 0, '' FROM expunged WHERE mailbox_id = $1 AND modseq > $2 \
             ORDER BY kind, uid",
        )
        .bind(mailbox)
        .bind(modseq as i64)
        .fetch_all(&mut *conn)
        .await?;
        let mut delta = None;
        let mut changed = Vec::new();
        let mut expunged = Vec::new();
        for r in &rows {
            match r.try_get::<i64, _>("kind")? {
                0 => {
                    delta = Some((
                        r.try_get::<i64, _>("uid")? as u64,
                        r.try_get::<i64, _>("modseq")? as u32,
                    ))
                }
                1 => changed.push(message_from_row(r)?),
                _ => expunged.push(r.try_get::<i64, _>("uid")? as u32),
            }
        }
        let (highestmodseq, uidnext) =
            delta.ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
        Ok(MailboxDelta {
            highestmodseq,
            uidnext,
            changed,
            expunged,
        })
    }
}
