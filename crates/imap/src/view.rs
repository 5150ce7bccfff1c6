//! The selected mailbox as one session sees it: message sequence numbers,
//! flags as last announced, \Recent, and expunges not yet announced.
//! Other sessions' changes come in through `MailStore::changes_since`; what
//! may be told to the client when is RFC 9051 7.5.1's business (the caller
//! says whether EXPUNGE may be sent now).

use std::collections::HashSet;
use std::ops::Range;

use imap_proto::{SeqNum, SequenceSet};
use store::{MailStore, Mailbox};

pub struct View {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// In sequence order (which is UID order).
    pub messages: Vec<Entry>,
    /// The MODSEQ up to which this view has taken in changes.
    pub modseq: u64,
    /// UIDs that are \Recent in this session.
    pub recent: HashSet<u32>,
    /// UIDs gone from the store but still in `messages`, to be announced.
    pub pending_expunge: HashSet<u32>,
    /// The view's MODSEQ before the first of `pending_expunge` came in: a
    /// client told of later changes meanwhile must not take their MODSEQ
    /// for how far it is in sync (RFC 7162 errata 1810).
    pub modseq_before_pending: Option<u64>,
    /// \Recent this session took with its own APPEND
    /// ([`MailStore::append_claiming`]), for the messages it has not seen
    /// yet: no claim of its own is needed for those.
    pub claimed: Option<Range<u32>>,
    /// The keywords this session's client has been told of in FLAGS and
    /// PERMANENTFLAGS: a FETCH may show a keyword only after those list it
    /// (RFC 9051 7.3.5), so a keyword new to the view is announced first.
    announced: Vec<String>,
    /// `announced` grew since FLAGS last went out.
    flags_due: bool,
}

/// What a session keeps of each message while its mailbox is selected.
pub type Entry = store::MessageState;

/// What changed when the view caught up with the store.
#[derive(Default)]
pub struct Updates {
    /// UIDs whose flags changed.
    pub flags: Vec<u32>,
    pub new_messages: usize,
}

/// Messages a sequence set names: sorted, merged ranges of indexes into
/// `View::messages`. Never larger than the mailbox, however the set was
/// written (`1:*,1:*,...`).
#[derive(Debug, Default, Clone)]
pub struct Selection(Vec<Range<usize>>);

impl Selection {
    fn from_ranges(mut ranges: Vec<Range<usize>>) -> Selection {
        ranges.retain(|r| !r.is_empty());
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        Selection(merged)
    }

    pub fn contains(&self, i: usize) -> bool {
        let pos = self.0.partition_point(|r| r.end <= i);
        self.0.get(pos).is_some_and(|r| r.contains(&i))
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().flat_map(|r| r.clone())
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|r| r.len()).sum()
    }

    /// Only the indexes `keep` says yes to.
    pub fn filtered(&self, keep: impl Fn(usize) -> bool) -> Selection {
        Selection::from_ranges(self.iter().filter(|&i| keep(i)).map(|i| i..i + 1).collect())
    }
}

impl View {
    pub async fn open(
        store: &dyn MailStore,
        mailbox: Mailbox,
        read_only: bool,
    ) -> store::Result<View> {
        // \Recent is claimed before the messages are read, so every message
        // in the claimed range is in the list read next.
        // EXAMINE sees \Recent without taking it (RFC 3501 2.3.2).
        let recent = store.claim_recent(mailbox.id, !read_only).await?;
        // A fresh list of exactly the entries, allocated on this session's
        // thread: collected in place, the store's list (allocated on a
        // reader thread, in that thread's malloc arena) would be kept for
        // as long as the mailbox is selected, scattered among the reader's
        // short-lived buffers, which then cannot be given back.
        let stored = store.states(mailbox.id).await?;
        let mut messages = Vec::new();
        make_room(&mut messages, stored.len());
        messages.extend(stored.iter().cloned());
        let modseq = mailbox.highestmodseq;
        let mut view = View {
            mailbox,
            read_only,
            messages,
            modseq,
            recent: HashSet::new(),
            pending_expunge: HashSet::new(),
            modseq_before_pending: None,
            claimed: None,
            announced: Vec::new(),
            flags_due: false,
        };
        // SELECT's own FLAGS carry these: nothing is due yet.
        for m in &view.messages {
            add_new(&mut view.announced, &m.keywords);
        }
        view.mark_recent(recent);
        Ok(view)
    }

