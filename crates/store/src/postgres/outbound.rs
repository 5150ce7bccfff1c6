//! [`Outbound`] on PostgreSQL: the queue every node shares, DKIM keys and
//! Sent notes. Queued bodies are rows of `blobs`, shared with the Sent
//! copy of the same bytes.

use std::collections::HashMap;

use super::traces::without_nul;
use super::*;
use crate::MAX_MESSAGE_SIZE;
use crate::blob::BlobStore;
use crate::outbound::*;

/// How long a DSN that could not be sent waits before its recipients are
/// tried (and reported) again.
const REPORT_RETRY_SECS: i64 = 300;

/// How many times an enqueue that lost a race with another node's
/// transaction is tried.
const TRIES: usize = 3;

/// Keys `add_dkim_keys` takes its per-domain advisory locks under (with
/// the domain's hash), apart from every other advisory lock.
const DKIM_LOCKS: i32 = 0x444b_494d;

/// The queue's columns [`message_from_row`] reads, in its order.
const MESSAGE_COLUMNS: &str =
    "SELECT id, qid, sender, account_id, blob, size, eight_bit, created, prefix FROM queue";
/// The recipients' columns [`recipient_from_row`] reads, in its order.
const RECIPIENT_COLUMNS: &str =
    "message_id, address, state, attempts, next_try, last_answer, delayed";

