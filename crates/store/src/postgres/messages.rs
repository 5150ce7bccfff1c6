//! [`crate::Messages`] on PostgreSQL: appending, reading, flags, expunge,
//! copy and move, and the bodies (rows of `blobs`).

use std::collections::HashMap;

use async_trait::async_trait;

use super::mailboxes::claim_in_tx;
use super::quota::quota_check;
use super::sorting::{entry_from_row, only, put_keys, put_many_keys, select_keys};
use super::traces::without_nul;
use super::*;
use crate::SortKeys;
use crate::blob::BlobStore;

/// The columns [`message_from_row`] reads, in its order.
const MESSAGE_COLUMNS: &str = "uid, modseq, flags, keywords, internal_date, internal_tz, size, \
     blob, COALESCE(saved_at, internal_date)";

/// How many times a write that lost a race with another node's is tried.
const TRIES: usize = 3;

#[async_trait]
impl Messages for PgStore {
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
        Ok(self.append_to(copies, None).await?.0)
    }

    async fn spam_note(&self, mailbox: MailboxId, uid: u32) -> Result<Option<SpamNote>> {
        let c = self.client().await?;
        let row = one(
            &c,
            "SELECT spam_score, spam_reasons FROM messages WHERE mailbox_id = $1 AND uid = $2",
            &[&mailbox.0, &(uid as i64)],
        )
        .await?;
        Ok(row.and_then(|r| {
            let score: Option<i64> = r.get(0);
            let reasons: Option<String> = r.get(1);
            score.map(|score| SpamNote {
                score,
                reasons: reasons.unwrap_or_default(),
            })
        }))
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        let c = self.client().await?;
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 ORDER BY uid");
        all(&c, &sql, &[&mailbox.0])
            .await?
            .iter()
            .map(message_from_row)
            .collect()
    }

    async fn newest(
        &self,
        mailbox: MailboxId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageMeta>, u32)> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 \
             ORDER BY uid DESC LIMIT $2 OFFSET $3"
        );
        let page = all(&tx, &sql, &[&mailbox.0, &(limit as i64), &(offset as i64)])
            .await?
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        let total: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM messages WHERE mailbox_id = $1",
                &[&mailbox.0],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok((page, total as u32))
    }

    async fn details(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) \
             ORDER BY uid"
        );
        all(&c, &sql, &[&mailbox.0, &uid_array(uids)])
            .await?
            .iter()
            .map(message_from_row)
            .collect()
    }

    async fn states(&self, mailbox: MailboxId) -> Result<Arc<Vec<MessageState>>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = $1 ORDER BY uid",
            &[&mailbox.0],
        )
        .await?;
        Ok(Arc::new(
            rows.iter().map(state_from_row).collect::<Result<_>>()?,
        ))
    }

    async fn sort_keys(&self, mailbox: MailboxId, parts: SortParts) -> Result<Arc<Vec<SortEntry>>> {
        let c = self.client().await?;
        let rows = all(&c, &select_keys(parts), &[&mailbox.0]).await?;
        let mut entries = rows
            .iter()
            .map(|r| entry_from_row(r, parts))
            .collect::<Result<Vec<_>>>()?;
        // Mail stored without keys (copied from a store that did not keep
        // them) gets them from its body here, once.
        for (entry, r) in entries.iter_mut().zip(&rows) {
            let Some(id) = r.try_get::<_, Option<i64>>(15)? else {
                continue;
            };
            let blob = BlobHash(r.try_get(16)?);
            match self.read_blob(&blob).await {
                Ok(raw) => {
                    let keys = mime::sort::sort_keys(&raw);
                    put_keys(&c, id, &keys).await?;
                    let uid = entry.uid;
                    let (date, size) = (entry.internal_date, entry.size);
                    *entry = SortEntry {
                        uid,
                        internal_date: date,
                        size,
                        keys: only(keys, parts),
                    };
                }
                Err(e) => tracing::debug!("sort keys: body {} unreadable: {e}", blob.0),
            }
        }
        Ok(Arc::new(entries))
    }

    async fn views(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageCache)>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT uid, envelope, bodystructure, preview FROM messages WHERE mailbox_id = $1 \
             AND uid = ANY($2) ORDER BY uid",
            &[&mailbox.0, &uid_array(uids)],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0) as u32,
                    MessageCache {
                        envelope: r.get(1),
                        bodystructure: r.get(2),
                        preview: r.get(3),
                    },
                )
            })
            .collect())
    }

    async fn changes_since(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        _covering: Option<u64>,
    ) -> Result<MailboxDelta> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let delta = read_changes(&tx, mailbox, modseq).await?;
        tx.commit().await?;
        Ok(delta)
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let (result, changed) = store_in_tx(&tx, mailbox, uids, change, unchanged_since).await?;
        // Nothing changed: the transaction (and the MODSEQ it took) is
        // rolled back when dropped.
        if let Some((account, modseq)) = changed {
            notify(&tx, self.origin, account, mailbox, modseq).await?;
            tx.commit().await?;
            self.publish(account, mailbox, modseq);
        }
        Ok(result)
    }

    async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        only_deleted: bool,
    ) -> Result<Expunged> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let (account, modseq, gone) = expunge_in_tx(&tx, mailbox, uids, only_deleted).await?;
        if gone.is_empty() {
            return Ok(Expunged::default());
        }
        notify(&tx, self.origin, account, mailbox, modseq).await?;
        tx.commit().await?;
        self.publish(account, mailbox, modseq);
        self.collect_garbage().await?;
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

    async fn read_blob(&self, blob: &BlobHash) -> Result<Vec<u8>> {
        self.read_blobs(std::slice::from_ref(blob))
            .await?
            .pop()
            .unwrap_or_else(|| Err(Error::Corrupt(format!("the body {} is missing", blob.0))))
    }

    async fn read_blobs(&self, wanted: &[BlobHash]) -> Result<Vec<Result<Vec<u8>>>> {
        self.body_reads
            .fetch_add(wanted.len() as u64, Ordering::Relaxed);
        let hashes: Vec<&str> = wanted.iter().map(|b| b.0.as_str()).collect();
        // The node's cache first; the database for the rest, which the
        // cache keeps for next time.
        let mut found = self.bodies.get(&hashes).await;
        let missing: Vec<&str> = hashes
            .iter()
            .copied()
            .filter(|h| !found.contains_key(*h))
            .collect();
        if !missing.is_empty() {
            let c = self.client().await?;
            let read: HashMap<String, Vec<u8>> = all(
                &c,
                "SELECT hash, body FROM blobs WHERE hash = ANY($1)",
                &[&missing],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            self.bodies.put(&read).await;
            found.extend(read);
        }
        // Each body moves out at its last place in the list (a batch is a
        // FETCH's few dozen): only a body asked for twice is copied.
        Ok(hashes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let body = if hashes[i + 1..].contains(h) {
                    found.get(*h).cloned()
                } else {
                    found.remove(*h)
                };
                body.ok_or_else(|| Error::Corrupt(format!("the body {h} is missing")))
            })
            .collect())
    }
}

