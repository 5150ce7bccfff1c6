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
use crate::names::{
    check_script_name, normalize_address, normalize_alias, normalize_mailbox_name,
    normalize_sender_pattern, refuse_default,
};
use crate::prelude::*;
use crate::types::*;
use crate::{Error, Result, SortKeys, WATCH_INTERVAL, password, unix_now};
use engine::{Engine, Tx, all, exec, one};

mod accounts;
mod cache;
mod check;
mod engine;
mod feed;
mod logins;
mod mailboxes;
mod messages;
mod outbound;
mod quota;
mod scripts;
mod sorting;
mod spam;
mod states;
mod traces;
mod upkeep;
mod web_sessions;

pub use check::{CheckReport, Finding};
// Each area's helpers, for the others and for the store's own methods here.
use self::{accounts::*, mailboxes::*, messages::*};

// The embedded backend's errors reach callers as text: no SQLite type in
// the store's `Error`, so another backend can fill the same variant.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e.sqlite_error_code() {
            // SQLITE_FULL: the transaction was rolled back whole.
            Some(rusqlite::ErrorCode::DiskFull) => Error::NoSpace("the index".into()),
            _ => Error::Db(e.to_string()),
        }
    }
}

// Ids bind and read as the integers SQLite keeps.
macro_rules! integer_id {
    ($id:ident) => {
        impl rusqlite::ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl rusqlite::types::FromSql for $id {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map($id)
            }
        }
    };
}
integer_id!(AccountId);
integer_id!(MailboxId);

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_bayes.sql"),
    include_str!("../migrations/sqlite/0003_spam_personal.sql"),
    include_str!("../migrations/sqlite/0004_sieve.sql"),
    include_str!("../migrations/sqlite/0005_expunged_modseq.sql"),
    include_str!("../migrations/sqlite/0006_outbound.sql"),
    include_str!("../migrations/sqlite/0007_sent_copy.sql"),
    include_str!("../migrations/sqlite/0008_queue_prefix.sql"),
    include_str!("../migrations/sqlite/0009_unseen.sql"),
    include_str!("../migrations/sqlite/0010_image_senders.sql"),
    include_str!("../migrations/sqlite/0011_logins.sql"),
    include_str!("../migrations/sqlite/0012_junk_report.sql"),
    include_str!("../migrations/sqlite/0013_trace.sql"),
    include_str!("../migrations/sqlite/0014_quota_messages.sql"),
    include_str!("../migrations/sqlite/0015_expunged_pruned.sql"),
    include_str!("../migrations/sqlite/0016_message_keys.sql"),
    include_str!("../migrations/sqlite/0017_saved_at.sql"),
    include_str!("../migrations/sqlite/0018_preview.sql"),
    include_str!("../migrations/sqlite/0019_casemap_fields.sql"),
    include_str!("../migrations/sqlite/0020_referral.sql"),
    include_str!("../migrations/sqlite/0021_training_log.sql"),
    include_str!("../migrations/sqlite/0022_throttle_web_sessions.sql"),
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
    JunkReport,
    Referral,
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
    /// Message bodies read since the store opened ([`Upkeep::body_reads`]).
    body_reads: Arc<std::sync::atomic::AtomicU64>,
    /// The sort keys of the mailboxes sorted last.
    keys: Arc<sorting::KeyCache>,
    /// The message states of the mailboxes opened last.
    states: Arc<states::StateCache>,
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
            body_reads: Arc::default(),
            keys: Arc::new(sorting::key_cache()),
            states: Arc::new(states::state_cache()),
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
        value: Option<&str>,
    ) -> Result<()> {
        let address = normalize_address(address)?;
        let value = value.map(str::to_string);
        let sql = match setting {
            AccountSetting::Pop3Delete => "UPDATE accounts SET pop3_delete = ?1 WHERE address = ?2",
            AccountSetting::SentCopy => "UPDATE accounts SET sent_copy = ?1 WHERE address = ?2",
            AccountSetting::JunkReport => "UPDATE accounts SET junk_report = ?1 WHERE address = ?2",
            AccountSetting::Referral => "UPDATE accounts SET referral = ?1 WHERE address = ?2",
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
    /// transaction (see [`Messages::append_claiming`]).
    async fn append_to(
        &self,
        items: Vec<(MailboxId, NewMessage<'_>)>,
        claim: Option<MailboxId>,
    ) -> Result<(Vec<Appended>, Option<std::ops::Range<u32>>)> {
        let (distinct, bodies) = distinct_bodies(&items)?;
        let rows: Vec<NewRow> = items
            .iter()
            .zip(bodies)
            .map(|((mailbox, m), body)| NewRow::of(*mailbox, m, body))
            .collect();
        // Blobs are written and fsync'd before the write turn.
        // The sort keys (RFC 5256) are made from each header here, once.
        let raws: Vec<Vec<u8>> = distinct.iter().map(|r| r.to_vec()).collect();
        let blobs = self.blobs.clone();
        let (staged, keys) = tokio::task::spawn_blocking(move || {
            let staged = raws
                .iter()
                .map(|r| blobs.stage(r))
                .collect::<Result<Vec<Staged>>>()?;
            let keys: Vec<SortKeys> = raws.iter().map(|r| mime::sort::sort_keys(r)).collect();
            Ok::<_, Error>((staged, keys))
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
                // Refused over quota before a body is placed: the staged
                // files go with the error (nothing half-stored).
                let adding: Vec<(MailboxId, u64)> = rows
                    .iter()
                    .map(|r| (r.mailbox, r.size.max(0) as u64))
                    .collect();
                quota::check(c, &adding)?;
                let hashes = place(c, &blobs, staged)?;
                let (out, touched) = insert_rows(c, origin, &rows, &hashes, &keys)?;
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
            "SELECT id, address, is_admin, quota_bytes, quota_messages, pop3_delete, sent_copy, \
             junk_report, junk_report_at, referral",
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
            "SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob, \
             COALESCE(saved_at, internal_date) FROM messages ",
            $rest
        )
    };
}
use select_messages;

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

/// Mailboxes changed by an append: (account, mailbox, new HIGHESTMODSEQ).
type Touched = Vec<(AccountId, MailboxId, u64)>;

type Answer = tokio::sync::watch::Sender<Option<Arc<MailboxDelta>>>;

/// The reads under way, by (mailbox, MODSEQ asked from).
type Flights = std::sync::Mutex<std::collections::HashMap<(MailboxId, u64), Flight>>;