#[async_trait::async_trait]
impl Outbound for PgStore {
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
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .enqueue_once(&message, &hash, size as i64, eight_bit)
                .await
            {
                Err(e) if tries < TRIES && retryable(&e) => continue,
                done => return done,
            }
        }
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
        let mut c = self.client().await?;
        // One snapshot for both lists.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let messages = all(&tx, &format!("{MESSAGE_COLUMNS} ORDER BY id"), &[])
            .await?
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        let rcpts = all(
            &tx,
            &format!("SELECT {RECIPIENT_COLUMNS} FROM queue_rcpt ORDER BY message_id, address"),
            &[],
        )
        .await?
        .iter()
        .map(recipient_from_row)
        .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(assemble(messages, rcpts))
    }

    async fn claim_due(&self, now: i64, limit: usize) -> Result<Vec<Queued>> {
        // Leases carry this node's number, which others trust only while
        // the node holds its liveness lock.
        self.alive().await?;
        let mut c = self.client().await?;
        // A reader's look first: every node's runner polls every second,
        // and an idle queue must not cost a write (and a commit) each time.
        let look = format!(
            "SELECT 1 FROM queue_rcpt WHERE next_try <= $1 \
             OR (state IN ('sending', 'reporting') AND {DEAD_LEASE}) LIMIT 1"
        );
        if one(&c, &look, &[&now]).await?.is_none() {
            return Ok(Vec::new());
        }
        // A node that died mid-delivery: its recipients are due again.
        release_dead(&c, now).await?;
        let tx = c.transaction().await?;
        // Rows another node is taking right now are skipped, not waited
        // for: no two nodes take the same recipient.
        let rcpts = all(
            &tx,
            &format!(
                "WITH due AS (SELECT message_id, address FROM queue_rcpt WHERE next_try <= $2 \
                 ORDER BY next_try LIMIT $3 FOR UPDATE SKIP LOCKED), \
                 taken AS (UPDATE queue_rcpt r SET state = 'sending', next_try = $1, \
                 leased_by = $4 FROM due \
                 WHERE r.message_id = due.message_id AND r.address = due.address RETURNING r.*) \
                 SELECT {RECIPIENT_COLUMNS} FROM taken ORDER BY message_id, address"
            ),
            &[
                &(now.saturating_add(LEASE_SECS)),
                &now,
                &(limit.min(i64::MAX as usize) as i64),
                &self.node(),
            ],
        )
        .await?
        .iter()
        .map(recipient_from_row)
        .collect::<Result<Vec<_>>>()?;
        let mut ids: Vec<i64> = rcpts.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        let messages = all(
            &tx,
            &format!("{MESSAGE_COLUMNS} WHERE id = ANY($1) ORDER BY id"),
            &[&ids],
        )
        .await?
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(assemble(messages, rcpts))
    }

    async fn release_leases(&self) -> Result<()> {
        // Only the leases of nodes that are gone: on a shared queue the
        // others are still delivering theirs. A DSN that was being sent
        // when its node died goes again: its recipients are tried once
        // more, fail again, and are reported then (a repeat is better than
        // a lost report).
        let c = self.client().await?;
        release_dead(&c, unix_now()).await
    }

    async fn record_attempts(
        &self,
        message: i64,
        attempts: &[Attempt],
    ) -> Result<Vec<(String, String)>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The message row first: two nodes settling recipients of one
        // message take turns, so the later sees the earlier's rows (and
        // the round's failures are taken once, when the last settles).
        let Some(row) = one(
            &tx,
            "SELECT qid FROM queue WHERE id = $1 FOR NO KEY UPDATE",
            &[&message],
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        let qid: String = row.try_get(0)?;
        let answers: Vec<_> = attempts.iter().map(|a| without_nul(&a.answer)).collect();
        // The message trace keeps every answer, by queue ID.
        let rcpts: Vec<&str> = attempts.iter().map(|a| a.address.as_str()).collect();
        let outcomes: Vec<&str> = attempts
            .iter()
            .map(|a| match a.outcome {
                Outcome::Delivered => "delivered",
                Outcome::Failed => "failed",
                Outcome::Retry { .. } => "deferred",
            })
            .collect();
        let texts: Vec<&str> = answers.iter().map(|a| a.as_ref()).collect();
        exec(
            &tx,
            "INSERT INTO trace_answers (qid, at, rcpt, outcome, answer) \
             SELECT $1, $2, a.rcpt, a.outcome, a.answer \
             FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[]) WITH ORDINALITY \
             AS a(rcpt, outcome, answer, n) ORDER BY a.n",
            &[&qid, &unix_now(), &rcpts, &outcomes, &texts],
        )
        .await?;
        for (a, answer) in attempts.iter().zip(&texts) {
            match a.outcome {
                Outcome::Delivered => {
                    exec(
                        &tx,
                        "DELETE FROM queue_rcpt WHERE message_id = $1 AND address = $2",
                        &[&message, &a.address],
                    )
                    .await?
                }
                // Kept, never due again, until this round's other
                // recipients are settled: one DSN then names them all.
                Outcome::Failed => {
                    exec(
                        &tx,
                        "UPDATE queue_rcpt SET state = 'failed', next_try = $1, \
                     attempts = attempts + 1, last_answer = $2 \
                     WHERE message_id = $3 AND address = $4",
                        &[&i64::MAX, answer, &message, &a.address],
                    )
                    .await?
                }
                Outcome::Retry { at, delayed } => {
                    exec(
                        &tx,
                        "UPDATE queue_rcpt SET state = 'queued', next_try = $1, \
                     attempts = attempts + 1, last_answer = $2, delayed = $3 \
                     WHERE message_id = $4 AND address = $5",
                        &[&at, answer, &delayed, &message, &a.address],
                    )
                    .await?
                }
            };
        }
        let failed = take_failures(&tx, message, self.node()).await?;
        let gone = drop_if_empty(&tx, message).await?;
        tx.commit().await?;
        if gone {
            self.collect_garbage().await?;
        }
        Ok(failed)
    }

    async fn reported(&self, message: i64, addresses: &[String], sent: bool) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // In turn with the message's other writers ([`Outbound::record_attempts`]).
        if one(
            &tx,
            "SELECT 1 FROM queue WHERE id = $1 FOR NO KEY UPDATE",
            &[&message],
        )
        .await?
        .is_none()
        {
            return Ok(());
        }
        if sent {
            exec(
                &tx,
                "DELETE FROM queue_rcpt WHERE message_id = $1 AND state = 'reporting' \
                 AND address = ANY($2)",
                &[&message, &addresses],
            )
            .await?;
        } else {
            // The DSN could not go: those recipients are tried (and fail,
            // and are reported) again later.
            exec(
                &tx,
                "UPDATE queue_rcpt SET state = 'queued', next_try = $1 \
                 WHERE message_id = $2 AND state = 'reporting' AND address = ANY($3)",
                &[&(unix_now() + REPORT_RETRY_SECS), &message, &addresses],
            )
            .await?;
        }
        let gone = drop_if_empty(&tx, message).await?;
        tx.commit().await?;
        if gone {
            self.collect_garbage().await?;
        }
        Ok(())
    }

    async fn retry_now(&self, qid: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = exec(
            &c,
            "UPDATE queue_rcpt SET next_try = $1 WHERE state = 'queued' AND message_id = \
             (SELECT id FROM queue WHERE qid = $2)",
            &[&unix_now(), &qid],
        )
        .await?;
        if n > 0 {
            return Ok(true);
        }
        Ok(one(&c, "SELECT 1 FROM queue WHERE qid = $1", &[&qid])
            .await?
            .is_some())
    }

    async fn dequeue(&self, qid: &str) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let blob: Option<String> = match one(
            &tx,
            "DELETE FROM queue WHERE qid = $1 RETURNING blob",
            &[&qid],
        )
        .await?
        {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        };
        if let Some(blob) = &blob {
            forget_blob(&tx, blob).await?;
        }
        tx.commit().await?;
        let gone = blob.is_some();
        if gone {
            self.collect_garbage().await?;
        }
        Ok(gone)
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = domain.to_ascii_lowercase();
        let c = self.client().await?;
        all(
            &c,
            "SELECT domain, selector, algorithm, private, public, created, retired \
             FROM dkim_keys WHERE domain = $1 ORDER BY retired IS NOT NULL, id",
            &[&domain],
        )
        .await?
        .iter()
        .map(dkim_from_row)
        .collect()
    }

    async fn add_dkim_keys(&self, keys: &[DkimKey], retire: bool) -> Result<bool> {
        let now = unix_now();
        let mut domains: Vec<String> = keys.iter().map(|k| k.domain.to_ascii_lowercase()).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Each domain's lock, in one order: two nodes making a domain's
        // first keys (or rotating them) at once take turns, and the later
        // sees the earlier's keys.
        let mut locks = domains.clone();
        locks.sort_unstable();
        locks.dedup();
        for domain in &locks {
            exec(
                &tx,
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&DKIM_LOCKS, domain],
            )
            .await?;
        }
        domains.dedup();
        for domain in &domains {
            if retire {
                exec(
                    &tx,
                    "UPDATE dkim_keys SET retired = $1 WHERE domain = $2 AND retired IS NULL",
                    &[&now, domain],
                )
                .await?;
            } else if one(
                &tx,
                "SELECT 1 FROM dkim_keys WHERE domain = $1 AND retired IS NULL",
                &[domain],
            )
            .await?
            .is_some()
            {
                // Someone else made the first keys meanwhile: theirs stand.
                return Ok(false);
            }
        }
        for key in keys {
            exec(
                &tx,
                "INSERT INTO dkim_keys (domain, selector, algorithm, private, public, created) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &key.domain.to_ascii_lowercase(),
                    &key.selector,
                    &key.algorithm.as_str(),
                    &key.private,
                    &key.public,
                    &key.created,
                ],
            )
            .await?;
        }
        tx.commit().await?;
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        exec(
            &tx,
            "INSERT INTO sent_ids (account_id, message_id, mailbox_id, uid, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, message_id) \
             DO UPDATE SET mailbox_id = EXCLUDED.mailbox_id, uid = EXCLUDED.uid, at = EXCLUDED.at",
            &[&account.0, &message_id, &mailbox.0, &(uid as i64), &now],
        )
        .await?;
        // Notes older than a day are never asked about again.
        exec(
            &tx,
            "DELETE FROM sent_ids WHERE account_id = $1 AND at < $2",
            &[&account.0, &(now - 86_400)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sent_copy(
        &self,
        account: AccountId,
        message_id: &str,
        since: i64,
    ) -> Result<Option<(MailboxId, u32)>> {
        let c = self.client().await?;
        match one(
            &c,
            "SELECT s.mailbox_id, s.uid FROM sent_ids s JOIN messages m \
             ON m.mailbox_id = s.mailbox_id AND m.uid = s.uid \
             WHERE s.account_id = $1 AND s.message_id = $2 AND s.at >= $3",
            &[&account.0, &message_id, &since],
        )
        .await?
        {
            Some(r) => Ok(Some((
                MailboxId(r.try_get(0)?),
                r.try_get::<_, i64>(1)? as u32,
            ))),
            None => Ok(None),
        }
    }
}

impl PgStore {
    /// Stores the queued message and its recipients in one transaction.
    /// A submission's copy is usually the bytes of its Sent copy, filed
    /// just before: then the queue names that body row, locked so that
    /// the collector cannot take it meanwhile, and the bytes are not sent
    /// again; else the body is written, as an append writes one.
    async fn enqueue_once(
        &self,
        message: &NewQueued<'_>,
        hash: &BlobHash,
        size: i64,
        eight_bit: bool,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let stored = one(
            &tx,
            "SELECT 1 FROM blobs WHERE hash = $1 FOR KEY SHARE",
            &[&hash.0],
        )
        .await?
        .is_some();
        if !stored {
            exec(
                &tx,
                "INSERT INTO blobs (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[&hash.0, &message.raw],
            )
            .await?;
        }
        let now = unix_now();
        let id: i64 = tx
            .query_one(
                "INSERT INTO queue (qid, sender, account_id, blob, size, eight_bit, created, prefix) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &message.qid,
                    &message.sender,
                    &message.account.map(|a| a.0),
                    &hash.0,
                    &size,
                    &eight_bit,
                    &now,
                    &message.prefix,
                ],
            )
            .await?
            .try_get(0)?;
        exec(
            &tx,
            "INSERT INTO queue_rcpt (message_id, address, next_try) \
             SELECT $1, a, $2 FROM unnest($3::TEXT[]) AS a ON CONFLICT DO NOTHING",
            &[&id, &now, &message.recipients],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Gives the recipients held by nodes that are gone back to the queue,
/// due `now`.
async fn release_dead(c: &impl GenericClient, now: i64) -> Result<()> {
    exec(
        c,
        &format!(
            "UPDATE queue_rcpt SET state = 'queued', next_try = $1, leased_by = NULL \
             WHERE state IN ('sending', 'reporting') AND {DEAD_LEASE}"
        ),
        &[&now],
    )
    .await?;
    Ok(())
}

/// Once none of the message's recipients is held by a runner (every one
/// taken in this round is settled): those it failed for, with their
/// answers, for one DSN, marked 'reporting' until `reported` says the DSN
/// went. Empty while others of this round are still out.
async fn take_failures(
    c: &impl GenericClient,
    message: i64,
    node: i64,
) -> Result<Vec<(String, String)>> {
    if one(
        c,
        "SELECT 1 FROM queue_rcpt WHERE message_id = $1 AND state = 'sending' LIMIT 1",
        &[&message],
    )
    .await?
    .is_some()
    {
        return Ok(Vec::new());
    }
    let mut failed = all(
        c,
        "UPDATE queue_rcpt SET state = 'reporting', leased_by = $2 \
         WHERE message_id = $1 AND state = 'failed' RETURNING address, last_answer",
        &[&message, &node],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get::<_, String>(0)?,
            r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
        ))
    })
    .collect::<Result<Vec<_>>>()?;
    failed.sort();
    Ok(failed)
}

