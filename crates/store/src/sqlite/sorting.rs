//! The embedded store's sort keys (RFC 5256) and indexed header fields:
//! kept beside each message row in `message_keys`, read with the
//! mailbox's index rows; the keys of the mailboxes sorted last are kept
//! in memory too (keys never change while a message keeps its UID, so a
//! SORT of 100,000 messages reads a handful of rows instead of all).

use super::cache::{self, Cached, MailboxCache};
use super::*;

/// Messages whose keys the cache holds, over all mailboxes. With subjects,
/// addresses and references an entry is about 550 bytes (measured: 55 MB
/// for 100,000), so this is some 110 MB at most.
const KEY_CACHE_ENTRIES: usize = 200_000;

/// The sort keys of the mailboxes sorted last, with which text keys they
/// hold (never the header fields).
pub(super) type KeyCache = MailboxCache<SortEntry, SortParts>;

pub(super) fn key_cache() -> KeyCache {
    MailboxCache::new(KEY_CACHE_ENTRIES)
}

/// What one read of the index found: the mailbox's state, and either all
/// its rows or what changed after a kept state.
struct Snapshot {
    uidvalidity: u32,
    modseq: u64,
    /// `rows` are the whole mailbox, not what came after the kept state.
    whole: bool,
    /// UIDs expunged after the kept MODSEQ.
    gone: Vec<u32>,
    rows: Vec<SortEntry>,
}

impl SqliteStore {
    /// [`Messages::sort_keys`]: from the cache, brought up to date, where
    /// the caller needs no header fields; otherwise one read of the index.
    pub(super) async fn read_sort_keys(
        &self,
        mailbox: MailboxId,
        parts: SortParts,
    ) -> Result<Arc<Vec<SortEntry>>> {
        if parts.fields {
            let read = self.read_keys(mailbox, parts, None).await?;
            return Ok(Arc::new(read.map(|s| s.rows).unwrap_or_default()));
        }
        let cached = self.keys.take(mailbox);
        let (since, parts) = match &cached {
            Some(c) if covers(c.kind, parts) => (
                Some((
                    c.uidvalidity,
                    c.modseq,
                    c.entries.last().map_or(0, |e| e.uid),
                )),
                c.kind,
            ),
            // Wider parts than kept: read again with both.
            Some(c) => (None, union(c.kind, parts)),
            None => (None, parts),
        };
        let Some(read) = self.read_keys(mailbox, parts, since).await? else {
            return Ok(Arc::default());
        };
        let entries = match cached {
            Some(c) if !read.whole => {
                let mut entries = c.entries;
                cache::apply(&mut entries, &read.gone, read.rows, |e| e.uid);
                entries
            }
            _ => Arc::new(read.rows),
        };
        let kept = Cached::new(read.uidvalidity, read.modseq, parts, entries.clone());
        self.keys.put(mailbox, kept);
        Ok(entries)
    }

    /// Reads the keys `parts` asks for, in one read transaction: all rows,
    /// or with `since` (the cached UIDVALIDITY, MODSEQ and last UID) only
    /// what changed after it, unless the mailbox was re-created or pruned
    /// expunge records past it. `None`: the mailbox is gone. Messages
    /// without keys (stored before keys were kept) are read once and given
    /// theirs.
    async fn read_keys(
        &self,
        mailbox: MailboxId,
        parts: SortParts,
        since: Option<(u32, u64, u32)>,
    ) -> Result<Option<Snapshot>> {
        let read = self
            .db
            .read(move |c| {
                let tx = c.unchecked_transaction()?;
                let kept = since.map(|(v, m, _)| (v, m));
                let Some(start) = cache::start(&tx, mailbox, kept)? else {
                    return Ok(None);
                };
                let mut snapshot = Snapshot {
                    uidvalidity: start.uidvalidity,
                    modseq: start.modseq,
                    whole: start.after.is_none(),
                    gone: Vec::new(),
                    rows: Vec::new(),
                };
                let mut missing = Vec::new();
                let last_uid = match (start.after, since) {
                    // Nothing committed since: nothing to read.
                    (Some(m), _) if m == start.modseq => return Ok(Some((snapshot, missing))),
                    (Some(m), Some((_, _, last))) => {
                        snapshot.gone = cache::expunged_after(&tx, mailbox, m)?;
                        last
                    }
                    _ => 0,
                };
                let sql = select_keys(parts);
                let mut statement = tx.prepare_cached(&sql)?;
                let rows = statement
                    .query_map(params![mailbox, last_uid], |r| entry_from_row(r, parts))?;
                // The entries stay where they are made (each is a few
                // hundred bytes: 100,000 moves show up).
                for row in rows {
                    let (entry, m) = row?;
                    if let Some((id, blob)) = m {
                        missing.push((snapshot.rows.len(), id, blob));
                    }
                    snapshot.rows.push(entry);
                }
                drop(statement);
                Ok(Some((snapshot, missing)))
            })
            .await?;
        let Some((mut snapshot, missing)) = read else {
            return Ok(None);
        };
        if missing.is_empty() {
            return Ok(Some(snapshot));
        }
        // Older messages: keys made from their headers now, and kept.
        let mut made = Vec::new();
        for (i, id, blob) in missing {
            match self.read_blob(&blob).await {
                Ok(raw) => {
                    let keys = mime::sort::sort_keys(&raw);
                    snapshot.rows[i].keys = keys.clone();
                    made.push((id, keys));
                }
                // Expunged meanwhile and collected: left with empty keys.
                Err(e) => tracing::debug!("sort keys: body {} unreadable: {e}", blob.0),
            }
        }
        self.db
            .write(move |c| {
                for (id, keys) in &made {
                    put_keys(c, *id, keys)?;
                }
                Ok(())
            })
            .await?;
        Ok(Some(snapshot))
    }
}

