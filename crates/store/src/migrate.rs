//! `satchel migrate --to postgres://...`: copies an embedded store into a
//! PostgreSQL one, keeping every id, UIDVALIDITY, UID, MODSEQ and flag, so
//! that IMAP clients' cached state stays valid. The embedded index is read
//! from one snapshot (a read transaction on a connection of its own);
//! every row goes in with `ON CONFLICT DO NOTHING`, so a copy that was
//! interrupted is simply run again. At the end, each table's rows are
//! counted on both sides and every message's (mailbox, UID, MODSEQ,
//! flags, keywords, body) is compared by a digest.

use std::path::Path;

use rusqlite::types::Value as Lite;
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;

use crate::blob::BlobStore;
use crate::postgres::without_nul_text;
use crate::{BlobHash, Error, PgStore, Result};

/// Rows per INSERT.
const BATCH: usize = 500;

/// What a copy did, table by table.
#[derive(Debug, Default)]
pub struct Migrated {
    /// (table, rows in the embedded store, rows in PostgreSQL after).
    pub tables: Vec<(&'static str, u64, u64)>,
    /// Message bodies copied now (those already there are not counted).
    pub bodies: u64,
}

/// How far the copy is: (what, done, of).
pub type Progress<'a> = &'a mut (dyn FnMut(&str, u64, u64) + Send);

/// One column: its name and how its value crosses over.
#[derive(Clone, Copy)]
enum Kind {
    /// INTEGER to BIGINT.
    Int,
    /// INTEGER 0/1 to BOOLEAN.
    Bool,
    /// TEXT (NULL allowed where the column allows it).
    Text,
    /// BLOB to BYTEA.
    Bytes,
}

use Kind::*;

/// A table: its name, its columns, and what orders its rows.
type Table = (&'static str, &'static [(&'static str, Kind)], &'static str);

/// The tables in the order their foreign keys need, with their columns
/// (the same names on both sides) and what orders a stable copy.
const TABLES: &[Table] = &[
    (
        "accounts",
        &[
            ("id", Int),
            ("address", Text),
            ("password_hash", Text),
            ("is_admin", Bool),
            ("quota_bytes", Int),
            ("quota_messages", Int),
            ("pop3_delete", Text),
            ("sent_copy", Text),
            ("junk_report", Text),
            ("junk_report_at", Int),
            ("referral", Text),
            ("created_at", Int),
        ],
        "id",
    ),
    (
        "aliases",
        &[("address", Text), ("account_id", Int)],
        "address",
    ),
    (
        "mailboxes",
        &[
            ("id", Int),
            ("account_id", Int),
            ("name", Text),
            ("special_use", Text),
            ("uidvalidity", Int),
            ("uidnext", Int),
            ("highestmodseq", Int),
            ("first_recent", Int),
            ("vanished_floor", Int),
        ],
        "id",
    ),
    (
        "subscriptions",
        &[("account_id", Int), ("name", Text)],
        "account_id, name",
    ),
    (
        "messages",
        &[
            ("id", Int),
            ("mailbox_id", Int),
            ("uid", Int),
            ("modseq", Int),
            ("flags", Int),
            ("keywords", Text),
            ("internal_date", Int),
            ("internal_tz", Int),
            ("size", Int),
            ("blob", Text),
            ("envelope", Bytes),
            ("bodystructure", Bytes),
            ("spam_score", Int),
            ("spam_reasons", Text),
            ("saved_at", Int),
            ("preview", Text),
        ],
        "id",
    ),
    (
        "message_keys",
        &[
            ("id", Int),
            ("sent", Int),
            ("subject", Text),
            ("reply", Bool),
            ("from_key", Text),
            ("to_key", Text),
            ("cc_key", Text),
            ("display_from", Text),
            ("display_to", Text),
            ("message_id", Text),
            ("refs", Text),
            ("sent_day", Int),
            ("fields", Text),
        ],
        "id",
    ),
    (
        "expunged",
        &[
            ("mailbox_id", Int),
            ("uid", Int),
            ("modseq", Int),
            ("at", Int),
        ],
        "mailbox_id, uid",
    ),
    (
        "training",
        &[
            ("id", Int),
            ("account_id", Int),
            ("blob", Text),
            ("spam", Bool),
            ("at", Int),
        ],
        "id",
    ),
    (
        "training_log",
        &[
            ("id", Int),
            ("account_id", Int),
            ("spam", Bool),
            ("subject", Text),
            ("at", Int),
        ],
        "id",
    ),
    (
        "bayes_totals",
        &[("scope", Int), ("spam", Int), ("ham", Int)],
        "scope",
    ),
    (
        "bayes_tokens",
        &[
            ("scope", Int),
            ("token", Text),
            ("spam", Int),
            ("ham", Int),
            ("gen", Int),
        ],
        "scope, token",
    ),
    (
        "spam_lists",
        &[("account_id", Int), ("pattern", Text), ("allow", Bool)],
        "account_id, pattern",
    ),
    (
        "image_senders",
        &[("account_id", Int), ("pattern", Text)],
        "account_id, pattern",
    ),
    (
        "correspondents",
        &[
            ("account_id", Int),
            ("address", Text),
            ("sent", Int),
            ("last_sent", Int),
        ],
        "account_id, address",
    ),
    (
        "sieve_scripts",
        &[
            ("account_id", Int),
            ("name", Text),
            ("content", Text),
            ("active", Bool),
        ],
        "account_id, name",
    ),
    (
        "vacation_replies",
        &[
            ("account_id", Int),
            ("handle", Text),
            ("sender", Text),
            ("until", Int),
        ],
        "account_id, handle, sender",
    ),
    (
        "logins",
        &[("account_id", Int), ("door", Text), ("at", Int)],
        "account_id, door",
    ),
    ("secrets", &[("name", Text), ("value", Bytes)], "name"),
    ("used_links", &[("id", Text), ("expires", Int)], "id"),
    (
        "queue",
        &[
            ("id", Int),
            ("qid", Text),
            ("sender", Text),
            ("account_id", Int),
            ("blob", Text),
            ("size", Int),
            ("eight_bit", Bool),
            ("prefix", Bytes),
            ("created", Int),
        ],
        "id",
    ),
    (
        "queue_rcpt",
        &[
            ("message_id", Int),
            ("address", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_try", Int),
            ("last_answer", Text),
            ("delayed", Bool),
        ],
        "message_id, address",
    ),
    (
        "dkim_keys",
        &[
            ("id", Int),
            ("domain", Text),
            ("selector", Text),
            ("algorithm", Text),
            ("private", Bytes),
            ("public", Text),
            ("created", Int),
            ("retired", Int),
        ],
        "id",
    ),
    (
        "sent_ids",
        &[
            ("account_id", Int),
            ("message_id", Text),
            ("mailbox_id", Int),
            ("uid", Int),
            ("at", Int),
        ],
        "account_id, message_id",
    ),
    (
        "trace",
        &[
            ("id", Int),
            ("at", Int),
            ("direction", Text),
            ("door", Text),
            ("client", Text),
            ("mail_from", Text),
            ("message_id", Text),
            ("subject", Text),
            ("auth", Text),
            ("qid", Text),
            ("recipients", Text),
        ],
        "id",
    ),
    // No key to skip rows already copied by: its rows are deleted first
    // ([`Batch::Start`]) and copied whole each time.
    (
        "trace_answers",
        &[
            ("qid", Text),
            ("at", Int),
            ("rcpt", Text),
            ("outcome", Text),
            ("answer", Text),
        ],
        "qid, at, rowid",
    ),
];

/// Tables whose rows carry an identity id, set past the copied ones after.
const IDENTITIES: &[&str] = &[
    "accounts",
    "mailboxes",
    "messages",
    "training",
    "training_log",
    "queue",
    "dkim_keys",
    "trace",
];

/// A value on its way from SQLite to PostgreSQL.
type Cell = Box<dyn ToSql + Sync + Send>;

fn cell(value: Lite, kind: Kind) -> Cell {
    match (kind, value) {
        (Int, Lite::Integer(i)) => Box::new(Some(i)),
        (Int, _) => Box::new(None::<i64>),
        (Bool, Lite::Integer(i)) => Box::new(Some(i != 0)),
        (Bool, _) => Box::new(None::<bool>),
        (Text, Lite::Text(t)) => Box::new(Some(without_nul_text(t))),
        (Text, Lite::Integer(i)) => Box::new(Some(i.to_string())),
        (Text, _) => Box::new(None::<String>),
        (Bytes, Lite::Blob(b)) => Box::new(Some(b)),
        (Bytes, Lite::Text(t)) => Box::new(Some(t.into_bytes())),
        (Bytes, _) => Box::new(None::<Vec<u8>>),
    }
}

/// Copies the embedded store in `dir` into `to`; `progress` hears how far
/// it is. The embedded store should not be written meanwhile (stop the
/// server): the copy is of one snapshot, and what comes after it stays
/// behind.
pub async fn migrate(dir: &Path, to: &PgStore, progress: Progress<'_>) -> Result<Migrated> {
    let index = dir.join("index.sqlite");
    if !index.exists() {
        return Err(Error::Corrupt(format!(
            "{} holds no embedded store (no index.sqlite)",
            dir.display()
        )));
    }
    let blobs = BlobStore::open(dir.join("blobs"))?;
    // The reader: one read transaction for the whole copy, on a thread
    // of its own, handing batches over.
    let (batches, mut received) = tokio::sync::mpsc::channel::<Batch>(4);
    let reader = std::thread::spawn(move || read_all(&index, &blobs, batches));
    let mut done = Migrated::default();
    let mut next_uidvalidity = 1i64;
    let mut c = to.client().await?;
    while let Some(batch) = received.recv().await {
        match batch {
            Batch::Start(table, rows) => {
                if table == "trace_answers" {
                    c.execute("DELETE FROM trace_answers", &[]).await?;
                }
                progress(table, 0, rows);
                // Bodies are checked by the messages' digest, not counted.
                if table != "bodies" {
                    done.tables.push((table, rows, 0));
                }
            }
            Batch::Rows(table, cells) => insert(&c, table, cells).await?,
            Batch::Bodies(bodies) => {
                let (hashes, bytes): (Vec<String>, Vec<Vec<u8>>) = bodies.into_iter().unzip();
                let n = c
                    .execute(
                        "INSERT INTO blobs (hash, body) SELECT * FROM unnest($1::TEXT[], \
                         $2::BYTEA[]) ON CONFLICT DO NOTHING",
                        &[&hashes, &bytes],
                    )
                    .await?;
                done.bodies += n;
            }
            Batch::Progress(table, rows, of) => progress(table, rows, of),
            Batch::NextUidvalidity(n) => next_uidvalidity = n,
            Batch::Failed(e) => return Err(e),
        }
    }
    reader
        .join()
        .map_err(|_| Error::Corrupt("the reader of the embedded store failed".into()))?;
    // Identities past the copied ids, so that new rows never collide; and
    // UIDVALIDITY past every one handed out, so a re-created mailbox gets
    // a new one (RFC 9051 2.3.1.1).
    let tx = c.transaction().await?;
    tx.execute(
        "UPDATE meta SET value = GREATEST(value, $1, \
         COALESCE((SELECT MAX(uidvalidity) + 1 FROM mailboxes), 1)) \
         WHERE key = 'next_uidvalidity'",
        &[&next_uidvalidity],
    )
    .await?;
    for table in IDENTITIES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 GREATEST((SELECT MAX(id) FROM {table}), 1))"
            ),
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    // The counts after: rows the embedded store has, against PostgreSQL's.
    for entry in &mut done.tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", entry.0), &[])
            .await?
            .get(0);
        entry.2 = n.max(0) as u64;
    }
    Ok(done)
}

/// The digest of every message's place and state on PostgreSQL, in the
/// order [`embedded_digest`] makes it.
pub async fn postgres_digest(to: &PgStore) -> Result<String> {
    let c = to.client().await?;
    let rows = c
        .query(
            "SELECT mailbox_id, uid, modseq, flags, keywords, blob FROM messages \
             ORDER BY mailbox_id, uid",
            &[],
        )
        .await?;
    let mut h = Sha256::new();
    for r in rows {
        let line = format!(
            "{} {} {} {} {} {}\n",
            r.try_get::<_, i64>(0)?,
            r.try_get::<_, i64>(1)?,
            r.try_get::<_, i64>(2)?,
            r.try_get::<_, i64>(3)?,
            r.try_get::<_, String>(4)?,
            r.try_get::<_, String>(5)?
        );
        h.update(line.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The same digest of the embedded store in `dir`.
pub fn embedded_digest(dir: &Path) -> Result<String> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut statement = c.prepare(
        "SELECT mailbox_id, uid, modseq, flags, keywords, blob FROM messages \
         ORDER BY mailbox_id, uid",
    )?;
    let mut rows = statement.query([])?;
    let mut h = Sha256::new();
    while let Some(r) = rows.next()? {
        let line = format!(
            "{} {} {} {} {} {}\n",
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            without_nul_text(r.get::<_, String>(4)?),
            r.get::<_, String>(5)?
        );
        h.update(line.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// What the reader hands over.
enum Batch {
    /// A table begins, with its row count.
    Start(&'static str, u64),
    Rows(&'static str, Vec<Vec<Cell>>),
    /// Message bodies: (hash, bytes).
    Bodies(Vec<(String, Vec<u8>)>),
    Progress(&'static str, u64, u64),
    /// The embedded store's next UIDVALIDITY.
    NextUidvalidity(i64),
    Failed(Error),
}

fn read_all(index: &Path, blobs: &BlobStore, out: tokio::sync::mpsc::Sender<Batch>) {
    if let Err(e) = read_tables(index, blobs, &out) {
        let _ = out.blocking_send(Batch::Failed(e));
    }
}

fn read_tables(
    index: &Path,
    blobs: &BlobStore,
    out: &tokio::sync::mpsc::Sender<Batch>,
) -> Result<()> {
    let send = |b: Batch| {
        out.blocking_send(b)
            .map_err(|_| Error::Corrupt("the copy stopped".into()))
    };
    let c =
        rusqlite::Connection::open_with_flags(index, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    c.execute_batch("BEGIN")?;
    let next: Option<i64> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'next_uidvalidity'",
            [],
            |r| r.get(0),
        )
        .ok();
    send(Batch::NextUidvalidity(next.unwrap_or(1)))?;
    // The bodies first: every row that names one needs it there.
    let hashes: Vec<String> = c
        .prepare(
            "SELECT blob FROM messages UNION SELECT blob FROM training UNION SELECT blob FROM queue",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let total = hashes.len() as u64;
    send(Batch::Start("bodies", total))?;
    let mut batch = Vec::new();
    let mut bytes = 0;
    for (i, hash) in hashes.into_iter().enumerate() {
        let body = blobs.read(&BlobHash(hash.clone()))?;
        bytes += body.len();
        batch.push((hash, body));
        if batch.len() >= BATCH || bytes >= 32 << 20 {
            send(Batch::Bodies(std::mem::take(&mut batch)))?;
            send(Batch::Progress("bodies", i as u64 + 1, total))?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        send(Batch::Bodies(batch))?;
    }
    send(Batch::Progress("bodies", total, total))?;
    for (table, columns, order) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let rows: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        let rows = rows.max(0) as u64;
        send(Batch::Start(table, rows))?;
        let mut statement = c.prepare(&format!(
            "SELECT {} FROM {table} ORDER BY {order}",
            names.join(", ")
        ))?;
        let mut found = statement.query([])?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut read = 0;
        while let Some(r) = found.next()? {
            let mut row = Vec::with_capacity(columns.len());
            for (i, (name, kind)) in columns.iter().enumerate() {
                let mut value = r.get::<_, Lite>(i)?;
                // A delivery attempt under way in the embedded store goes
                // back to the queue (its lease would name no node).
                if *table == "queue_rcpt"
                    && *name == "state"
                    && matches!(&value, Lite::Text(t) if t == "sending" || t == "reporting")
                {
                    value = Lite::Text("queued".into());
                }
                row.push(cell(value, *kind));
            }
            batch.push(row);
            read += 1;
            if batch.len() >= BATCH {
                send(Batch::Rows(table, std::mem::take(&mut batch)))?;
                send(Batch::Progress(table, read, rows))?;
            }
        }
        if !batch.is_empty() {
            send(Batch::Rows(table, batch))?;
        }
        send(Batch::Progress(table, read, rows))?;
    }
    c.execute_batch("COMMIT")?;
    Ok(())
}

/// Inserts a batch of one table's rows; rows already there (a copy run
/// again) are left as they are.
async fn insert(c: &deadpool_postgres::Object, table: &str, rows: Vec<Vec<Cell>>) -> Result<()> {
    let Some((_, columns, _)) = TABLES.iter().find(|(t, ..)| *t == table) else {
        return Err(Error::Corrupt(format!("no table {table} to copy into")));
    };
    if rows.is_empty() {
        return Ok(());
    }
    let width = columns.len();
    let mut sql = format!(
        "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ",
        columns
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..width {
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * width + j + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    let params: Vec<&(dyn ToSql + Sync)> = rows
        .iter()
        .flat_map(|r| r.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)))
        .collect();
    c.execute(sql.as_str(), &params).await?;
    Ok(())
}