    /// Notes keywords the view now holds; new ones make FLAGS due.
    pub fn learn(&mut self, keywords: &[String]) {
        self.flags_due |= add_new(&mut self.announced, keywords);
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` for every flag the view knows
    /// (RFC 9051 7.3.5 and 7.1); nothing is permanent when read-only.
    pub fn flags_lines(&self) -> String {
        let system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        let kw: String = self.announced.iter().map(|k| format!(" {k}")).collect();
        let permanent = if self.read_only {
            "* OK [PERMANENTFLAGS ()] Read-only mailbox.".to_string()
        } else {
            format!("* OK [PERMANENTFLAGS ({system}{kw} \\*)] Flags permitted.")
        };
        format!("* FLAGS ({system}{kw})\r\n{permanent}\r\n")
    }

    /// [`View::flags_lines`] when keywords new to the client arrived since
    /// they last went out: to send before any FETCH that could show them.
    pub fn take_flags_due(&mut self) -> Option<String> {
        std::mem::take(&mut self.flags_due).then(|| self.flags_lines())
    }

    /// This session's own change, already applied to its entries, made
    /// the mailbox's MODSEQ `modseq`. When nothing else happened in between
    /// (it is the next MODSEQ after the view's), the view is current
    /// without reading the change back, and the feed's notice of it is
    /// not news ([`View::is_news`]).
    pub fn took_own_change(&mut self, modseq: u64) {
        if modseq == self.modseq + 1 {
            self.modseq = modseq;
            self.mailbox.highestmodseq = modseq;
        }
    }

    /// This session's own APPEND into this mailbox: when nothing else
    /// changed in between (the new MODSEQs follow the view's, one a
    /// message), the view takes the messages in without reading them back
    /// and marks what the APPEND claimed \Recent; true when it did (the
    /// caller announces EXISTS). Otherwise nothing changes here.
    pub fn took_own_append(&mut self, added: Vec<Entry>, claimed: Option<Range<u32>>) -> bool {
        let last_uid = self.messages.last().map_or(0, |m| m.uid);
        let follows = added
            .iter()
            .enumerate()
            .all(|(i, e)| e.modseq == self.modseq + 1 + i as u64 && e.uid > last_uid + i as u32);
        let Some(last) = added.last() else {
            return false;
        };
        if !follows {
            return false;
        }
        self.modseq = last.modseq;
        self.mailbox.highestmodseq = last.modseq;
        self.mailbox.uidnext = self.mailbox.uidnext.max(last.uid + 1);
        for e in &added {
            self.learn(&e.keywords);
        }
        make_room(&mut self.messages, added.len());
        self.messages.extend(added);
        if let Some(range) = claimed {
            self.mark_recent(range);
        }
        true
    }

    /// Whether a change notice from the feed may hold something this view
    /// has not taken in: a MODSEQ past the view's, or 0 (the mailbox was
    /// renamed or deleted).
    pub fn is_news(&self, change: &store::Change) -> bool {
        change.mailbox_id == self.mailbox.id && (change.modseq == 0 || change.modseq > self.modseq)
    }

    /// What a catch-up prompted by `change` (news to this view) must
    /// cover: its MODSEQ, or everything (None) for a rename or deletion.
    pub fn covering(change: &store::Change) -> Option<u64> {
        (change.modseq > 0).then_some(change.modseq)
    }

    fn mark_recent(&mut self, range: Range<u32>) {
        for m in self.messages.iter().rev() {
            if m.uid < range.start {
                break;
            }
            if range.contains(&m.uid) {
                self.recent.insert(m.uid);
            }
        }
    }

    pub fn exists(&self) -> usize {
        self.messages.len()
    }

    /// Index in `messages` of a UID.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// Takes in what changed in the store since `self.modseq`. Expunged
    /// messages stay until [`View::take_expunges`].
    /// `covering`: the newest change notice this catch-up answers, if it
    /// is known (see [`MailStore::changes_since`]).
    pub async fn catch_up(
        &mut self,
        store: &dyn MailStore,
        covering: Option<u64>,
    ) -> store::Result<Updates> {
        let delta = store
            .changes_since(self.mailbox.id, self.modseq, covering)
            .await?;
        let mut updates = Updates::default();
        let last_uid = self.messages.last().map_or(0, |m| m.uid);
        let mut gone: HashSet<u32> = delta.expunged.iter().copied().collect();
        if !delta.expunged_complete {
            // The records of what went since this view last looked were
            // pruned (it sat unheard for longer than they are kept): what
            // the view has and the mailbox lacks went.
            let there: HashSet<u32> = store
                .states(self.mailbox.id)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            gone.extend(
                self.messages
                    .iter()
                    .map(|m| m.uid)
                    .filter(|u| !there.contains(u)),
            );
        }
        let before = self.modseq;
        for uid in &gone {
            if self.index_of(*uid).is_some() {
                self.pending_expunge.insert(*uid);
                self.modseq_before_pending.get_or_insert(before);
            }
        }
        let incoming = delta.changed.iter().filter(|m| m.uid > last_uid).count();
        make_room(&mut self.messages, incoming);
        for m in delta.changed.into_iter().map(Entry::from) {
            if gone.contains(&m.uid) {
                continue;
            }
            self.learn(&m.keywords);
            match self.index_of(m.uid) {
                Some(i) => {
                    let old = &self.messages[i];
                    if old.flags != m.flags || old.keywords != m.keywords {
                        updates.flags.push(m.uid);
                    }
                    self.messages[i] = m;
                }
                None if m.uid > last_uid => {
                    self.messages.push(m);
                    updates.new_messages += 1;
                }
                None => {}
            }
        }
        self.modseq = self.modseq.max(delta.highestmodseq);
        self.mailbox.highestmodseq = self.modseq;
        self.mailbox.uidnext = self.mailbox.uidnext.max(delta.uidnext);
        if updates.new_messages > 0 {
            let newest = self.messages.last().map_or(0, |m| m.uid);
            let claimed = self.claimed.take();
            // Anything past what the APPEND claimed came later: ask.
            let covered = claimed.as_ref().is_some_and(|r| newest < r.end);
            if let Some(range) = claimed {
                self.mark_recent(range);
            }
            if !covered {
                let range = store.claim_recent(self.mailbox.id, !self.read_only).await?;
                self.mark_recent(range);
            }
        }
        Ok(updates)
    }

    /// Removes the pending expunges from the view and returns the sequence
    /// numbers to announce with their UIDs, in the order to announce them
    /// (each one counted after the ones before are gone, as Dovecot sends
    /// them). One pass.
    pub fn take_expunges(&mut self) -> Vec<(usize, u32)> {
        self.modseq_before_pending = None;
        if self.pending_expunge.is_empty() {
            return Vec::new();
        }
        let gone = std::mem::take(&mut self.pending_expunge);
        let mut seqs = Vec::with_capacity(gone.len());
        let mut kept = 0;
        let recent = &mut self.recent;
        self.messages.retain(|m| {
            if gone.contains(&m.uid) {
                // Its number now: one more than the messages kept before it.
                seqs.push((kept + 1, m.uid));
                recent.remove(&m.uid);
                false
            } else {
                kept += 1;
                true
            }
        });
        seqs
    }

    /// Removes messages this session expunged itself; returns their
    /// sequence numbers and UIDs in announcement order.
    pub fn remove(&mut self, uids: &[u32]) -> Vec<(usize, u32)> {
        let present: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| self.index_of(*u).is_some())
            .collect();
        self.pending_expunge.extend(present);
        self.take_expunges()
    }

    /// The messages a sequence set names. `saved` is the SEARCHRES result,
    /// as UIDs. Sequence numbers beyond the mailbox are an error (RFC 9051
    /// 6.4.9); UIDs that are not there are skipped.
    pub fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
        saved: Option<&[u32]>,
    ) -> Result<Selection, String> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        match set {
            SequenceSet::Saved => {
                for u in saved.unwrap_or_default() {
                    if let Some(i) = self.index_of(*u) {
                        ranges.push(i..i + 1);
                    }
                }
            }
            SequenceSet::Ranges(list) => {
                let n = self.messages.len();
                for (a, b) in list {
                    if uid {
                        let max = self.messages.last().map_or(0, |m| m.uid);
                        let value = |s: &SeqNum| match s {
                            SeqNum::Value(v) => *v,
                            SeqNum::Last => max,
                        };
                        let (x, y) = (value(a), value(b));
                        let (lo, hi) = (x.min(y), x.max(y));
                        let start = self.messages.partition_point(|m| m.uid < lo);
                        let end = self.messages.partition_point(|m| m.uid <= hi);
                        ranges.push(start..end);
                    } else {
                        if n == 0 {
                            return Err("the mailbox is empty".into());
                        }
                        let value = |s: &SeqNum| match s {
                            SeqNum::Value(v) => *v as usize,
                            SeqNum::Last => n,
                        };
                        let (x, y) = (value(a), value(b));
                        if x > n || y > n {
                            return Err(format!("no message {} (the mailbox has {n})", x.max(y)));
                        }
                        ranges.push(x.min(y) - 1..x.max(y));
                    }
                }
            }
        }
        Ok(Selection::from_ranges(ranges))
    }
}

/// Makes room in a session's list for `more` entries, with a little to
/// spare: growing by doubling would keep up to twice the list for as long
/// as the mailbox stays selected, and growing by exactly what arrived
/// would copy the whole list on every delivery, each copy leaving a hole
/// the next, slightly larger list does not fit (measured: a 3,000-message
/// mailbox in 70 sessions took 6.5 MiB more for one new message).
fn make_room(list: &mut Vec<Entry>, more: usize) {
    let needed = list.len() + more;
    if needed > list.capacity() {
        // A thirty-second of the list and a few: about 3% more memory, and
        // one copy per that many deliveries.
        list.reserve_exact(more + needed / 32 + 4);
    }
}

/// Adds the keywords `known` lacks (keywords compare case-insensitively,
/// RFC 9051 2.3.2); true when it added any.
fn add_new(known: &mut Vec<String>, keywords: &[String]) -> bool {
    let before = known.len();
    for k in keywords {
        if !known.iter().any(|a| a.eq_ignore_ascii_case(k)) {
            known.push(k.clone());
        }
    }
    known.len() > before
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Flags;

    #[test]
    fn an_entry_is_32_bytes() {
        // Held per message per selected session: 10,000 idle sessions on
        // 100-message mailboxes hold 32 MB of these.
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn room_is_made_with_a_little_to_spare() {
        let mut list = Vec::new();
        make_room(&mut list, 3000);
        assert_eq!(list.capacity(), 3000 + 3000 / 32 + 4);
        list.extend((0..3000).map(|uid| Entry {
            uid,
            modseq: 1,
            flags: Flags::empty(),
            keywords: Box::default(),
        }));
        let before = list.capacity();
        make_room(&mut list, 1);
        assert_eq!(list.capacity(), before, "a delivery fits the spare room");
    }

    #[test]
    fn selections_merge() {
        let s = Selection::from_ranges(vec![5..9, 0..2, 1..3, 9..10, 20..20]);
        assert_eq!(s.0, vec![0..3, 5..10]);
        assert!(s.contains(0) && s.contains(9) && !s.contains(3) && !s.contains(10));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 1, 2, 5, 6, 7, 8, 9]);
        assert_eq!(s.len(), 8);
    }
}
