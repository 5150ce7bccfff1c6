//! The embedded store's [`Outbound`]: the queue, DKIM keys and Sent notes.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::engine::{all, exec, one};
use super::{SqliteStore, string_json};
use crate::blob::{BlobStore, Staged};
use crate::outbound::*;
use crate::{AccountId, BlobHash, Error, MAX_MESSAGE_SIZE, MailboxId, Messages, Result, unix_now};

/// How long a DSN that could not be sent waits before its recipients are
/// tried (and reported) again.
const REPORT_RETRY_SECS: i64 = 300;

/// The queue's columns [`message_from_row`] reads, in its order.
const MESSAGE_COLUMNS: &str =
    "SELECT id, qid, sender, account_id, blob, size, eight_bit, created, prefix FROM queue";
/// The recipients' columns [`recipient_from_row`] reads, in its order.
const RECIPIENT_COLUMNS: &str =
    "message_id, address, state, attempts, next_try, last_answer, delayed";

#[async_trait]
impl Outbound for SqliteStore {
    async fn enqueue(&self, message: NewQueued<'_>) -> Result<()> {
        if message.raw.is_empty() {
            return Err(Error::EmptyMessage);
        }
        let size = (message.prefix.len() + message.raw.len()) as u64;
        if size > MAX_MESSAGE_SIZE {
            return Err(Error::TooLarge);
        }
        let eight_bit = message.prefix.iter().chain(message.raw).any(|b| *b > 127);
        let hash = BlobStore::hash_of(message.raw);
        let row = QueueRow {
            qid: message.qid.to_string(),
            sender: message.sender.to_string(),
            account: message.account,
            prefix: message.prefix.to_vec(),
            size: size as i64,
            eight_bit,
            recipients: string_json(message.recipients),
        };
        // A submission's copy is usually the bytes of its Sent copy, filed
        // just before: then the queue names that blob, and no body file is
        // written now, or deleted once delivered. The writer checks again:
        // the Sent copy may have been expunged and collected in between,
        // and then the copy is written after all.
        let probe = hash.clone();
        let stored = self.db.read(move |c| blob_in_use(c, &probe)).await?;
        if stored {
            let (row, hash) = (row.clone(), hash.clone());
            let shared = self
                .db
                .write(move |c| {
                    if !blob_in_use(c, &hash)? {
                        return Ok(false);
                    }
                    row.insert(c, &hash)?;
                    Ok(true)
                })
                .await?;
            if shared {
                return Ok(());
            }
        }
        let raw = message.raw.to_vec();
        let blobs = self.blobs.clone();
        let staged: Staged = tokio::task::spawn_blocking(move || blobs.stage(&raw))
            .await
            .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;
        let blobs = self.blobs.clone();
        self.db
            .write(move |c| {
                let hash = super::place(c, &blobs, vec![staged])?
                    .pop()
                    .ok_or_else(|| Error::Corrupt("blob writer returned nothing".into()))?;
                row.insert(c, &hash)
            })
            .await
    }

    async fn read_queued(&self, message: &Queued) -> Result<Vec<u8>> {
        let body = self.read_blob(&message.blob).await?;
        if message.prefix.is_empty() {
            return Ok(body);
        }
        let mut out = Vec::with_capacity(message.prefix.len() + body.len());
        out.extend_from_slice(&message.prefix);
        out.extend_from_slice(&body);
        Ok(out)
    }

    async fn queue(&self) -> Result<Vec<Queued>> {
        self.db
            .read(|c| {
                // One snapshot for both lists.
                let tx = c.unchecked_transaction()?;
                let messages = all(
                    &tx,
                    &format!("{MESSAGE_COLUMNS} ORDER BY id"),
                    [],
                    message_from_row,
                )?;
                let rcpts = all(
                    &tx,
                    &format!(
                        "SELECT {RECIPIENT_COLUMNS} FROM queue_rcpt ORDER BY message_id, address"
                    ),
                    [],
                    recipient_from_row,
                )?;
                tx.finish()?;
                Ok(assemble(messages, rcpts))
            })
            .await
    }