/// Deletes the message when no recipient is left, handing its body to the
/// collector; true when it went.
async fn drop_if_empty(c: &impl GenericClient, message: i64) -> Result<bool> {
    let blob: Option<String> = match one(
        c,
        "DELETE FROM queue WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM queue_rcpt WHERE message_id = $1) RETURNING blob",
        &[&message],
    )
    .await?
    {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    };
    if let Some(blob) = &blob {
        forget_blob(c, blob).await?;
    }
    Ok(blob.is_some())
}

/// A body no queue row names any more: the collector decides whether
/// anything else still does.
async fn forget_blob(c: &impl GenericClient, blob: &str) -> Result<()> {
    exec(
        c,
        "INSERT INTO blob_gc (hash) VALUES ($1) \
        ",
        &[&blob],
    )
    .await?;
    Ok(())
}

fn message_from_row(r: &Row) -> Result<Queued> {
    Ok(Queued {
        id: r.try_get(0)?,
        qid: r.try_get(1)?,
        sender: r.try_get(2)?,
        account: r.try_get::<_, Option<i64>>(3)?.map(AccountId),
        blob: BlobHash(r.try_get(4)?),
        size: r.try_get::<_, i64>(5)?.max(0) as u64,
        eight_bit: r.try_get(6)?,
        created: r.try_get(7)?,
        prefix: r.try_get(8)?,
        recipients: Vec::new(),
    })
}

