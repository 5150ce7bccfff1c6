//! The embedded store's [`crate::Messages`]. Messages: appending, reading, flags, expunge, copy and move.

use super::*;

#[async_trait]
impl Messages for SqliteStore {
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

    async fn states(&self, mailbox: MailboxId) -> Result<Arc<Vec<MessageState>>> {
        self.read_states(mailbox).await
    }

    async fn newest(
        &self,
        mailbox: MailboxId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageMeta>, u32)> {
        self.db
            .read(move |c| {
                let tx = c.unchecked_transaction()?;
                let page = all(
                    &tx,
                    select_messages!("WHERE mailbox_id = ?1 ORDER BY uid DESC LIMIT ?2 OFFSET ?3"),
                    params![mailbox, limit as i64, offset as i64],
                    message_from_row,
                )?;
                let total: i64 = one(
                    &tx,
                    "SELECT COUNT(*) FROM messages WHERE mailbox_id = ?1",
                    [mailbox],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
                Ok((page, total as u32))
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
        self.body_reads.fetch_add(1, Ordering::Relaxed);
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
        self.body_reads
            .fetch_add(wanted.len() as u64, Ordering::Relaxed);
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

    async fn sort_keys(&self, mailbox: MailboxId, parts: SortParts) -> Result<Arc<Vec<SortEntry>>> {
        self.read_sort_keys(mailbox, parts).await
    }

    async fn views(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageCache)>> {
        let uids = uid_json(uids);
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT uid, envelope, bodystructure, preview FROM messages WHERE mailbox_id = ?1 \
                     AND uid IN (SELECT value FROM json_each(?2)) ORDER BY uid",
                    params![mailbox, uids],
                    |r| {
                        Ok((
                            r.get(0)?,
                            MessageCache {
                                envelope: r.get(1)?,
                                bodystructure: r.get(2)?,
                                preview: r.get(3)?,
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
}

/// A message's index entry from the columns of [`select_messages`], in
/// that order.
pub(super) fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    let state = super::states::state_from_row(r)?;
    Ok(MessageMeta {
        uid: state.uid,
        modseq: state.modseq,
        flags: state.flags,
        keywords: state.keywords.into_vec(),
        internal_date: InternalDate {
            unix: r.get(4)?,
            tz_minutes: r.get::<_, i64>(5)? as i32,
        },
        size: r.get::<_, i64>(6)? as u64,
        blob: BlobHash(r.get(7)?),
        saved_at: r.get(8)?,
    })
}

/// One message to insert, owned, so it can go to the writer thread.
pub(super) struct NewRow {
    pub(super) mailbox: MailboxId,
    /// Which of the distinct bodies it stores.
    pub(super) body: usize,
    pub(super) flags: i64,
    pub(super) keywords: String,
    pub(super) internal_date: InternalDate,
    pub(super) size: i64,
    pub(super) cache: MessageCache,
    pub(super) spam: Option<SpamNote>,
}

impl NewRow {
    pub(super) fn of(mailbox: MailboxId, m: &NewMessage<'_>, body: usize) -> NewRow {
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

/// Inserts `rows` (bodies already in place as `hashes`); runs of rows for
/// one mailbox take their UIDs and MODSEQs in one step.
pub(super) fn insert_rows(
    c: &Connection,
    origin: i64,
    rows: &[NewRow],
    hashes: &[BlobHash],
    keys: &[SortKeys],
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
        let (account_id, name, uidvalidity, uidnext, highest): (AccountId, String, u32, i64, i64) =
            one(
                c,
                "UPDATE mailboxes SET uidnext = uidnext + ?1, highestmodseq = highestmodseq + ?1 \
             WHERE id = ?2 RETURNING account_id, name, uidvalidity, uidnext, highestmodseq",
                params![n, mailbox],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
        let first_uid = uidnext - n;
        let first_modseq = highest - n + 1;
        let saved_at = unix_now();
        // The last UID handed out must leave UIDNEXT within 32 bits.
        if first_uid + n > u32::MAX as i64 {
            return Err(Error::UidsExhausted(name));
        }
        let mut insert = c.prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internal_date, \
             internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons, saved_at, \
             preview) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
                saved_at,
                row.cache.preview,
            ])?;
            if let Some(k) = keys.get(row.body) {
                super::sorting::put_keys(c, c.last_insert_rowid(), k)?;
            }
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
pub(super) fn store_in_tx(
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

/// Raises a mailbox's HIGHESTMODSEQ by one; returns its account and the new value.
pub(super) fn bump_modseq(c: &Connection, mailbox: MailboxId) -> Result<(AccountId, u64)> {
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
pub(super) fn expunge_in_tx(
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
        return Ok((AccountId(0), 0, present));
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
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq, at) \
         SELECT ?1, value, ?3, ?4 FROM json_each(?2)",
        params![mailbox, list, modseq as i64, crate::unix_now()],
    )?;
    exec(
        c,
        "DELETE FROM messages WHERE mailbox_id = ?1 AND uid IN (SELECT value FROM json_each(?2))",
        params![mailbox, list],
    )?;
    Ok((account, modseq, present))
}

pub(super) struct Moved {
    /// The source mailbox's account.
    pub(super) account: AccountId,
    pub(super) result: CopyResult,
    /// (mailbox, new HIGHESTMODSEQ) of every mailbox that changed.
    pub(super) touched: Vec<(MailboxId, u64)>,
}

/// A mailbox as copying into or out of it sees it.
pub(super) struct Side {
    pub(super) account: AccountId,
    pub(super) name: String,
    pub(super) special_use: Option<SpecialUse>,
}

pub(super) fn side_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Side> {
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
pub(super) fn move_in_tx(
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
    // A copy adds to the account's mail; a move does not.
    if !is_move && !source.is_empty() {
        let sizes: Vec<i64> = all(
            c,
            "SELECT size FROM messages WHERE mailbox_id = ?1 \
             AND uid IN (SELECT value FROM json_each(?2))",
            params![from, uid_json(&source)],
            |r| r.get(0),
        )?;
        let adding: Vec<(MailboxId, u64)> =
            sizes.iter().map(|s| (to, (*s).max(0) as u64)).collect();
        super::quota::check(c, &adding)?;
    }
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
         internal_tz, size, blob, envelope, bodystructure, spam_score, spam_reasons, saved_at, \
         preview) \
         SELECT ?1, ?2, ?3, flags, keywords, internal_date, internal_tz, size, blob, \
         envelope, bodystructure, spam_score, spam_reasons, ?6, preview \
         FROM messages WHERE mailbox_id = ?4 AND uid = ?5",
    )?;
    // The copy's keys are the original's (the same body).
    let mut copy_keys = c.prepare_cached(
        "INSERT INTO message_keys SELECT ?1, sent, subject, reply, from_key, to_key, cc_key, \
         display_from, display_to, message_id, refs, sent_day, fields FROM message_keys \
         WHERE id = (SELECT id FROM messages WHERE mailbox_id = ?2 AND uid = ?3)",
    )?;
    for (i, uid) in source.iter().enumerate() {
        let new_uid = first + i as i64;
        copy.execute(params![to, new_uid, modseq, from, uid, unix_now()])?;
        copy_keys.execute(params![c.last_insert_rowid(), from, uid])?;
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
pub(super) fn record_training(
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

/// A read of a mailbox's changes that other callers may join.
pub(super) struct Flight {
    /// The leader's id.
    pub(super) id: u64,
    pub(super) answer: Answer,
    /// The read has begun: a caller that joins now may miss what was
    /// committed after its snapshot.
    pub(super) started: bool,
}

pub(super) fn start_flight(flights: &Flights, key: (MailboxId, u64), id: u64) {
    let mut flights = flights.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = flights.get_mut(&key).filter(|f| f.id == id) {
        f.started = true;
    }
}

/// Takes the read `id` out of the map, handing back the channel its
/// joiners wait on. Only its own entry: a later caller's read under the
/// same key has joiners of its own.
pub(super) fn end_flight(flights: &Flights, key: (MailboxId, u64), id: u64) -> Option<Answer> {
    let mut flights = flights.lock().unwrap_or_else(|p| p.into_inner());
    if flights.get(&key).is_some_and(|f| f.id == id) {
        return flights.remove(&key).map(|f| f.answer);
    }
    None
}

/// The caller running a shared read: dropped (answered, failed or
/// cancelled) it ends the read if the read never did, so that joiners
/// find the channel closed and read on their own.
pub(super) struct Leader {
    pub(super) flights: Arc<Flights>,
    pub(super) key: (MailboxId, u64),
    pub(super) id: u64,
}

impl Drop for Leader {
    fn drop(&mut self) {
        end_flight(&self.flights, self.key, self.id);
    }
}

/// The changes of `mailbox` after `modseq`, read now, in one statement,
/// so the three answers come from one snapshot (sessions ask after every
/// change to their mailbox). The last column (the tenth), `kind`: 0 the mailbox
/// (HIGHESTMODSEQ and UIDNEXT in the first columns); 1 a message changed
/// or added; 2 a message expunged.
pub(super) fn read_changes(
    c: &Connection,
    mailbox: MailboxId,
    modseq: u64,
) -> Result<MailboxDelta> {
    let mut statement = c.prepare_cached(
        "SELECT highestmodseq, uidnext, vanished_floor, '', 0, 0, 0, '', 0, 0 AS kind \
         FROM mailboxes WHERE id = ?1 \
         UNION ALL \
         SELECT uid, modseq, flags, keywords, internal_date, internal_tz, size, blob, \
         COALESCE(saved_at, internal_date), 1 \
         FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 \
         UNION ALL \
         SELECT uid, 0, 0, '', 0, 0, 0, '', 0, 2 FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 \
         ORDER BY kind, 1",
    )?;
    let mut rows = statement.query(params![mailbox, modseq as i64])?;
    let mut delta = None;
    let mut changed = Vec::new();
    let mut expunged = Vec::new();
    while let Some(r) = rows.next()? {
        match r.get::<_, i64>(9)? {
            0 => {
                delta = Some((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, u32>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            }
            1 => changed.push(message_from_row(r)?),
            _ => expunged.push(r.get(0)?),
        }
    }
    let (highestmodseq, uidnext, floor) =
        delta.ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    Ok(MailboxDelta {
        highestmodseq,
        uidnext,
        changed,
        expunged,
        expunged_complete: modseq >= floor,
    })
}