impl PgStore {
    /// Stores each message into its mailbox in one transaction, answered
    /// in the same order; byte-equal messages share a body row, written
    /// once. With `claim`, the \Recent claim of that mailbox goes in the
    /// same transaction ([`Messages::append_claiming`]).
    async fn append_to(
        &self,
        items: Vec<(MailboxId, NewMessage<'_>)>,
        claim: Option<MailboxId>,
    ) -> Result<(Vec<Appended>, Option<std::ops::Range<u32>>)> {
        if items.is_empty() && claim.is_none() {
            return Ok((Vec::new(), None));
        }
        // The sort keys (RFC 5256) made from each distinct header once.
        let (distinct, bodies) = distinct_bodies(&items)?;
        let hashes: Vec<BlobHash> = distinct.iter().map(|r| BlobStore::hash_of(r)).collect();
        let keys: Vec<SortKeys> = distinct.iter().map(|r| mime::sort::sort_keys(r)).collect();
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .append_once(&items, &bodies, &distinct, &hashes, &keys, claim)
                .await
            {
                Err(e) if tries < TRIES && retryable(&e) => continue,
                Err(e) => return Err(e),
                Ok((out, touched, claimed)) => {
                    for (account, mailbox, modseq) in touched {
                        self.publish(account, mailbox, modseq);
                    }
                    return Ok((out, claimed));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn append_once(
        &self,
        items: &[(MailboxId, NewMessage<'_>)],
        bodies: &[usize],
        distinct: &[&[u8]],
        hashes: &[BlobHash],
        keys: &[SortKeys],
        claim: Option<MailboxId>,
    ) -> Result<(Vec<Appended>, Touched, Option<std::ops::Range<u32>>)> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Refused over quota before anything is written.
        let adding: Vec<(MailboxId, u64)> = items.iter().map(|(b, m)| (*b, m.size)).collect();
        quota_check(&tx, &adding).await?;
        // All bodies in one statement; one already there is left as it is.
        // The message rows' foreign keys then hold it with a KEY SHARE lock,
        // which writers of the same body share (an exclusive lock here made
        // every APPEND of one body wait for the one before to commit). The
        // collector cannot take a body once a row refers to it: its DELETE
        // waits for that lock and then fails the foreign-key check. If it
        // took the body between this INSERT and the rows, the rows fail
        // theirs, and the write is made again (Error::Commit).
        let names: Vec<&str> = hashes.iter().map(|h| h.0.as_str()).collect();
        exec(
            &tx,
            "INSERT INTO blobs (hash, body) SELECT * FROM unnest($1::TEXT[], $2::BYTEA[]) \
             ON CONFLICT (hash) DO NOTHING",
            &[&names, &distinct],
        )
        .await?;
        let (out, touched) = insert_rows(&tx, items, bodies, hashes, keys).await?;
        for (account, mailbox, modseq) in &touched {
            notify(&tx, self.origin, *account, *mailbox, *modseq).await?;
        }
        let claimed = match claim {
            Some(mailbox) => Some(claim_in_tx(&tx, mailbox).await?),
            None => None,
        };
        tx.commit().await?;
        Ok((out, touched, claimed))
    }

    async fn copy_or_move(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
        is_move: bool,
    ) -> Result<CopyResult> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let done = move_in_tx(&tx, from, uids, to, is_move).await?;
        for (mailbox, modseq) in &done.touched {
            notify(&tx, self.origin, done.account, *mailbox, *modseq).await?;
        }
        tx.commit().await?;
        for (mailbox, modseq) in &done.touched {
            self.publish(done.account, *mailbox, *modseq);
        }
        if is_move {
            self.collect_garbage().await?;
        }
        Ok(done.result)
    }
}

/// Mailboxes changed by an append: (account, mailbox, new HIGHESTMODSEQ).
type Touched = Vec<(AccountId, MailboxId, u64)>;

/// A read-only transaction: several reads from one snapshot.
async fn snapshot(c: &mut deadpool_postgres::Object) -> Result<deadpool_postgres::Transaction<'_>> {
    Ok(c.build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// Inserts the rows of `items` (bodies in place as `hashes`); each run
/// of rows for one mailbox takes its UIDs and MODSEQs in one step, under
/// that mailbox row's lock, so they commit in the order handed out, and
/// goes in as one statement (an import's 200 messages: one round trip,
/// not 400).
async fn insert_rows(
    c: &impl GenericClient,
    items: &[(MailboxId, NewMessage<'_>)],
    bodies: &[usize],
    hashes: &[BlobHash],
    keys: &[SortKeys],
) -> Result<(Vec<Appended>, Touched)> {
    let mut out = Vec::with_capacity(items.len());
    let mut touched: Touched = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mailbox = items[start].0;
        let run = items[start..]
            .iter()
            .take_while(|(m, _)| *m == mailbox)
            .count();
        let n = run as i64;
        let r = one(
            c,
            "UPDATE mailboxes SET uidnext = uidnext + $1, highestmodseq = highestmodseq + $1 \
             WHERE id = $2 RETURNING account_id, name, uidvalidity, uidnext, highestmodseq",
            &[&n, &mailbox.0],
        )
        .await?
        .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
        let account = AccountId(r.get(0));
        let name: String = r.get(1);
        let uidvalidity = r.get::<_, i64>(2) as u32;
        let first_uid = r.get::<_, i64>(3) - n;
        let first_modseq = r.get::<_, i64>(4) - n + 1;
        // The last UID handed out must leave UIDNEXT within 32 bits.
        if first_uid + n > u32::MAX as i64 {
            return Err(Error::UidsExhausted(name));
        }
        let rows = &items[start..start + run];
        let body_of = |i: usize| bodies[start + i];
        let mut blobs = Vec::with_capacity(run);
        for i in 0..run {
            let hash = hashes
                .get(body_of(i))
                .ok_or_else(|| Error::Corrupt("a body went missing on its way in".into()))?;
            blobs.push(hash.0.as_str());
        }
        let uids: Vec<i64> = (0..n).map(|i| first_uid + i).collect();
        let modseqs: Vec<i64> = (0..n).map(|i| first_modseq + i).collect();
        let column = |f: &dyn Fn(&NewMessage<'_>) -> i64| -> Vec<i64> {
            rows.iter().map(|(_, m)| f(m)).collect()
        };
        let flags = column(&|m| m.flags.bits() as i64);
        let dates = column(&|m| m.internal_date.unix);
        let zones = column(&|m| m.internal_date.tz_minutes as i64);
        let sizes = column(&|m| m.size as i64);
        // Text from the message may carry a NUL, which TEXT cannot hold.
        let keywords: Vec<String> = rows
            .iter()
            .map(|(_, m)| without_nul(&m.keywords.join(" ")).into_owned())
            .collect();
        let envelopes: Vec<Option<&[u8]>> = rows
            .iter()
            .map(|(_, m)| m.cache.envelope.as_deref())
            .collect();
        let structures: Vec<Option<&[u8]>> = rows
            .iter()
            .map(|(_, m)| m.cache.bodystructure.as_deref())
            .collect();
        let previews: Vec<Option<String>> = rows
            .iter()
            .map(|(_, m)| {
                m.cache
                    .preview
                    .as_deref()
                    .map(|p| without_nul(p).into_owned())
            })
            .collect();
        let scores: Vec<Option<i64>> = rows
            .iter()
            .map(|(_, m)| m.spam.as_ref().map(|n| n.score))
            .collect();
        let reasons: Vec<Option<String>> = rows
            .iter()
            .map(|(_, m)| {
                m.spam
                    .as_ref()
                    .map(|n| without_nul(&n.reasons).into_owned())
            })
            .collect();
        let ids_by_uid: HashMap<i64, i64> = all(
            c,
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
             internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons, saved_at, \
             preview) \
             SELECT $1, u.uid, u.modseq, u.flags, u.keywords, u.date, u.zone, u.size, u.blob, \
             u.envelope, u.structure, u.score, u.reasons, $2, u.preview \
             FROM unnest($3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::BIGINT[], \
             $8::BIGINT[], $9::BIGINT[], $10::TEXT[], $11::BYTEA[], $12::BYTEA[], $13::BIGINT[], \
             $14::TEXT[], $15::TEXT[]) AS u(uid, modseq, flags, keywords, date, zone, \
             size, blob, envelope, structure, score, reasons, preview) \
             RETURNING uid, id",
            &[
                &mailbox.0,
                &unix_now(),
                &uids,
                &modseqs,
                &flags,
                &keywords,
                &dates,
                &zones,
                &sizes,
                &blobs,
                &envelopes,
                &structures,
                &scores,
                &reasons,
                &previews,
            ],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        let mut kept = Vec::with_capacity(run);
        for (i, uid) in uids.iter().enumerate() {
            if let (Some(id), Some(k)) = (ids_by_uid.get(uid), keys.get(body_of(i))) {
                kept.push((*id, k));
            }
        }
        put_many_keys(c, &kept).await?;
        for (uid, modseq) in uids.iter().zip(&modseqs) {
            out.push(Appended {
                mailbox_id: mailbox,
                uidvalidity,
                uid: *uid as u32,
                modseq: *modseq as u64,
            });
        }
        let last_modseq = (first_modseq + n - 1) as u64;
        match touched.iter_mut().find(|t| t.1 == mailbox) {
            Some(t) => t.2 = last_modseq,
            None => touched.push((account, mailbox, last_modseq)),
        }
        start += run;
    }
    Ok((out, touched))
}

/// Changes flags of some messages; the mailbox's account and new MODSEQ
/// when anything changed (else the caller rolls back the MODSEQ taken).
/// The mailbox row is locked first, as by every writer of the mailbox, so
/// two nodes' changes apply one after the other and never deadlock.
async fn store_in_tx(
    c: &impl GenericClient,
    mailbox: MailboxId,
    uids: &[u32],
    change: &FlagChange,
    unchanged_since: Option<u64>,
) -> Result<(StoreFlagsResult, Option<(AccountId, u64)>)> {
    let (account, modseq) = bump_modseq(c, mailbox).await?;
    let rows = all(
        c,
        "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = $1 \
         AND uid = ANY($2) ORDER BY uid",
        &[&mailbox.0, &uid_array(uids)],
    )
    .await?;
    let mut result = StoreFlagsResult::default();
    let mut planned = Vec::new();
    for r in &rows {
        let state = state_from_row(r)?;
        if unchanged_since.is_some_and(|u| state.modseq > u) {
            result.refused.push(state.uid);
            continue;
        }
        let keywords = state.keywords.into_vec();
        let (new_flags, new_keywords) = change.apply(state.flags, &keywords);
        if new_flags != state.flags || new_keywords != keywords {
            planned.push((state.uid, new_flags, new_keywords));
        }
    }
    if planned.is_empty() {
        return Ok((result, None));
    }
    let update = c
        .prepare_cached(
            "UPDATE messages SET flags = $1, keywords = $2, modseq = $3 \
             WHERE mailbox_id = $4 AND uid = $5",
        )
        .await?;
    for (uid, flags, keywords) in planned {
        c.execute(
            &update,
            &[
                &(flags.bits() as i64),
                &without_nul(&keywords.join(" ")).into_owned(),
                &(modseq as i64),
                &mailbox.0,
                &(uid as i64),
            ],
        )
        .await?;
        result.updated.push(FlagUpdate {
            uid,
            flags,
            keywords,
            modseq,
        });
    }
    Ok((result, Some((account, modseq))))
}

/// Raises a mailbox's HIGHESTMODSEQ by one (taking its row's lock);
/// returns its account and the new value.
async fn bump_modseq(c: &impl GenericClient, mailbox: MailboxId) -> Result<(AccountId, u64)> {
    let r = one(
        c,
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = $1 \
         RETURNING account_id, highestmodseq",
        &[&mailbox.0],
    )
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    Ok((AccountId(r.get(0)), r.get::<_, i64>(1) as u64))
}

/// Deletes messages inside a write transaction, remembering their UIDs
/// for VANISHED and their bodies for the collector. Bumps MODSEQ only
/// when something was there.
pub(super) async fn expunge_in_tx(
    c: &impl GenericClient,
    mailbox: MailboxId,
    uids: &[u32],
    only_deleted: bool,
) -> Result<(AccountId, u64, Vec<u32>)> {
    // The mailbox row first: every writer of a mailbox locks in that order.
    let (account, modseq) = bump_modseq(c, mailbox).await?;
    // Noting a body still in use elsewhere is harmless: the collector
    // looks for references before it deletes.
    note_bodies(c, mailbox, uids).await?;
    let gone: Vec<i64> = all(
        c,
        "DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) \
         AND (NOT $3 OR (flags & 8) != 0) RETURNING uid",
        &[&mailbox.0, &uid_array(uids), &only_deleted],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if gone.is_empty() {
        // Nothing changed: the MODSEQ taken goes back with the rollback.
        return Ok((account, 0, Vec::new()));
    }
    exec(
        c,
        "INSERT INTO expunged (mailbox_id, uid, modseq, at) \
         SELECT $1, u, $3, $4 FROM unnest($2::BIGINT[]) AS u \
         ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq, at = EXCLUDED.at",
        &[&mailbox.0, &gone, &(modseq as i64), &unix_now()],
    )
    .await?;
    let mut uids: Vec<u32> = gone.iter().map(|&u| u as u32).collect();
    uids.sort_unstable();
    Ok((account, modseq, uids))
}

/// Notes the bodies of messages about to go, for the collector.
async fn note_bodies(c: &impl GenericClient, mailbox: MailboxId, uids: &[u32]) -> Result<()> {
    exec(
        c,
        "INSERT INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
         WHERE mailbox_id = $1 AND uid = ANY($2)",
        &[&mailbox.0, &uid_array(uids)],
    )
    .await?;
    Ok(())
}

pub(super) struct Moved {
    /// The source mailbox's account.
    pub(super) account: AccountId,
    pub(super) result: CopyResult,
    /// (mailbox, new HIGHESTMODSEQ) of every mailbox that changed.
    pub(super) touched: Vec<(MailboxId, u64)>,
}

/// Copies messages to `to` (new UIDs, same bodies, flags and dates), and
/// with `is_move` expunges them from `from`, inside one transaction. The
/// two mailbox rows are locked in id order, so that a move each way
/// between two mailboxes at once cannot deadlock; a quota's account row
/// before them, as an append does.
pub(super) async fn move_in_tx(
    c: &impl GenericClient,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
    is_move: bool,
) -> Result<Moved> {
    // A copy adds to the account's mail; a move does not.
    if !is_move {
        let adding: Vec<(MailboxId, u64)> = all(
            c,
            "SELECT size FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)",
            &[&from.0, &uid_array(uids)],
        )
        .await?
        .iter()
        .map(|r| (to, r.get::<_, i64>(0).max(0) as u64))
        .collect();
        quota_check(c, &adding).await?;
    }
    let boxes = all(
        c,
        "SELECT id, account_id, name, special_use FROM mailboxes WHERE id = ANY($1) \
         ORDER BY id FOR NO KEY UPDATE",
        &[&vec![from.0, to.0]],
    )
    .await?;
    let side = |id: MailboxId| -> Result<(AccountId, String, Option<SpecialUse>)> {
        let r = boxes
            .iter()
            .find(|r| r.get::<_, i64>(0) == id.0)
            .ok_or_else(|| Error::NoMailbox(format!("#{id}")))?;
        let special: Option<String> = r.get(3);
        Ok((
            AccountId(r.get(1)),
            r.get(2),
            special.as_deref().and_then(SpecialUse::parse),
        ))
    };
    let (source_account, source_name, source_use) = side(from)?;
    let (_, dest_name, dest_use) = side(to)?;
    let source_uids: Vec<u32> = all(
        c,
        "SELECT uid FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
        &[&from.0, &uid_array(uids)],
    )
    .await?
    .iter()
    .map(|r| r.get::<_, i64>(0) as u32)
    .collect();
    let n = source_uids.len() as i64;
    let r = c
        .query_one(
            "UPDATE mailboxes SET uidnext = uidnext + $1, highestmodseq = highestmodseq + 1 \
             WHERE id = $2 RETURNING uidvalidity, uidnext, highestmodseq",
            &[&n, &to.0],
        )
        .await?;
    let uidvalidity = r.get::<_, i64>(0) as u32;
    let first = r.get::<_, i64>(1) - n;
    let modseq: i64 = r.get(2);
    if first + n > u32::MAX as i64 {
        return Err(Error::UidsExhausted(dest_name));
    }
    let mut result = CopyResult {
        uidvalidity,
        pairs: Vec::with_capacity(source_uids.len()),
        source_modseq: 0,
    };
    if source_uids.is_empty() {
        return Ok(Moved {
            account: source_account,
            result,
            touched: Vec::new(),
        });
    }
    let new_uids: Vec<i64> = (0..n).map(|i| first + i).collect();
    // One statement: each source row, paired with its new UID by position,
    // copied with its keys (the same body has the same keys).
    exec(
        c,
        "WITH pairs AS (SELECT * FROM unnest($3::BIGINT[], $4::BIGINT[]) AS p(old, new)), \
         copied AS (INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
         internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons, saved_at, \
         preview) \
         SELECT $1, p.new, $5, m.flags, m.keywords, m.internal_date, m.internal_tz, m.size, m.blob, \
         m.envelope, m.bodystructure, m.spam_score, m.spam_reasons, $6, m.preview \
         FROM pairs p JOIN messages m ON m.mailbox_id = $2 AND m.uid = p.old \
         RETURNING id, uid) \
         INSERT INTO message_keys SELECT copied.id, k.sent, k.subject, k.reply, k.from_key, \
         k.to_key, k.cc_key, k.display_from, k.display_to, k.message_id, k.refs, k.sent_day, \
         k.fields FROM copied JOIN pairs p ON p.new = copied.uid \
         JOIN messages m ON m.mailbox_id = $2 AND m.uid = p.old \
         JOIN message_keys k ON k.id = m.id",
        &[
            &to.0,
            &from.0,
            &uid_array(&source_uids),
            &new_uids,
            &modseq,
            &unix_now(),
        ],
    )
    .await?;
    for (old, new) in source_uids.iter().zip(&new_uids) {
        result.pairs.push((*old, *new as u32));
    }
    if let Some(spam) = training((&source_name, source_use), (&dest_name, dest_use)) {
        // The trainer sees exactly the moves that happened: the events go
        // in the copy's own transaction.
        exec(
            c,
            "INSERT INTO training (account_id, blob, spam, at) \
             SELECT $1, blob, $2, $3 FROM messages WHERE mailbox_id = $4 \
             AND uid = ANY($5) ORDER BY uid",
            &[
                &source_account.0,
                &spam,
                &unix_now(),
                &from.0,
                &uid_array(&source_uids),
            ],
        )
        .await?;
    }
    let mut touched = vec![(to, modseq as u64)];
    if is_move {
        let (_, source_modseq, _) = expunge_in_tx(c, from, &source_uids, false).await?;
        touched.push((from, source_modseq));
        result.source_modseq = source_modseq;
    }
    Ok(Moved {
        account: source_account,
        result,
        touched,
    })
}

/// The changes of `mailbox` after `modseq`, from one snapshot.
async fn read_changes(
    c: &impl GenericClient,
    mailbox: MailboxId,
    modseq: u64,
) -> Result<MailboxDelta> {
    let head = one(
        c,
        "SELECT highestmodseq, uidnext, vanished_floor FROM mailboxes WHERE id = $1",
        &[&mailbox.0],
    )
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    let since = modseq.min(i64::MAX as u64) as i64;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid"
    );
    let changed = all(c, &sql, &[&mailbox.0, &since])
        .await?
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>>>()?;
    let expunged = all(
        c,
        "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        &[&mailbox.0, &since],
    )
    .await?
    .iter()
    .map(|r| r.get::<_, i64>(0) as u32)
    .collect();
    let floor = head.get::<_, i64>(2) as u64;
    Ok(MailboxDelta {
        highestmodseq: head.get::<_, i64>(0) as u64,
        uidnext: head.get::<_, i64>(1) as u32,
        changed,
        expunged,
        expunged_complete: modseq >= floor,
    })
}

/// A message's index entry from [`MESSAGE_COLUMNS`].
pub(super) fn message_from_row(r: &Row) -> Result<MessageMeta> {
    let state = state_from_row(r)?;
    Ok(MessageMeta {
        uid: state.uid,
        modseq: state.modseq,
        flags: state.flags,
        keywords: state.keywords.into_vec(),
        internal_date: InternalDate {
            unix: r.try_get(4)?,
            tz_minutes: r.try_get::<_, i64>(5)? as i32,
        },
        size: r.try_get::<_, i64>(6)?.max(0) as u64,
        blob: BlobHash(r.try_get(7)?),
        saved_at: r.try_get(8)?,
    })
}

/// A message's state from its first four columns: uid, modseq, flags,
/// keywords.
fn state_from_row(r: &Row) -> Result<MessageState> {
    let keywords: String = r.try_get(3)?;
    Ok(MessageState {
        uid: r.try_get::<_, i64>(0)? as u32,
        modseq: r.try_get::<_, i64>(1)? as u64,
        flags: Flags::from_bits(r.try_get::<_, i64>(2)? as u8),
        keywords: keywords.split_whitespace().map(String::from).collect(),
    })
}
