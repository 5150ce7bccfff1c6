//! The selected mailbox as one session sees it: message sequence numbers,
//! flags as last announced, \Recent, and expunges not yet announced.
//! Other sessions' changes come in through `MailStore::changes_since`; what
//! may be told to the client when is RFC 9051 7.5.1's business (the caller
//! says whether EXPUNGE may be sent now).

use std::collections::HashSet;

use imap_proto::{SeqNum, SequenceSet};
use store::{MailStore, Mailbox, MessageMeta};

pub struct View {
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// In sequence order (which is UID order).
    pub messages: Vec<MessageMeta>,
    /// The MODSEQ up to which this view has taken in changes.
    pub modseq: u64,
    /// UIDs that are \Recent in this session.
    pub recent: HashSet<u32>,
    /// UIDs gone from the store but still in `messages`, to be announced.
    pub pending_expunge: Vec<u32>,
}

/// What changed when the view caught up with the store.
#[derive(Default)]
pub struct Updates {
    /// Sequence numbers whose flags changed.
    pub flags: Vec<usize>,
    pub new_messages: usize,
}

impl View {
    pub async fn open(
        store: &dyn MailStore,
        mailbox: Mailbox,
        read_only: bool,
    ) -> store::Result<View> {
        let messages = store.messages(mailbox.id).await?;
        let modseq = mailbox.highestmodseq;
        let mut view = View {
            mailbox,
            read_only,
            messages,
            modseq,
            recent: HashSet::new(),
            pending_expunge: Vec::new(),
        };
        if !read_only {
            view.claim_recent(store).await?;
        }
        Ok(view)
    }

    async fn claim_recent(&mut self, store: &dyn MailStore) -> store::Result<()> {
        let first = store.claim_recent(self.mailbox.id).await?;
        for m in self.messages.iter().rev() {
            if m.uid < first {
                break;
            }
            self.recent.insert(m.uid);
        }
        Ok(())
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
    pub async fn catch_up(&mut self, store: &dyn MailStore) -> store::Result<Updates> {
        let delta = store.changes_since(self.mailbox.id, self.modseq).await?;
        let mut updates = Updates::default();
        let last_uid = self.messages.last().map_or(0, |m| m.uid);
        let gone: HashSet<u32> = delta.expunged.iter().copied().collect();
        for uid in &delta.expunged {
            if self.index_of(*uid).is_some() && !self.pending_expunge.contains(uid) {
                self.pending_expunge.push(*uid);
            }
        }
        for m in delta.changed {
            if gone.contains(&m.uid) {
                continue;
            }
            match self.index_of(m.uid) {
                Some(i) => {
                    let old = &self.messages[i];
                    if old.flags != m.flags || old.keywords != m.keywords {
                        updates.flags.push(i + 1);
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
        if updates.new_messages > 0 && !self.read_only {
            self.claim_recent(store).await?;
        }
        Ok(updates)
    }

    /// Removes the pending expunges from the view and returns the sequence
    /// numbers to announce, in the order to announce them (each one counted
    /// after the ones before are gone, as Dovecot sends them).
    pub fn take_expunges(&mut self) -> Vec<usize> {
        let mut gone = std::mem::take(&mut self.pending_expunge);
        gone.sort_unstable();
        let mut seqs = Vec::with_capacity(gone.len());
        for uid in gone {
            if let Some(i) = self.index_of(uid) {
                self.messages.remove(i);
                self.recent.remove(&uid);
                seqs.push(i + 1);
            }
        }
        seqs
    }

    /// Removes messages this session expunged itself; returns their
    /// sequence numbers in announcement order.
    pub fn remove(&mut self, uids: &[u32]) -> Vec<usize> {
        let present: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| self.index_of(*u).is_some())
            .collect();
        self.pending_expunge.extend(present);
        self.take_expunges()
    }

    /// The messages a sequence set names, as indexes into `messages`.
    /// `saved` is the SEARCHRES result, as UIDs. Sequence numbers beyond
    /// the mailbox are an error (RFC 9051 6.4.9); UIDs that are not there
    /// are skipped.
    pub fn resolve(
        &self,
        set: &SequenceSet,
        uid: bool,
        saved: Option<&[u32]>,
    ) -> Result<Vec<usize>, String> {
        let mut out: Vec<usize> = Vec::new();
        match set {
            SequenceSet::Saved => {
                for u in saved.unwrap_or_default() {
                    if let Some(i) = self.index_of(*u) {
                        out.push(i);
                    }
                }
            }
            SequenceSet::Ranges(ranges) => {
                let n = self.messages.len();
                for (a, b) in ranges {
                    if uid {
                        let max = self.messages.last().map_or(0, |m| m.uid);
                        let value = |s: &SeqNum| match s {
                            SeqNum::Value(v) => *v,
                            SeqNum::Last => max,
                        };
                        let (lo, hi) = {
                            let (x, y) = (value(a), value(b));
                            (x.min(y), x.max(y))
                        };
                        let start = self.messages.partition_point(|m| m.uid < lo);
                        let end = self.messages.partition_point(|m| m.uid <= hi);
                        out.extend(start..end);
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
                        out.extend(x.min(y) - 1..x.max(y));
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}
