//! The PostgreSQL backend (issue 20): the store's traits on a database
//! that many Satchel nodes share. Everything a node keeps is in
//! PostgreSQL, message bodies included (`blobs`), so a node that dies
//! takes nothing with it. UIDs and MODSEQs are taken under the mailbox
//! row's lock inside the writing transaction, so they commit in the order
//! they were handed out; the change feed crosses nodes with LISTEN/NOTIFY
//! ([`feed`]).
//!
//! The driver is tokio-postgres with a deadpool pool: the store's calls
//! are async already, so no thread of its own is needed (the embedded
//! backend's SQLite is synchronous and runs on threads of its own), and
//! LISTEN is read straight off a connection's message stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use deadpool_postgres::GenericClient;
use tokio::sync::broadcast;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::prelude::*;
use crate::types::*;
use crate::{Error, Result, password, unix_now};

mod accounts;
mod body_cache;
mod check;
mod feed;
mod logins;
mod mailboxes;
mod messages;
mod outbound;
mod quota;
mod scripts;
mod sorting;
mod spam;
mod tls;
mod traces;
mod upkeep;
mod web_sessions;

/// Schema migrations, applied in order; `schema_version` counts them.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_logins_and_notes.sql"),
];

/// The channel every node LISTENs on. A notice says only "look": origin,
/// account, mailbox and MODSEQ, far under NOTIFY's 8,000 bytes.
const CHANNEL: &str = "satchel_changes";

/// Serializes migrations between nodes starting at once.
const MIGRATION_LOCK: i64 = 0x05a7_c4e1_0001;

/// How many connections a node opens to PostgreSQL at most.
const POOL_SIZE: usize = 16;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        match e.as_db_error() {
            Some(db) if db.code() == &SqlState::DISK_FULL => Error::NoSpace("the database".into()),
            // Another node's transaction won a race: a deadlock, a
            // serialization failure, or a body collected just as it was
            // shared again. Nothing was written; the same write can work.
            Some(db)
                if [
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::FOREIGN_KEY_VIOLATION,
                ]
                .contains(db.code()) =>
            {
                Error::Commit(format!("{} ({})", db.message(), db.code().code()))
            }
            Some(db) => Error::Db(format!("{} ({})", db.message(), db.code().code())),
            None => Error::Db(with_causes(&e)),
        }
    }
}

/// An error and what caused it, down the chain: "error performing TLS
/// handshake" alone would not say that the certificate was the trouble.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Error {
        let text = with_causes(&e);
        let hint = if text.contains("invalid peer certificate") {
            "; the URL's sslrootcert=PATH names the CA that signed the database's \
             certificate, and its host must be a name the certificate carries"
        } else {
            ""
        };
        Error::Db(format!("cannot reach PostgreSQL: {text}{hint}"))
    }
}

#[derive(Clone)]
pub struct PgStore {
    pool: deadpool_postgres::Pool,
    /// Where the database is, for the feed's own listening connection.
    config: tokio_postgres::Config,
    /// How connections are encrypted ([`tls::settings`]).
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    feed: broadcast::Sender<Change>,
    /// Tags this node's notices, so its listener skips them.
    origin: i64,
    listening: Arc<AtomicBool>,
    /// Logins verified recently (see [`password::Verified`]).
    logins: Arc<password::Verified>,
    /// Message bodies read since the store opened ([`Upkeep::body_reads`]).
    body_reads: Arc<AtomicU64>,
    /// Bodies read lately, kept on this node ([`PgStore::with_disk_cache`]).
    bodies: Arc<body_cache::BodyCache>,
    /// The connection that holds this node's liveness lock ([`PgStore::alive`]).
    liveness: Arc<tokio::sync::Mutex<Option<tokio_postgres::Client>>>,
    /// The POP3 maildrop locks this node holds, on the liveness connection
    /// (taken again if that connection is made anew).
    maildrops: Arc<std::sync::Mutex<std::collections::HashSet<AccountId>>>,
}

impl PgStore {
    /// Keeps the bodies this node reads in `dir` too, up to `budget` bytes,
    /// besides the memory cache every node has: a node then reads a body
    /// from PostgreSQL once, not at every client's FETCH of it. The folder
    /// is the node's own (never shared); losing it loses nothing.
    pub fn with_disk_cache(mut self, dir: &std::path::Path, budget: u64) -> Result<PgStore> {
        self.bodies = Arc::new(body_cache::BodyCache::with_disk(dir, budget)?);
        Ok(self)
    }

