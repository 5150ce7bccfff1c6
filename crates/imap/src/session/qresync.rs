//! QRESYNC (RFC 7162 3.2): what a returning client missed, told at SELECT
//! or by UID FETCH (VANISHED), and expunges told as VANISHED once enabled.

use super::*;

impl Session {
    /// The resync of SELECT/EXAMINE (QRESYNC ...) (RFC 7162 3.2.5.1):
    /// `* VANISHED (EARLIER)` for what went after the client's MODSEQ, then
    /// `* FETCH (UID FLAGS MODSEQ)` for what changed or arrived, both
    /// within its known UIDs. A different UIDVALIDITY means the client's
    /// cache is void: nothing more is said.
    pub(super) async fn resync_lines(&mut self, q: &Qresync) -> store::Result<()> {
        let store = self.server.store.clone();
        let rev2 = self.rev2();
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        if q.uidvalidity != view.mailbox.uidvalidity {
            return Ok(());
        }
        let within = q.known_uids.as_ref().map(|set| uid_ranges(set, view));
        let gone = vanished(store.as_ref(), view, q.modseq, within.as_deref()).await?;
        let mut out = Vec::new();
        if !gone.is_empty() {
            out.extend_from_slice(
                format!("* VANISHED (EARLIER) {}\r\n", ranges_text(&gone)).as_bytes(),
            );
        }
        for (i, m) in view.messages.iter().enumerate() {
            if m.modseq <= q.modseq || within.as_deref().is_some_and(|w| !contains(w, m.uid)) {
                continue;
            }
            out.extend_from_slice(format!("* {} FETCH (UID {} FLAGS ", i + 1, m.uid).as_bytes());
            response::flag_list(
                &mut out,
                fetch::flags(m, !rev2 && view.recent.contains(&m.uid)),
            );
            out.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
        }
        self.out.extend_from_slice(&out);
        Ok(())
    }

    /// `* VANISHED (EARLIER)` for UID FETCH ... (CHANGEDSINCE n VANISHED)
    /// (RFC 7162 3.2.6): the UIDs of `set` that went after `since`.
    pub(super) async fn vanished_lines(
        &mut self,
        set: &SequenceSet,
        since: u64,
    ) -> store::Result<()> {
        let store = self.server.store.clone();
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        let within = uid_ranges(set, view);
        let gone = vanished(store.as_ref(), view, since, Some(&within)).await?;
        if !gone.is_empty() {
            let line = format!("* VANISHED (EARLIER) {}", ranges_text(&gone));
            self.line(&line);
        }
        Ok(())
    }
}

/// Messages gone from the view, told as `* n EXPUNGE` each or, once
/// QRESYNC is on, in one `* VANISHED` of their UIDs (RFC 7162 3.2.10).
pub(super) fn expunge_lines(out: &mut Vec<u8>, gone: &[(usize, u32)], qresync: bool) {
    if gone.is_empty() {
        return;
    }
    if qresync {
        let uids: Vec<u32> = gone.iter().map(|g| g.1).collect();
        out.extend_from_slice(format!("* VANISHED {}\r\n", uid_set(&uids)).as_bytes());
    } else {
        for (seq, _) in gone {
            out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
        }
    }
}

/// The UIDs, as sorted disjoint ranges, that went from the mailbox after
/// MODSEQ `since`, within `within` when given. Those the view still holds
/// are left out: they are told as VANISHED when the view lets them go.
/// When the store's records from then were pruned, every UID below
/// UIDNEXT the mailbox lacks is in the answer (RFC 7162 3.2.5.2 allows a
/// larger answer, never a wrong one).
async fn vanished(
    store: &dyn store::MailStore,
    view: &View,
    since: u64,
    within: Option<&[(u32, u32)]>,
) -> store::Result<Vec<(u32, u32)>> {
    let delta = store.changes_since(view.mailbox.id, since, None).await?;
    let uidnext = view.mailbox.uidnext.max(delta.uidnext);
    let everything = [(1, uidnext.saturating_sub(1))];
    let within = within.unwrap_or(if uidnext > 1 { &everything } else { &[] });
    if delta.expunged_complete {
        let uids: Vec<u32> = delta
            .expunged
            .into_iter()
            .filter(|&u| contains(within, u) && view.index_of(u).is_none())
            .collect();
        return Ok(to_ranges(&uids));
    }
    // Every UID of `within` below UIDNEXT that the mailbox lacks now: the
    // gaps between the UIDs there, walked range by range.
    let mut there: Vec<u32> = store
        .states(view.mailbox.id)
        .await?
        .iter()
        .map(|m| m.uid)
        .chain(view.messages.iter().map(|m| m.uid))
        .collect();
    there.sort_unstable();
    there.dedup();
    let mut gone = Vec::new();
    for &(lo, hi) in within {
        let hi = hi.min(uidnext.saturating_sub(1));
        if lo > hi {
            continue;
        }
        let mut next = lo;
        let first = there.partition_point(|&u| u < lo);
        for &u in there[first..].iter().take_while(|&&u| u <= hi) {
            if u > next {
                gone.push((next, u - 1));
            }
            next = u.saturating_add(1);
        }
        if next <= hi {
            gone.push((next, hi));
        }
    }
    Ok(gone)
}

/// A UID set as sorted, merged ranges; `*` is the highest UID the mailbox
/// has given out (so expunged UIDs above its last message count too).
fn uid_ranges(set: &SequenceSet, view: &View) -> Vec<(u32, u32)> {
    let top = view.mailbox.uidnext.saturating_sub(1).max(1);
    let value = |s: &SeqNum| match s {
        SeqNum::Value(v) => *v,
        SeqNum::Last => top,
    };
    let mut ranges: Vec<(u32, u32)> = match set {
        SequenceSet::Ranges(list) => list
            .iter()
            .map(|(a, b)| {
                let (x, y) = (value(a), value(b));
                (x.min(y), x.max(y))
            })
            .collect(),
        SequenceSet::Saved => Vec::new(),
    };
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

fn contains(ranges: &[(u32, u32)], uid: u32) -> bool {
    let i = ranges.partition_point(|r| r.1 < uid);
    ranges.get(i).is_some_and(|r| r.0 <= uid)
}

/// Sorted UIDs as ranges of consecutive ones.
fn to_ranges(uids: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match out.last_mut() {
            Some(last) if u == last.1.saturating_add(1) => last.1 = u,
            _ => out.push((u, u)),
        }
    }
    out
}

/// `1:3,5` from ranges.
fn ranges_text(ranges: &[(u32, u32)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_answer_membership() {
        assert_eq!(to_ranges(&[]), vec![]);
        let r = to_ranges(&[1, 2, 3, 7, 9, 10]);
        assert_eq!(r, vec![(1, 3), (7, 7), (9, 10)]);
        assert_eq!(ranges_text(&r), "1:3,7,9:10");
        assert!(contains(&r, 2) && contains(&r, 7) && contains(&r, 10));
        assert!(!contains(&r, 4) && !contains(&r, 8) && !contains(&r, 11) && !contains(&r, 0));
    }
}