/// A recipient row with the id of its message.
fn recipient_from_row(r: &Row) -> Result<(i64, QueuedRecipient)> {
    Ok((
        r.try_get(0)?,
        QueuedRecipient {
            address: r.try_get(1)?,
            state: match r.try_get::<_, &str>(2)? {
                "sending" => RecipientState::Sending,
                "failed" | "reporting" => RecipientState::Failed,
                _ => RecipientState::Queued,
            },
            attempts: r.try_get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
            next_try: r.try_get(4)?,
            last_answer: r.try_get(5)?,
            delayed: r.try_get(6)?,
        },
    ))
}

/// Queue rows with their recipient rows.
fn assemble(messages: Vec<Queued>, rcpts: Vec<(i64, QueuedRecipient)>) -> Vec<Queued> {
    let mut by_message: HashMap<i64, Vec<QueuedRecipient>> = HashMap::new();
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

fn dkim_from_row(r: &Row) -> Result<DkimKey> {
    let algorithm = match r.try_get::<_, &str>(2)? {
        "ed25519" => DkimAlgorithm::Ed25519,
        "rsa" => DkimAlgorithm::Rsa,
        other => return Err(Error::Db(format!("unknown DKIM algorithm {other:?}"))),
    };
    Ok(DkimKey {
        domain: r.try_get(0)?,
        selector: r.try_get(1)?,
        algorithm,
        private: r.try_get(3)?,
        public: r.try_get(4)?,
        created: r.try_get(5)?,
        retired: r.try_get(6)?,
    })
}