    async fn claim_due(&self, now: i64, limit: usize) -> Result<Vec<Queued>> {
        // A reader's look first: the runner polls every second, and an idle
        // queue must not cost a write turn (and a commit) each time.
        let due = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT 1 FROM queue_rcpt WHERE next_try <= ?1 LIMIT 1",
                    [now],
                    |_| Ok(()),
                )
            })
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        self.db
            .write(move |c| {
                let rcpts = all(
                    c,
                    &format!(
                        "UPDATE queue_rcpt SET state = 'sending', next_try = ?1 WHERE rowid IN \
                         (SELECT rowid FROM queue_rcpt WHERE next_try <= ?2 ORDER BY next_try LIMIT ?3) \
                         RETURNING {RECIPIENT_COLUMNS}"
                    ),
                    params![now + LEASE_SECS, now, limit as i64],
                    recipient_from_row,
                )?;
                let ids: Vec<i64> = rcpts.iter().map(|(id, _)| *id).collect();
                let messages = all(
                    c,
                    &format!(
                        "{MESSAGE_COLUMNS} WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
                    ),
                    [serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())],
                    message_from_row,
                )?;
                Ok(assemble(messages, rcpts))
            })
            .await
    }

    async fn release_leases(&self) -> Result<()> {
        self.db
            .write(|c| {
                // A DSN that was being sent when the server died goes again:
                // its recipients are tried once more, fail again, and are
                // reported then (a repeat is better than a lost report).
                exec(
                    c,
                    "UPDATE queue_rcpt SET state = 'queued', next_try = ?1 \
                     WHERE state IN ('sending', 'reporting')",
                    [unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    async fn record_attempts(
        &self,
        message: i64,
        attempts: &[Attempt],
    ) -> Result<Vec<(String, String)>> {
        let attempts = attempts.to_vec();
        let (failed, gone) = self
            .db
            .write(move |c| {
                // The message trace keeps every answer, by queue ID.
                let now = unix_now();
                for a in &attempts {
                    let outcome = match a.outcome {
                        Outcome::Delivered => "delivered",
                        Outcome::Failed => "failed",
                        Outcome::Retry { .. } => "deferred",
                    };
                    exec(
                        c,
                        "INSERT INTO trace_answers (qid, at, rcpt, outcome, answer) \
                         SELECT qid, ?2, ?3, ?4, ?5 FROM queue WHERE id = ?1",
                        params![message, now, a.address, outcome, a.answer],
                    )?;
                }
                for a in &attempts {
                    match a.outcome {
                        Outcome::Delivered => exec(
                            c,
                            "DELETE FROM queue_rcpt WHERE message_id = ?1 AND address = ?2",
                            params![message, a.address],
                        )?,
                        // Kept, never due again, until this round's other
                        // recipients are settled: one DSN then names them all.
                        Outcome::Failed => exec(
                            c,
                            "UPDATE queue_rcpt SET state = 'failed', next_try = ?1, \
                             attempts = attempts + 1, last_answer = ?2 \
                             WHERE message_id = ?3 AND address = ?4",
                            params![i64::MAX, a.answer, message, a.address],
                        )?,
                        Outcome::Retry { at, delayed } => exec(
                            c,
                            "UPDATE queue_rcpt SET state = 'queued', next_try = ?1, \
                             attempts = attempts + 1, last_answer = ?2, delayed = ?3 \
                             WHERE message_id = ?4 AND address = ?5",
                            params![at, a.answer, delayed, message, a.address],
                        )?,
                    };
                }
                let failed = take_failures(c, message)?;
                Ok((failed, drop_if_empty(c, message)?))
            })
            .await?;
        if gone {
            self.collect_soon().await?;
        }
        Ok(failed)
    }

    async fn reported(&self, message: i64, addresses: &[String], sent: bool) -> Result<()> {
        let list = string_json(addresses);
        let gone = self
            .db
            .write(move |c| {
                if sent {
                    exec(
                        c,
                        "DELETE FROM queue_rcpt WHERE message_id = ?1 AND state = 'reporting' \
                         AND address IN (SELECT value FROM json_each(?2))",
                        params![message, list],
                    )?;
                } else {
                    // The DSN could not go: those recipients are tried (and
                    // fail, and are reported) again later.
                    exec(
                        c,
                        "UPDATE queue_rcpt SET state = 'queued', next_try = ?1 \
                         WHERE message_id = ?2 AND state = 'reporting' \
                         AND address IN (SELECT value FROM json_each(?3))",
                        params![unix_now() + REPORT_RETRY_SECS, message, list],
                    )?;
                }
                drop_if_empty(c, message)
            })
            .await?;
        if gone {
            self.collect_soon().await?;
        }
        Ok(())
    }

    async fn retry_now(&self, qid: &str) -> Result<bool> {
        let qid = qid.to_string();
        self.db
            .write(move |c| {
                let n = exec(
                    c,
                    "UPDATE queue_rcpt SET next_try = ?1 WHERE state = 'queued' AND message_id = \
                     (SELECT id FROM queue WHERE qid = ?2)",
                    params![unix_now(), qid],
                )?;
                if n > 0 {
                    return Ok(true);
                }
                Ok(one(c, "SELECT 1 FROM queue WHERE qid = ?1", [qid], |_| Ok(()))?.is_some())
            })
            .await
    }

    async fn dequeue(&self, qid: &str) -> Result<bool> {
        let qid = qid.to_string();
        let gone = self
            .db
            .write(move |c| {
                let blob: Option<String> = one(
                    c,
                    "DELETE FROM queue WHERE qid = ?1 RETURNING blob",
                    [qid],
                    |r| r.get(0),
                )?;
                if let Some(blob) = &blob {
                    forget_blob(c, blob)?;
                }
                Ok(blob.is_some())
            })
            .await?;
        if gone {
            self.collect_soon().await?;
        }
        Ok(gone)
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = domain.to_ascii_lowercase();
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT domain, selector, algorithm, private, public, created, retired \
                     FROM dkim_keys WHERE domain = ?1 ORDER BY retired IS NOT NULL, id",
                    [domain],
                    dkim_from_row,
                )
            })
            .await
    }

    async fn add_dkim_keys(&self, keys: &[DkimKey], retire: bool) -> Result<bool> {
        let now = unix_now();
        let keys = keys.to_vec();
        self.db
            .write(move |c| {
                let mut domains: Vec<String> =
                    keys.iter().map(|k| k.domain.to_ascii_lowercase()).collect();
                domains.dedup();
                for domain in &domains {
                    if retire {
                        exec(
                            c,
                            "UPDATE dkim_keys SET retired = ?1 WHERE domain = ?2 AND retired IS NULL",
                            params![now, domain],
                        )?;
                    } else if one(
                        c,
                        "SELECT 1 FROM dkim_keys WHERE domain = ?1 AND retired IS NULL",
                        [domain],
                        |_| Ok(()),
                    )?
                    .is_some()
                    {
                        // Someone else made the first keys meanwhile: theirs stand.
                        return Ok(false);
                    }
                }
                for key in &keys {
                    exec(
                        c,
                        "INSERT INTO dkim_keys (domain, selector, algorithm, private, public, created) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            key.domain.to_ascii_lowercase(),
                            key.selector,
                            key.algorithm.as_str(),
                            key.private,
                            key.public,
                            key.created
                        ],
                    )?;
                }
                Ok(true)
            })
            .await
    }

    async fn note_sent(
        &self,
        account: AccountId,
        message_id: &str,
        mailbox: MailboxId,
        uid: u32,
    ) -> Result<()> {
        let now = unix_now();
        let message_id = message_id.to_string();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO sent_ids (account_id, message_id, mailbox_id, uid, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account_id, message_id) \
                     DO UPDATE SET mailbox_id = ?3, uid = ?4, at = ?5",
                    params![account, message_id, mailbox, uid, now],
                )?;
                // Notes older than a day are never asked about again.
                exec(
                    c,
                    "DELETE FROM sent_ids WHERE account_id = ?1 AND at < ?2",
                    params![account, now - 86_400],
                )?;
                Ok(())
            })
            .await
    }

    async fn sent_copy(
        &self,
        account: AccountId,
        message_id: &str,
        since: i64,
    ) -> Result<Option<(MailboxId, u32)>> {
        let message_id = message_id.to_string();
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT s.mailbox_id, s.uid FROM sent_ids s JOIN messages m \
                     ON m.mailbox_id = s.mailbox_id AND m.uid = s.uid \
                     WHERE s.account_id = ?1 AND s.message_id = ?2 AND s.at >= ?3",
                    params![account, message_id, since],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }
}

