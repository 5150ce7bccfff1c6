//! Per-mailbox lists kept in memory between commands: the sort keys
//! ([`super::sorting`]) and the message states sessions open views with
//! ([`SqliteStore::read_states`]). A kept list is brought up to date from
//! the index instead of read again: the rows changed after the MODSEQ it
//! was read at, and the UIDs `expunged` recorded after it. Held per
//! process; another process's writes are seen the same way, through the
//! index.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

/// The lists of the mailboxes asked for last, at most `limit` entries in
/// all; past it the mailbox asked for longest ago goes.
pub(super) struct MailboxCache<T, K = ()> {
    mailboxes: Mutex<HashMap<MailboxId, Cached<T, K>>>,
    limit: usize,
}

pub(super) struct Cached<T, K> {
    pub(super) uidvalidity: u32,
    /// The mailbox's HIGHESTMODSEQ when `entries` were read.
    pub(super) modseq: u64,
    /// What the entries hold, where that varies.
    pub(super) kind: K,
    /// In UID order.
    pub(super) entries: Arc<Vec<T>>,
    /// When it was last asked for: a tick of the cache's own clock.
    used: u64,
}

impl<T, K> Cached<T, K> {
    pub(super) fn new(uidvalidity: u32, modseq: u64, kind: K, entries: Arc<Vec<T>>) -> Self {
        Cached {
            uidvalidity,
            modseq,
            kind,
            entries,
            used: 0,
        }
    }
}

impl<T, K> MailboxCache<T, K> {
    pub(super) fn new(limit: usize) -> Self {
        MailboxCache {
            mailboxes: Mutex::default(),
            limit,
        }
    }

    /// Takes a mailbox's list out while it is updated, so its entries
    /// are changed in place unless a caller still holds them.
    pub(super) fn take(&self, mailbox: MailboxId) -> Option<Cached<T, K>> {
        self.lock().remove(&mailbox)
    }

    /// Keeps `cached`, then drops the mailboxes asked for longest ago
    /// while the cache holds more than its limit (the one just kept goes
    /// too if it alone is larger).
    pub(super) fn put(&self, mailbox: MailboxId, mut cached: Cached<T, K>) {
        let mut map = self.lock();
        cached.used = map.values().map(|c| c.used).max().unwrap_or(0) + 1;
        map.insert(mailbox, cached);
        while map.values().map(|c| c.entries.len()).sum::<usize>() > self.limit {
            let Some(oldest) = map.iter().min_by_key(|(_, c)| c.used).map(|(m, _)| *m) else {
                break;
            };
            map.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MailboxId, Cached<T, K>>> {
        // A panic while it was held left at worst a missing entry.
        self.mailboxes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a read of a mailbox's list starts, inside the read's transaction.
pub(super) struct Start {
    pub(super) uidvalidity: u32,
    /// The mailbox's HIGHESTMODSEQ now.
    pub(super) modseq: u64,
    /// The kept list's MODSEQ when it can be brought up to date: the
    /// mailbox was not re-created, and the expunges after that MODSEQ are
    /// all still on record. `None`: read the whole list.
    pub(super) after: Option<u64>,
}

/// The [`Start`] of a read of `mailbox` for a list kept at `kept`
/// (UIDVALIDITY, MODSEQ); `None` when the mailbox is gone.
pub(super) fn start(
    c: &Connection,
    mailbox: MailboxId,
    kept: Option<(u32, u64)>,
) -> Result<Option<Start>> {
    let state = one(
        c,
        "SELECT uidvalidity, highestmodseq, vanished_floor FROM mailboxes WHERE id = ?1",
        [mailbox],
        |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )?;
    Ok(state.map(|(uidvalidity, modseq, floor)| Start {
        uidvalidity,
        modseq,
        after: kept
            .filter(|&(v, m)| v == uidvalidity && floor <= m)
            .map(|(_, m)| m),
    }))
}

/// The UIDs expunged from a mailbox after `modseq`, in UID order.
pub(super) fn expunged_after(c: &Connection, mailbox: MailboxId, modseq: u64) -> Result<Vec<u32>> {
    all(
        c,
        "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        params![mailbox, modseq as i64],
        |r| r.get(0),
    )
}

/// Brings a kept list up to date: the `gone` UIDs (in UID order) out, and
/// each of `changed` (in UID order) put in place of the entry with its
/// UID or, when new, added at the end.
pub(super) fn apply<T: Clone>(
    entries: &mut Arc<Vec<T>>,
    gone: &[u32],
    changed: Vec<T>,
    uid: fn(&T) -> u32,
) {
    if gone.is_empty() && changed.is_empty() {
        return;
    }
    let list = Arc::make_mut(entries);
    if !gone.is_empty() {
        list.retain(|e| gone.binary_search(&uid(e)).is_err());
    }
    let last = list.last().map_or(0, uid);
    for e in changed {
        let u = uid(&e);
        if u > last {
            list.push(e);
        } else if let Ok(i) = list.binary_search_by_key(&u, uid) {
            list[i] = e;
        }
    }
}