    /// Connects to the database at `url` (`postgres://user:password@host/db`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore> {
        let (mut config, tls) = tls::settings(url)?;
        if config.get_application_name().is_none() {
            config.application_name("satchel");
        }
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tls.clone(),
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Db(format!("cannot make a PostgreSQL pool: {e}")))?;
        let store = PgStore {
            pool,
            config,
            tls,
            feed: broadcast::channel(1024).0,
            origin: random_origin(),
            listening: Arc::new(AtomicBool::new(false)),
            logins: Arc::new(password::Verified::new()),
            body_reads: Arc::default(),
            bodies: Arc::default(),
            liveness: Arc::default(),
            maildrops: Arc::default(),
        };
        store.migrate(url).await?;
        Ok(store)
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Brings the schema up to date under an advisory lock, so that nodes
    /// starting together migrate once.
    async fn migrate(&self, url: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let fresh: bool = tx
            .query_one("SELECT to_regclass('schema_version') IS NULL", &[])
            .await?
            .get(0);
        if fresh {
            tx.batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
                .await?;
        }
        let current: i64 = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(Error::SchemaTooNew {
                path: without_password(url).into(),
                found: current,
                known,
            });
        }
        for sql in &MIGRATIONS[current.max(0) as usize..] {
            tx.batch_execute(sql).await?;
        }
        if current < known {
            tx.execute("DELETE FROM schema_version", &[]).await?;
            tx.execute("INSERT INTO schema_version VALUES ($1)", &[&known])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tells this node's subscribers at once; other nodes hear the
    /// transaction's NOTIFY ([`notify`]) when it commits.
    fn publish(&self, account_id: AccountId, mailbox_id: MailboxId, modseq: u64) {
        let _ = self.feed.send(Change {
            account_id,
            mailbox_id,
            modseq,
        });
    }
}

impl PgStore {
    /// This node's number among the nodes: the key of its liveness lock,
    /// and what its queue leases carry (`queue_rcpt.leased_by`).
    fn node(&self) -> i64 {
        self.origin % i32::MAX as i64 + 1
    }

    /// Makes sure this node holds its liveness lock: a session-level
    /// advisory lock on a connection of its own, which PostgreSQL lets go
    /// the moment the node's connection dies (a crash, `kill -9`, a lost
    /// network). Another node then takes over its queue leases
    /// ([`DEAD_LEASE`]).
    async fn alive(&self) -> Result<()> {
        self.liveness().await.map(|_| ())
    }

    /// The liveness connection, made (and the lock taken) if need be.
    async fn liveness(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<tokio_postgres::Client>>> {
        let mut held = self.liveness.lock().await;
        if held.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(held);
        }
        let mut config = self.config.clone();
        config.application_name("satchel liveness");
        let (client, connection) = config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("the liveness connection to PostgreSQL failed: {e}");
            }
        });
        client
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&LIVENESS_LOCKS, &(self.node() as i32)],
            )
            .await?;
        // The connection before this one took its locks along: the POP3
        // sessions still open here take theirs again. One another node
        // took meanwhile cannot be had back; the admin is told.
        let maildrops: Vec<AccountId> = self.maildrops_held().iter().copied().collect();
        for account in maildrops {
            let key = accounts::maildrop_key(account);
            let again: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await?
                .get(0);
            if !again {
                tracing::warn!(
                    "the POP3 lock of account {account} was lost with the connection to \
                     PostgreSQL, and another node holds it now"
                );
            }
        }
        *held = Some(client);
        Ok(held)
    }

    /// The maildrop locks this node holds.
    fn maildrops_held(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<AccountId>> {
        self.maildrops.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The class of the nodes' liveness locks, apart from other advisory locks.
const LIVENESS_LOCKS: i32 = 0x4e4f_4445;

/// A queue recipient's lease whose node is gone: none, or a node that no
/// longer holds its liveness lock ([`PgStore::alive`]). `queue_rcpt` must
/// be in scope unaliased.
const DEAD_LEASE: &str = "(queue_rcpt.leased_by IS NULL OR NOT EXISTS (SELECT 1 FROM pg_locks l \
     WHERE l.locktype = 'advisory' AND l.classid = 1313817669 AND l.objsubid = 2 AND l.granted \
     AND l.objid::TEXT::BIGINT = queue_rcpt.leased_by))";

/// Queues a notice of a change for every node, sent when (and only if)
/// the transaction commits.
async fn notify(
    c: &impl GenericClient,
    origin: i64,
    account: AccountId,
    mailbox: MailboxId,
    modseq: u64,
) -> Result<()> {
    let payload = format!("{origin} {} {} {modseq}", account.0, mailbox.0);
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// The first row, if any.
async fn one(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>> {
    Ok(c.query_opt(sql, params).await?)
}

/// Every row.
async fn all(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    Ok(c.query(sql, params).await?)
}

/// Runs a statement; how many rows it changed.
async fn exec(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    Ok(c.execute(sql, params).await?)
}

/// UIDs as the BIGINT[] that `= ANY($n)` takes.
fn uid_array(uids: &[u32]) -> Vec<i64> {
    uids.iter().map(|&u| u as i64).collect()
}

/// `text` without NUL characters, which PostgreSQL's TEXT cannot hold.
pub(crate) fn without_nul_text(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text
    }
}

/// The URL with its password left out, for messages and logs.
pub fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn random_origin() -> i64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    (OsRng.next_u64() >> 1) as i64
}

/// Whether `e` is worth trying the transaction again for (see the
/// conversion of PostgreSQL's errors above).
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Commit(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            without_password("postgres://satchel:secret@db.example/mail"),
            "postgres://satchel@db.example/mail"
        );
        assert_eq!(
            without_password("postgres://db.example/mail"),
            "postgres://db.example/mail"
        );
    }
}
