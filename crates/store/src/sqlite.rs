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
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};
use tokio::sync::broadcast;

use crate::blob::{BlobStore, Staged};
use crate::names::{normalize_address, normalize_mailbox_name};
use crate::types::*;
use crate::{Error, MailStore, Result, WATCH_INTERVAL, password, unix_now};

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_init.sql")];

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long wake-ups stay in the `changes` table.
const CHANGE_TTL_SECS: i64 = 120;

pub struct SqliteStore {
    pool: SqlitePool,
    blobs: BlobStore,
    feed: broadcast::Sender<Change>,
    /// Tags this process's rows in `changes`, so its watcher skips them.
    origin: i64,
    watching: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: `dir/index.sqlite` and
    /// `dir/blobs/`.
    pub async fn open(dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let db_path = dir.join("index.sqlite");
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        migrate(&pool, &db_path).await?;
        let blobs = BlobStore::open(dir.join("blobs"))?;
        blobs.clean_temp();
        let (feed, _) = broadcast::channel(1024);
        Ok(SqliteStore {
            pool,
            blobs,
            feed,
            origin: random_origin(),
            watching: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Deletes blob files that no message refers to any more. Runs under the
    /// index write lock so no append can re-use a blob while it is unlinked.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT hash FROM blob_gc WHERE NOT EXISTS \
             (SELECT 1 FROM messages WHERE messages.blob = blob_gc.hash)",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            self.blobs.remove(&BlobHash(row.try_get("hash")?))?;
        }
        sqlx::query("DELETE FROM blob_gc").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn append_in_mailbox(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<Vec<Appended>> {
        if messages.iter().any(|m| m.raw.is_empty()) {
            return Err(Error::EmptyMessage);
        }
        // Blobs are written and fsync'd before the write lock is taken.
        let raws: Vec<Vec<u8>> = messages.iter().map(|m| m.raw.to_vec()).collect();
        let blobs = self.blobs.clone();
        let staged = tokio::task::spawn_blocking(move || {
            raws.iter()
                .map(|r| blobs.stage(r))
                .collect::<Result<Vec<Staged>>>()
        })
        .await
        .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = messages.len() as i64;
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
        if first_uid + n - 1 > u32::MAX as i64 {
            return Err(Error::UidsExhausted(row.try_get("name")?));
        }

        let blobs = self.blobs.clone();
        let hashes = tokio::task::spawn_blocking(move || blobs.publish(staged))
            .await
            .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;

        let mut out = Vec::with_capacity(messages.len());
        for (i, (m, hash)) in messages.iter().zip(hashes).enumerate() {
            let uid = first_uid + i as i64;
            let modseq = first_modseq + i as i64;
            sqlx::query(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
                 internal_tz, size, blob, envelope, bodystructure) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        tx.commit().await?;
        self.publish(account_id, mailbox, last_modseq);
        Ok(out)
    }

    async fn record_change(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
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
            "SELECT id, address, is_admin, quota_bytes, password_hash FROM accounts \
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        }
        tx.commit().await?;
        Ok(Account {
            id,
            address,
            is_admin: admin,
            quota_bytes: 0,
        })
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        sqlx::query("SELECT id, address, is_admin, quota_bytes FROM accounts ORDER BY address")
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

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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
        tx.commit().await?;
        self.collect_garbage().await?;
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if mailbox_id(&mut tx, account, &name).await?.is_some() {
            return Err(Error::MailboxExists(name));
        }
        // RFC 9051 6.3.4: superior levels are created as needed.
        let mut parent = String::new();
        let levels: Vec<&str> = name.split(DELIMITER).collect();
        for level in &levels[..levels.len() - 1] {
            if !parent.is_empty() {
                parent.push(DELIMITER);
            }
            parent.push_str(level);
            if mailbox_id(&mut tx, account, &parent).await?.is_none() {
                insert_mailbox(&mut tx, account, &parent, None).await?;
            }
        }
        let id = insert_mailbox(&mut tx, account, &name, special_use).await?;
        let row = sqlx::query(select_mailboxes!("WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        mailbox_from_row(&row)
    }

    async fn append(&self, mailbox: MailboxId, message: NewMessage<'_>) -> Result<Appended> {
        let mut done = self.append_in_mailbox(mailbox, vec![message]).await?;
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
        self.append_in_mailbox(mailbox, messages).await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        sqlx::query(
            "SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob, \
             envelope, bodystructure FROM messages WHERE mailbox_id = $1 ORDER BY uid",
        )
        .bind(mailbox)
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

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
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
             subscribed FROM mailboxes ",
            $rest
        )
    };
}
use select_mailboxes;

async fn mailbox_id(
    tx: &mut Transaction<'_, Sqlite>,
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
    tx: &mut Transaction<'_, Sqlite>,
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
        cache: MessageCache {
            envelope: r.try_get("envelope")?,
            bodystructure: r.try_get("bodystructure")?,
        },
    })
}

fn random_origin() -> i64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (OsRng.next_u64() >> 1) as i64
}
