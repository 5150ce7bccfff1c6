//! The embedded store's sort keys (RFC 5256) and indexed header fields:
//! kept per body in `sort_keys` when a body is stored, read with the
//! mailbox's index rows.

use super::*;

impl SqliteStore {
    /// [`Messages::sort_keys`]: one read of the index; bodies without keys
    /// (stored before keys were kept) are read once and given theirs.
    pub(super) async fn read_sort_keys(
        &self,
        mailbox: MailboxId,
        parts: SortParts,
    ) -> Result<Vec<SortEntry>> {
        let (text, threads, fields) = (parts.text, parts.threads, parts.fields);
        let rows = self
            .db
            .read(move |c| {
                // Columns not asked for come back NULL: no text is made.
                all(
                    c,
                    "SELECT m.uid, m.internal_date, m.size, \
                     IIF(k.blob IS NULL, m.blob, NULL), k.sent, \
                     IIF(?2 OR ?3, k.subject, NULL), k.reply, \
                     IIF(?2, k.from_key, NULL), IIF(?2, k.to_key, NULL), \
                     IIF(?2, k.cc_key, NULL), IIF(?2, k.display_from, NULL), \
                     IIF(?2, k.display_to, NULL), IIF(?3, k.message_id, NULL), \
                     IIF(?3, k.refs, NULL), k.blob IS NOT NULL, k.sent_day, \
                     IIF(?4, k.fields, NULL) \
                     FROM messages m LEFT JOIN sort_keys k ON k.blob = m.blob \
                     WHERE m.mailbox_id = ?1 ORDER BY m.uid",
                    params![mailbox, text, threads, fields],
                    |r| {
                        let entry = SortEntry {
                            uid: r.get(0)?,
                            internal_date: r.get(1)?,
                            size: r.get::<_, i64>(2)?.max(0) as u64,
                            keys: SortKeys {
                                sent: r.get(4)?,
                                subject: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                                reply: r.get::<_, Option<bool>>(6)?.unwrap_or(false),
                                from: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                                to: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                                cc: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                                display_from: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                                display_to: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                                message_id: r.get(12)?,
                                references: r
                                    .get::<_, Option<String>>(13)?
                                    .unwrap_or_default()
                                    .split(' ')
                                    .filter(|s| !s.is_empty())
                                    .map(str::to_string)
                                    .collect(),
                                sent_day: r.get::<_, Option<i64>>(15)?.map(|d| {
                                    (d / 10_000, (d / 100 % 100) as u32, (d % 100) as u32)
                                }),
                                fields: r.get(16)?,
                            },
                        };
                        let kept: bool = r.get(14)?;
                        Ok((
                            entry,
                            (!kept).then(|| BlobHash(r.get(3).unwrap_or_default())),
                        ))
                    },
                )
            })
            .await?;
        let missing: Vec<(usize, BlobHash)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, (_, b))| b.clone().map(|b| (i, b)))
            .collect();
        let mut entries: Vec<SortEntry> = rows.into_iter().map(|(e, _)| e).collect();
        if missing.is_empty() {
            return Ok(entries);
        }
        // Older bodies: made from their headers now, and kept.
        let mut made = Vec::new();
        for (i, blob) in missing {
            match self.read_blob(&blob).await {
                Ok(raw) => {
                    let keys = mime::sort::sort_keys(&raw);
                    entries[i].keys = keys.clone();
                    made.push((blob, keys));
                }
                // Expunged meanwhile and collected: left with empty keys.
                Err(e) => tracing::debug!("sort keys: body {} unreadable: {e}", blob.0),
            }
        }
        self.db
            .write(move |c| {
                for (blob, keys) in &made {
                    put_keys(c, blob, keys)?;
                }
                Ok(())
            })
            .await?;
        Ok(entries)
    }
}

/// Keeps the keys of a body (once: copies share the row), while a message
/// still holds it (a body collected meanwhile leaves no row behind).
pub(super) fn put_keys(c: &Connection, blob: &BlobHash, k: &SortKeys) -> Result<()> {
    // Message IDs cannot hold spaces (RFC 5322 3.6.4), so they join by one.
    let refs: Vec<&str> = k
        .references
        .iter()
        .map(String::as_str)
        .filter(|r| !r.contains(' '))
        .collect();
    exec(
        c,
        "INSERT OR IGNORE INTO sort_keys (blob, sent, subject, reply, from_key, to_key, cc_key, \
         display_from, display_to, message_id, refs, sent_day, fields) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
         WHERE EXISTS (SELECT 1 FROM messages WHERE blob = ?1)",
        params![
            blob.0,
            k.sent,
            k.subject,
            k.reply,
            k.from,
            k.to,
            k.cc,
            k.display_from,
            k.display_to,
            k.message_id,
            refs.join(" "),
            k.sent_day
                .map(|(y, m, d)| y * 10_000 + i64::from(m) * 100 + i64::from(d)),
            k.fields,
        ],
    )?;
    Ok(())
}
