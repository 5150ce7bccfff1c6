//! The message states sessions open their views with
//! ([`Messages::states`]), kept in memory for the mailboxes opened last
//! ([`cache`]).

use super::cache::{self, Cached, MailboxCache};
use super::*;

/// Message states kept, over all mailboxes: some 50 bytes each.
const STATE_CACHE_ENTRIES: usize = 1_000_000;

/// The message states of the mailboxes opened last ([`cache`]).
pub(super) type StateCache = MailboxCache<MessageState>;

pub(super) fn state_cache() -> StateCache {
    MailboxCache::new(STATE_CACHE_ENTRIES)
}

impl SqliteStore {
    /// [`Messages::states`]: the kept list brought up to date (reading the
    /// rows whose MODSEQ passed it and the UIDs expunged since), or all
    /// rows when none is kept or it cannot be. Opening a 100,000-message
    /// mailbox after 1,000 flag changes reads 1,000 rows.
    pub(super) async fn read_states(&self, mailbox: MailboxId) -> Result<Arc<Vec<MessageState>>> {
        let cached = self.states.take(mailbox);
        let since = cached.as_ref().map(|c| (c.uidvalidity, c.modseq));
        let read = self
            .db
            .read(move |c| {
                let tx = c.unchecked_transaction()?;
                let Some(start) = cache::start(&tx, mailbox, since)? else {
                    return Ok(None);
                };
                let (uidvalidity, modseq) = (start.uidvalidity, start.modseq);
                let read = match start.after {
                    Some(m) if m == modseq => (false, Vec::new(), Vec::new()),
                    Some(m) => (
                        false,
                        cache::expunged_after(&tx, mailbox, m)?,
                        all(
                            &tx,
                            "SELECT uid, modseq, flags, keywords FROM messages \
                             WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
                            params![mailbox, m as i64],
                            state_from_row,
                        )?,
                    ),
                    None => (
                        true,
                        Vec::new(),
                        all(
                            &tx,
                            "SELECT uid, modseq, flags, keywords FROM messages \
                             WHERE mailbox_id = ?1 ORDER BY uid",
                            [mailbox],
                            state_from_row,
                        )?,
                    ),
                };
                Ok(Some((uidvalidity, modseq, read)))
            })
            .await?;
        let Some((uidvalidity, modseq, (whole, gone, rows))) = read else {
            return Ok(Arc::default());
        };
        let entries = match cached {
            Some(c) if !whole => {
                let mut entries = c.entries;
                cache::apply(&mut entries, &gone, rows, |e| e.uid);
                entries
            }
            _ => Arc::new(rows),
        };
        let kept = Cached::new(uidvalidity, modseq, (), entries.clone());
        self.states.put(mailbox, kept);
        Ok(entries)
    }
}

/// A message's state from its first four index columns: uid, modseq,
/// flags, keywords (as [`message_from_row`] reads them too).
pub(super) fn state_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageState> {
    let keywords: String = r.get(3)?;
    Ok(MessageState {
        uid: r.get(0)?,
        modseq: r.get::<_, i64>(1)? as u64,
        flags: Flags::from_bits(r.get::<_, i64>(2)? as u8),
        keywords: keywords.split_whitespace().map(String::from).collect(),
    })
}