/// Once none of the message's recipients is held by a runner (every one
/// taken in this round is settled): those it failed for, with their
/// answers, for one DSN, marked 'reporting' until `reported` says the DSN
/// went. Empty while others of this round are still out.
fn take_failures(c: &Connection, message: i64) -> Result<Vec<(String, String)>> {
    let out = one(
        c,
        "SELECT 1 FROM queue_rcpt WHERE message_id = ?1 AND state = 'sending' LIMIT 1",
        [message],
        |_| Ok(()),
    )?;
    if out.is_some() {
        return Ok(Vec::new());
    }
    let mut failed: Vec<(String, String)> = all(
        c,
        "UPDATE queue_rcpt SET state = 'reporting' WHERE message_id = ?1 AND state = 'failed' \
         RETURNING address, last_answer",
        [message],
        |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        },
    )?;
    failed.sort();
    Ok(failed)
}

/// Deletes the message when no recipient is left, handing its blob to the
/// collector; true when it went.
fn drop_if_empty(c: &Connection, message: i64) -> Result<bool> {
    let blob: Option<String> = one(
        c,
        "DELETE FROM queue WHERE id = ?1 AND NOT EXISTS \
         (SELECT 1 FROM queue_rcpt WHERE message_id = ?1) RETURNING blob",
        [message],
        |r| r.get(0),
    )?;
    if let Some(blob) = &blob {
        forget_blob(c, blob)?;
    }
    Ok(blob.is_some())
}

