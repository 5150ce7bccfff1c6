//! CONTEXT=SEARCH (RFC 5267): searches whose result the client asked to
//! be kept up to date (`RETURN (UPDATE)`), told as `ADDTO` and
//! `REMOVEFROM` until CANCELUPDATE or the mailbox is left. Only the
//! messages that changed are searched again, never the whole mailbox.

use std::collections::BTreeSet;

use super::*;

/// Live searches per session; past this a search gets `NOUPDATE`.
pub(super) const MAX_LIVE: usize = 10;

/// One search kept up to date.
pub(super) struct Live {
    tag: String,
    uid: bool,
    key: SearchKey,
    /// The UIDs in the result as the client knows it.
    hits: BTreeSet<u32>,
}

/// How one live search's result changed, as UIDs.
pub(super) struct Diff {
    tag: String,
    uid: bool,
    removed: Vec<u32>,
    added: Vec<u32>,
}

impl Session {
    /// Keeps a search just answered up to date; false when this session
    /// has [`MAX_LIVE`] already (the caller says `NOUPDATE`).
    pub(super) fn keep_live(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        hits: &[u32],
    ) -> bool {
        // A tag used again replaces the older search (RFC 5267 4.1 lets
        // the client reuse tags only after cancelling; be lenient).
        self.live.retain(|l| l.tag != tag);
        if self.live.len() >= MAX_LIVE {
            return false;
        }
        self.live.push(Live {
            tag: tag.to_string(),
            uid,
            key: key.clone(),
            hits: hits.iter().copied().collect(),
        });
        true
    }

    /// CANCELUPDATE (RFC 5267 4.3).
    pub(super) fn cancel_update(&mut self, tags: &[String]) -> Done {
        let known = tags.iter().all(|t| self.live.iter().any(|l| &l.tag == t));
        if !known {
            return no("No search with that tag is being updated.");
        }
        self.live.retain(|l| !tags.contains(&l.tag));
        ok("Updates cancelled.")
    }

    /// Searches the `touched` messages (new or with changed flags) again
    /// for each live search, and drops the `gone` ones (expunged): what
    /// each result gained and lost. The results are updated.
    pub(super) async fn live_diffs(&mut self, touched: &[u32], gone: &[u32]) -> Vec<Diff> {
        if self.live.is_empty() || (touched.is_empty() && gone.is_empty()) {
            return Vec::new();
        }
        let store = self.server.store.clone();
        let Some(view) = self.selected.as_ref() else {
            return Vec::new();
        };
        let mut indexes: Vec<usize> = touched
            .iter()
            .filter(|u| !gone.contains(u))
            .filter_map(|&u| view.index_of(u))
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut diffs = Vec::new();
        for live in &mut self.live {
            let matched: BTreeSet<u32> = match search::run_on(
                store.as_ref(),
                view,
                &live.key,
                self.saved.as_deref(),
                Some(&indexes),
            )
            .await
            {
                Ok(m) => m.iter().map(|&i| view.messages[i].uid).collect(),
                // Unreadable now: left as the client knows it.
                Err(e) => {
                    tracing::debug!("imap: live search {} not updated: {e}", live.tag);
                    continue;
                }
            };
            let mut removed: Vec<u32> = gone
                .iter()
                .copied()
                .filter(|u| live.hits.contains(u))
                .collect();
            let mut added = Vec::new();
            for &i in &indexes {
                let u = view.messages[i].uid;
                match (live.hits.contains(&u), matched.contains(&u)) {
                    (true, false) => removed.push(u),
                    (false, true) => added.push(u),
                    _ => {}
                }
            }
            removed.sort_unstable();
            removed.dedup();
            for u in &removed {
                live.hits.remove(u);
            }
            live.hits.extend(&added);
            if !removed.is_empty() || !added.is_empty() {
                diffs.push(Diff {
                    tag: live.tag.clone(),
                    uid: live.uid,
                    removed,
                    added,
                });
            }
        }
        diffs
    }

    /// Forgets every live search (the mailbox is left).
    pub(super) fn end_live(&mut self) {
        self.live.clear();
    }
}

/// `* ESEARCH (TAG ..) [UID] REMOVEFROM (0 set)` lines: with sequence
/// numbers as `view` has them now (before the expunges are told). The
/// position is 0: an unsorted result has no order (RFC 5267 4.1).
pub(super) fn removals(out: &mut Vec<u8>, diffs: &[Diff], view: &View) {
    lines(out, diffs, view, "REMOVEFROM", |d| &d.removed);
}

/// The `ADDTO` lines, numbered as `view` has them now (after EXISTS).
pub(super) fn additions(out: &mut Vec<u8>, diffs: &[Diff], view: &View) {
    lines(out, diffs, view, "ADDTO", |d| &d.added);
}

fn lines(out: &mut Vec<u8>, diffs: &[Diff], view: &View, what: &str, uids: fn(&Diff) -> &Vec<u32>) {
    for d in diffs {
        let numbers: Vec<u32> = if d.uid {
            uids(d).clone()
        } else {
            uids(d)
                .iter()
                .filter_map(|&u| view.index_of(u).map(|i| i as u32 + 1))
                .collect()
        };
        if numbers.is_empty() {
            continue;
        }
        let uid = if d.uid { " UID" } else { "" };
        out.extend_from_slice(
            format!(
                "* ESEARCH (TAG \"{}\"){uid} {what} (0 {})\r\n",
                d.tag,
                uid_set(&numbers)
            )
            .as_bytes(),
        );
    }
}