/// Whether keys read with `held` serve a caller asking for `asked`.
fn covers(held: SortParts, asked: SortParts) -> bool {
    (held.text || !asked.text) && (held.threads || !asked.threads) && !asked.fields
}

fn union(a: SortParts, b: SortParts) -> SortParts {
    SortParts {
        text: a.text || b.text,
        threads: a.threads || b.threads,
        fields: a.fields || b.fields,
    }
}

/// One row of [`select_keys`], and for a row without keys its row id and
/// body.
fn entry_from_row(
    r: &rusqlite::Row<'_>,
    parts: SortParts,
) -> rusqlite::Result<(SortEntry, Option<(i64, BlobHash)>)> {
    let mut keys = SortKeys {
        sent: r.get(3)?,
        sent_day: r.get::<_, Option<i64>>(4)?.map(day_from_column),
        reply: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
        ..SortKeys::default()
    };
    let missing = match r.get::<_, Option<i64>>(5)? {
        Some(id) => Some((id, BlobHash(r.get(6)?))),
        None => None,
    };
    // The asked-for columns, in the order select_keys lists them.
    let mut at = FIXED_COLUMNS;
    let mut next = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<String>> {
        at += 1;
        r.get(at - 1)
    };
    if parts.text || parts.threads {
        keys.subject = next(r)?.unwrap_or_default();
    }
    if parts.text {
        keys.from = next(r)?.unwrap_or_default();
        keys.to = next(r)?.unwrap_or_default();
        keys.cc = next(r)?.unwrap_or_default();
        keys.display_from = next(r)?.unwrap_or_default();
        keys.display_to = next(r)?.unwrap_or_default();
    }
    if parts.threads {
        keys.message_id = next(r)?;
        keys.references = next(r)?
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    if parts.fields {
        keys.fields = next(r)?;
    }
    let entry = SortEntry {
        uid: r.get(0)?,
        internal_date: r.get(1)?,
        size: r.get::<_, i64>(2)?.max(0) as u64,
        keys,
    };
    Ok((entry, missing))
}

/// The read of [`SqliteStore::read_keys`]: the columns `parts` needs
/// and no others (turning 100,000 rows into values is most of its cost).
/// The first [`FIXED_COLUMNS`] always: uid, internal date, size, sent,
/// sent day, for a row without keys its id and body, and the reply mark;
/// then the asked-for ones in the order the reader takes them.
fn select_keys(parts: SortParts) -> String {
    let mut columns = vec![
        "m.uid",
        "m.internal_date",
        "m.size",
        "k.sent",
        "k.sent_day",
        "IIF(k.id IS NULL, m.id, NULL)",
        "IIF(k.id IS NULL, m.blob, NULL)",
        "k.reply",
    ];
    if parts.text || parts.threads {
        columns.push("k.subject");
    }
    if parts.text {
        columns.extend([
            "k.from_key",
            "k.to_key",
            "k.cc_key",
            "k.display_from",
            "k.display_to",
        ]);
    }
    if parts.threads {
        columns.extend(["k.message_id", "k.refs"]);
    }
    if parts.fields {
        columns.push("k.fields");
    }
    format!(
        "SELECT {} FROM messages m LEFT JOIN message_keys k ON k.id = m.id \
         WHERE m.mailbox_id = ?1 AND m.uid > ?2 ORDER BY m.uid",
        columns.join(", ")
    )
}

/// Columns every read of [`select_keys`] has.
const FIXED_COLUMNS: usize = 8;

/// A day (year, month, day) as `sent_day` keeps it: yyyymmdd.
fn day_to_column((y, m, d): (i64, u32, u32)) -> i64 {
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

fn day_from_column(n: i64) -> (i64, u32, u32) {
    (n / 10_000, (n / 100 % 100) as u32, (n % 100) as u32)
}

/// Keeps the keys of the message in row `id`, if it is still there (an
/// expunge meanwhile leaves nothing behind).
pub(super) fn put_keys(c: &Connection, id: i64, k: &SortKeys) -> Result<()> {
    // Message IDs cannot hold spaces (RFC 5322 3.6.4), so they join by one.
    let refs: Vec<&str> = k
        .references
        .iter()
        .map(String::as_str)
        .filter(|r| !r.contains(' '))
        .collect();
    exec(
        c,
        "INSERT OR IGNORE INTO message_keys (id, sent, subject, reply, from_key, to_key, cc_key, \
         display_from, display_to, message_id, refs, sent_day, fields) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
         WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)",
        params![
            id,
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
            k.sent_day.map(day_to_column),
            k.fields,
        ],
    )?;
    Ok(())
}
