//! The embedded store's [`Outbound`]: the queue, DKIM keys and Sent notes.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, string_json};
use crate::blob::Staged;
use crate::outbound::*;
use crate::{AccountId, BlobHash, Error, MAX_MESSAGE_SIZE, MailboxId, Result, unix_now};

/// How long a DSN that could not be sent waits before its recipients are
/// tried (and reported) again.
const REPORT_RETRY_SECS: i64 = 300;

#[async_trait]
impl Outbound for SqliteStore {
    async fn enqueue(&self, message: NewQueued<'_>) -> Result<()> {
        if message.raw.is_empty() {
            return Err(Error::EmptyMessage);
        }
        if message.raw.len() as u64 > MAX_MESSAGE_SIZE {
            return Err(Error::TooLarge);
        }
        let raw = message.raw.to_vec();
        let blobs = self.blobs.clone();
        let staged: Staged = tokio::task::spawn_blocking(move || blobs.stage(&raw))
            .await
            .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??;
        let now = unix_now();
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let blobs = self.blobs.clone();
        let hash = tokio::task::spawn_blocking(move || blobs.publish(vec![staged]))
            .await
            .map_err(|e| Error::Corrupt(format!("blob writer failed: {e}")))??
            .pop()
            .ok_or_else(|| Error::Corrupt("blob writer returned nothing".into()))?;
        let id: i64 = sqlx::query(
            "INSERT INTO queue (qid, sender, account_id, blob, size, eight_bit, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(message.qid)
        .bind(message.sender)
        .bind(message.account)
        .bind(&hash.0)
        .bind(message.raw.len() as i64)
        .bind(message.raw.iter().any(|b| *b > 127) as i64)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query(
            "INSERT OR IGNORE INTO queue_rcpt (message_id, address, next_try) \
             SELECT $1, value, $2 FROM json_each($3)",
        )
        .bind(id)
        .bind(now)
        .bind(string_json(message.recipients))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn queue(&self) -> Result<Vec<Queued>> {
        let messages = sqlx::query(
            "SELECT id, qid, sender, account_id, blob, size, eight_bit, created FROM queue ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let rcpts = sqlx::query(
            "SELECT message_id, address, state, attempts, next_try, last_answer, delayed \
             FROM queue_rcpt ORDER BY message_id, address",
        )
        .fetch_all(&self.pool)
        .await?;
        assemble(&messages, &rcpts)
    }

    async fn claim_due(&self, now: i64, limit: usize) -> Result<Vec<Queued>> {
        // A reader's look first: the runner polls every second, and an idle
        // queue must not cost a write turn (and a commit) each time.
        let due: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM queue_rcpt WHERE next_try <= $1 LIMIT 1")
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let rcpts = sqlx::query(
            "UPDATE queue_rcpt SET state = 'sending', next_try = $1 WHERE rowid IN \
             (SELECT rowid FROM queue_rcpt WHERE next_try <= $2 ORDER BY next_try LIMIT $3) \
             RETURNING message_id, address, state, attempts, next_try, last_answer, delayed",
        )
        .bind(now + LEASE_SECS)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<i64> = rcpts
            .iter()
            .map(|r| r.try_get("message_id"))
            .collect::<Result<_, _>>()?;
        let messages = sqlx::query(
            "SELECT id, qid, sender, account_id, blob, size, eight_bit, created FROM queue \
             WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        )
        .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        turn.durable().await?;
        assemble(&messages, &rcpts)
    }

    async fn release_leases(&self) -> Result<()> {
        sqlx::query(
            // A DSN that was being sent when the server died goes again:
            // its recipients are tried once more, fail again, and are
            // reported then (a repeat is better than a lost report).
            "UPDATE queue_rcpt SET state = 'queued', next_try = $1 \
             WHERE state IN ('sending', 'reporting')",
        )
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_attempts(
        &self,
        message: i64,
        attempts: &[Attempt],
    ) -> Result<Vec<(String, String)>> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        for a in attempts {
            match a.outcome {
                Outcome::Delivered => {
                    sqlx::query("DELETE FROM queue_rcpt WHERE message_id = $1 AND address = $2")
                        .bind(message)
                        .bind(&a.address)
                        .execute(&mut *tx)
                        .await?;
                }
                // Kept, never due again, until this round's other
                // recipients are settled: one DSN then names them all.
                Outcome::Failed => {
                    sqlx::query(
                        "UPDATE queue_rcpt SET state = 'failed', next_try = $1, \
                         attempts = attempts + 1, last_answer = $2 \
                         WHERE message_id = $3 AND address = $4",
                    )
                    .bind(i64::MAX)
                    .bind(&a.answer)
                    .bind(message)
                    .bind(&a.address)
                    .execute(&mut *tx)
                    .await?;
                }
                Outcome::Retry { at, delayed } => {
                    sqlx::query(
                        "UPDATE queue_rcpt SET state = 'queued', next_try = $1, \
                         attempts = attempts + 1, last_answer = $2, delayed = $3 \
                         WHERE message_id = $4 AND address = $5",
                    )
                    .bind(at)
                    .bind(&a.answer)
                    .bind(delayed as i64)
                    .bind(message)
                    .bind(&a.address)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let failed = take_failures(&mut tx, message).await?;
        let gone = drop_if_empty(&mut tx, message).await?;
        tx.commit().await?;
        turn.durable().await?;
        if gone {
            self.collect_soon().await?;
        }
        Ok(failed)
    }

    async fn reported(&self, message: i64, addresses: &[String], sent: bool) -> Result<()> {
        let list = string_json(addresses);
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        if sent {
            sqlx::query(
                "DELETE FROM queue_rcpt WHERE message_id = $1 AND state = 'reporting' \
                 AND address IN (SELECT value FROM json_each($2))",
            )
            .bind(message)
            .bind(&list)
            .execute(&mut *tx)
            .await?;
        } else {
            // The DSN could not go: those recipients are tried (and fail,
            // and are reported) again later.
            sqlx::query(
                "UPDATE queue_rcpt SET state = 'queued', next_try = $1 \
                 WHERE message_id = $2 AND state = 'reporting' \
                 AND address IN (SELECT value FROM json_each($3))",
            )
            .bind(unix_now() + REPORT_RETRY_SECS)
            .bind(message)
            .bind(&list)
            .execute(&mut *tx)
            .await?;
        }
        let gone = drop_if_empty(&mut tx, message).await?;
        tx.commit().await?;
        turn.durable().await?;
        if gone {
            self.collect_soon().await?;
        }
        Ok(())
    }

    async fn retry_now(&self, qid: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE queue_rcpt SET next_try = $1 WHERE state = 'queued' AND message_id = \
             (SELECT id FROM queue WHERE qid = $2)",
        )
        .bind(unix_now())
        .bind(qid)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            return Ok(true);
        }
        Ok(sqlx::query("SELECT 1 FROM queue WHERE qid = $1")
            .bind(qid)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    async fn dequeue(&self, qid: &str) -> Result<bool> {
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let blob: Option<String> = sqlx::query("DELETE FROM queue WHERE qid = $1 RETURNING blob")
            .bind(qid)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("blob"))
            .transpose()?;
        if let Some(blob) = &blob {
            forget_blob(&mut tx, blob).await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        if blob.is_some() {
            self.collect_soon().await?;
        }
        Ok(blob.is_some())
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        sqlx::query(
            "SELECT domain, selector, algorithm, private, public, created, retired FROM dkim_keys \
             WHERE domain = $1 ORDER BY retired IS NOT NULL, id",
        )
        .bind(domain.to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(dkim_from_row)
        .collect()
    }

    async fn add_dkim_keys(&self, keys: &[DkimKey], retire: bool) -> Result<bool> {
        let now = unix_now();
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        let mut domains: Vec<String> = keys.iter().map(|k| k.domain.to_ascii_lowercase()).collect();
        domains.dedup();
        for domain in &domains {
            if retire {
                sqlx::query(
                    "UPDATE dkim_keys SET retired = $1 WHERE domain = $2 AND retired IS NULL",
                )
                .bind(now)
                .bind(domain)
                .execute(&mut *tx)
                .await?;
            } else {
                let signing: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM dkim_keys WHERE domain = $1 AND retired IS NULL",
                )
                .bind(domain)
                .fetch_one(&mut *tx)
                .await?;
                if signing > 0 {
                    // Someone else made the first keys meanwhile: theirs stand.
                    return Ok(false);
                }
            }
        }
        for key in keys {
            sqlx::query(
                "INSERT INTO dkim_keys (domain, selector, algorithm, private, public, created) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.domain.to_ascii_lowercase())
            .bind(&key.selector)
            .bind(key.algorithm.as_str())
            .bind(&key.private)
            .bind(&key.public)
            .bind(key.created)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        turn.durable().await?;
        Ok(true)
    }

    async fn note_sent(
        &self,
        account: AccountId,
        message_id: &str,
        mailbox: MailboxId,
        uid: u32,
    ) -> Result<()> {
        let now = unix_now();
        let mut turn = self.write().await?;
        let mut tx = turn.begin().await?;
        sqlx::query(
            "INSERT INTO sent_ids (account_id, message_id, mailbox_id, uid, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, message_id) \
             DO UPDATE SET mailbox_id = $3, uid = $4, at = $5",
        )
        .bind(account)
        .bind(message_id)
        .bind(mailbox)
        .bind(uid as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Notes older than a day are never asked about again.
        sqlx::query("DELETE FROM sent_ids WHERE account_id = $1 AND at < $2")
            .bind(account)
            .bind(now - 86_400)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        turn.durable().await
    }

    async fn sent_copy(
        &self,
        account: AccountId,
        message_id: &str,
        since: i64,
    ) -> Result<Option<(MailboxId, u32)>> {
        let row = sqlx::query(
            "SELECT s.mailbox_id, s.uid FROM sent_ids s JOIN messages m \
             ON m.mailbox_id = s.mailbox_id AND m.uid = s.uid \
             WHERE s.account_id = $1 AND s.message_id = $2 AND s.at >= $3",
        )
        .bind(account)
        .bind(message_id)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<(MailboxId, u32)> {
            Ok((r.try_get("mailbox_id")?, r.try_get::<i64, _>("uid")? as u32))
        })
        .transpose()
    }
}

/// Once none of the message's recipients is held by a runner (every one
/// taken in this round is settled): those it failed for, with their
/// answers, for one DSN, marked 'reporting' until `reported` says the DSN
/// went. Empty while others of this round are still out.
async fn take_failures(
    tx: &mut crate::group::WriteTx<'_>,
    message: i64,
) -> Result<Vec<(String, String)>> {
    let out: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM queue_rcpt WHERE message_id = $1 AND state = 'sending' LIMIT 1",
    )
    .bind(message)
    .fetch_optional(&mut **tx)
    .await?;
    if out.is_some() {
        return Ok(Vec::new());
    }
    let mut failed = sqlx::query(
        "UPDATE queue_rcpt SET state = 'reporting' WHERE message_id = $1 AND state = 'failed' \
         RETURNING address, last_answer",
    )
    .bind(message)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("address")?,
            r.try_get::<Option<String>, _>("last_answer")?
                .unwrap_or_default(),
        ))
    })
    .collect::<Result<Vec<(String, String)>>>()?;
    failed.sort();
    Ok(failed)
}

/// Deletes the message when no recipient is left, handing its blob to the
/// collector; true when it went.
async fn drop_if_empty(tx: &mut crate::group::WriteTx<'_>, message: i64) -> Result<bool> {
    let blob: Option<String> = sqlx::query(
        "DELETE FROM queue WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM queue_rcpt WHERE message_id = $1) RETURNING blob",
    )
    .bind(message)
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| r.try_get("blob"))
    .transpose()?;
    if let Some(blob) = &blob {
        forget_blob(tx, blob).await?;
    }
    Ok(blob.is_some())
}

/// A blob no queue row names any more: the collector decides whether
/// anything else still does.
async fn forget_blob(tx: &mut crate::group::WriteTx<'_>, blob: &str) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO blob_gc (hash) VALUES ($1)")
        .bind(blob)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queue rows with their recipient rows.
fn assemble(messages: &[SqliteRow], rcpts: &[SqliteRow]) -> Result<Vec<Queued>> {
    let mut by_message: std::collections::HashMap<i64, Vec<QueuedRecipient>> =
        std::collections::HashMap::new();
    for r in rcpts {
        by_message
            .entry(r.try_get("message_id")?)
            .or_default()
            .push(QueuedRecipient {
                address: r.try_get("address")?,
                state: match r.try_get::<String, _>("state")?.as_str() {
                    "sending" => RecipientState::Sending,
                    "failed" | "reporting" => RecipientState::Failed,
                    _ => RecipientState::Queued,
                },
                attempts: r.try_get::<i64, _>("attempts")? as u32,
                next_try: r.try_get("next_try")?,
                last_answer: r.try_get("last_answer")?,
                delayed: r.try_get::<i64, _>("delayed")? != 0,
            });
    }
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let id: i64 = m.try_get("id")?;
        out.push(Queued {
            id,
            qid: m.try_get("qid")?,
            sender: m.try_get("sender")?,
            account: m.try_get("account_id")?,
            blob: BlobHash(m.try_get("blob")?),
            size: m.try_get::<i64, _>("size")? as u64,
            eight_bit: m.try_get::<i64, _>("eight_bit")? != 0,
            created: m.try_get("created")?,
            recipients: by_message.remove(&id).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn dkim_from_row(r: &SqliteRow) -> Result<DkimKey> {
    let algorithm = match r.try_get::<String, _>("algorithm")?.as_str() {
        "ed25519" => DkimAlgorithm::Ed25519,
        "rsa" => DkimAlgorithm::Rsa,
        other => return Err(Error::Corrupt(format!("unknown DKIM algorithm {other:?}"))),
    };
    Ok(DkimKey {
        domain: r.try_get("domain")?,
        selector: r.try_get("selector")?,
        algorithm,
        private: r.try_get("private")?,
        public: r.try_get("public")?,
        created: r.try_get("created")?,
        retired: r.try_get("retired")?,
    })
}