/// A blob no queue row names any more: the collector decides whether
/// anything else still does.
fn forget_blob(c: &Connection, blob: &str) -> Result<()> {
    exec(
        c,
        "INSERT OR IGNORE INTO blob_gc (hash) VALUES (?1)",
        [blob],
    )?;
    Ok(())
}

/// A queue row to insert, once its blob is known.
#[derive(Clone)]
struct QueueRow {
    qid: String,
    sender: String,
    account: Option<AccountId>,
    prefix: Vec<u8>,
    size: i64,
    eight_bit: bool,
    /// A JSON array.
    recipients: String,
}

impl QueueRow {
    fn insert(&self, c: &Connection, blob: &BlobHash) -> Result<()> {
        let now = unix_now();
        let id: i64 = one(
            c,
            "INSERT INTO queue (qid, sender, account_id, blob, size, eight_bit, created, prefix) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            params![
                self.qid,
                self.sender,
                self.account,
                blob.0,
                self.size,
                self.eight_bit,
                now,
                self.prefix
            ],
            |r| r.get(0),
        )?
        .ok_or_else(|| Error::Corrupt("a queued message got no id".into()))?;
        exec(
            c,
            "INSERT OR IGNORE INTO queue_rcpt (message_id, address, next_try) \
             SELECT ?1, value, ?2 FROM json_each(?3)",
            params![id, now, self.recipients],
        )?;
        Ok(())
    }
}

/// Whether a stored message's body is this blob (its file is in place and
/// durable: it was committed, or is being, in this transaction).
fn blob_in_use(c: &Connection, blob: &BlobHash) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM messages WHERE blob = ?1 LIMIT 1",
        [&blob.0],
        |_| Ok(()),
    )?
    .is_some())
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        id: r.get(0)?,
        qid: r.get(1)?,
        sender: r.get(2)?,
        account: r.get(3)?,
        blob: BlobHash(r.get(4)?),
        size: r.get::<_, i64>(5)? as u64,
        eight_bit: r.get(6)?,
        created: r.get(7)?,
        prefix: r.get(8)?,
        recipients: Vec::new(),
    })
}

/// A recipient row with the id of its message.
fn recipient_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, QueuedRecipient)> {
    Ok((
        r.get(0)?,
        QueuedRecipient {
            address: r.get(1)?,
            state: match r.get::<_, String>(2)?.as_str() {
                "sending" => RecipientState::Sending,
                "failed" | "reporting" => RecipientState::Failed,
                _ => RecipientState::Queued,
            },
            attempts: r.get(3)?,
            next_try: r.get(4)?,
            last_answer: r.get(5)?,
            delayed: r.get(6)?,
        },
    ))
}

/// Queue rows with their recipient rows.
fn assemble(messages: Vec<Queued>, rcpts: Vec<(i64, QueuedRecipient)>) -> Vec<Queued> {
    let mut by_message: std::collections::HashMap<i64, Vec<QueuedRecipient>> =
        std::collections::HashMap::new();
    for (id, r) in rcpts {
        by_message.entry(id).or_default().push(r);
    }
    messages
        .into_iter()
        .map(|mut m| {
            m.recipients = by_message.remove(&m.id).unwrap_or_default();
            m
        })
        .collect()
}

fn dkim_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DkimKey> {
    let algorithm = match r.get::<_, String>(2)?.as_str() {
        "ed25519" => DkimAlgorithm::Ed25519,
        "rsa" => DkimAlgorithm::Rsa,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown DKIM algorithm {other:?}").into(),
            ));
        }
    };
    Ok(DkimKey {
        domain: r.get(0)?,
        selector: r.get(1)?,
        algorithm,
        private: r.get(3)?,
        public: r.get(4)?,
        created: r.get(5)?,
        retired: r.get(6)?,
    })
}
