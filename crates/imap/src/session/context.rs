//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267): searches and sorts whose
//! result the client asked to be kept up to date (`RETURN (UPDATE)`),
//! told as `ADDTO` and `REMOVEFROM` until CANCELUPDATE or the mailbox is
//! left. Only the messages that changed are searched again, never the
//! whole mailbox; a sorted result is put in order again from the kept
//! sort keys.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::*;
use crate::sort;

/// Live searches per session; past this a search gets `NOUPDATE`.
const MAX_LIVE: usize = 10;

/// One search kept up to date.
pub(super) struct Live {
    tag: String,
    uid: bool,
    key: SearchKey,
    /// The UIDs in the result as the client knows it.
    hits: BTreeSet<u32>,
    /// For a SORT: its criteria and the result in its order.
    sorted: Option<(Vec<SortCriterion>, Vec<u32>)>,
}

/// How one live search's result changed: (position, UID) pairs, in the
/// order they apply. The position is 0 for a SEARCH (its result has no
/// order); for a SORT, 1-based in the result as the earlier pairs left it.
pub(super) struct Diff {
    tag: String,
    uid: bool,
    removed: Vec<(u32, u32)>,
    added: Vec<(u32, u32)>,
}

impl Session {
    /// Keeps a search just answered up to date (`sorted`: a SORT's
    /// criteria and its result's UIDs in order), or says `NOUPDATE` when
    /// this session has [`MAX_LIVE`] already.
    pub(super) fn keep_live(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        hits: &[u32],
        sorted: Option<(Vec<SortCriterion>, Vec<u32>)>,
    ) {
        // A tag used again replaces the older search.
        self.live.retain(|l| l.tag != tag);
        if self.live.len() >= MAX_LIVE {
            self.line(&format!(
                "* NO [NOUPDATE \"{tag}\"] {MAX_LIVE} searches are kept up to date already; \
                 CANCELUPDATE one first."
            ));
            return;
        }
        self.live.push(Live {
            tag: tag.to_string(),
            uid,
            key: key.clone(),
            hits: hits.iter().copied().collect(),
            sorted,
        });
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
        let gone_set: HashSet<u32> = gone.iter().copied().collect();
        let mut indexes: Vec<usize> = touched
            .iter()
            .filter(|u| !gone_set.contains(u))
            .filter_map(|&u| view.index_of(u))
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut diffs = Vec::new();
        for live in &mut self.live {
            let saved = self.saved.as_deref();
            let found = search::run_on(store.as_ref(), view, &live.key, saved, Some(&indexes));
            let matched: BTreeSet<u32> = match found.await {
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
            if removed.is_empty() && added.is_empty() {
                continue;
            }
            for u in &removed {
                live.hits.remove(u);
            }
            live.hits.extend(&added);
            let (removed, added) = match &mut live.sorted {
                None => (
                    removed.into_iter().map(|u| (0, u)).collect(),
                    added.into_iter().map(|u| (0, u)).collect(),
                ),
                Some((criteria, order)) => {
                    match reorder(store.as_ref(), view, criteria, order, &removed, &added).await {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::debug!("imap: live sort {} not updated: {e}", live.tag);
                            continue;
                        }
                    }
                }
            };
            diffs.push(Diff {
                tag: live.tag.clone(),
                uid: live.uid,
                removed,
                added,
            });
        }
        diffs
    }

    /// Forgets every live search (the mailbox is left).
    pub(super) fn end_live(&mut self) {
        self.live.clear();
    }
}

/// A live SORT's result after `removed` went and `added` came: `order`
/// updated, and the (position, UID) pairs that tell it. Removals go from
/// the last position to the first, so each position is also its place in
/// the list before any went; additions from the first to the last, so
/// each position is its place in the final list.
async fn reorder(
    store: &dyn store::MailStore,
    view: &View,
    criteria: &[SortCriterion],
    order: &mut Vec<u32>,
    removed: &[u32],
    added: &[u32],
) -> store::Result<(Vec<(u32, u32)>, Vec<(u32, u32)>)> {
    let place: HashMap<u32, usize> = order.iter().enumerate().map(|(i, &u)| (u, i)).collect();
    let mut gone: Vec<(u32, u32)> = removed
        .iter()
        .filter_map(|u| place.get(u).map(|&p| (p as u32 + 1, *u)))
        .collect();
    gone.sort_unstable_by(|a, b| b.cmp(a));
    // Sort keys never change while a message keeps its UID: only the
    // remaining and the new messages are put in order again.
    let keys = store
        .sort_keys(
            view.mailbox.id,
            store::SortParts {
                text: true,
                ..Default::default()
            },
        )
        .await?;
    let left: Vec<u32> = order
        .iter()
        .copied()
        .filter(|u| removed.binary_search(u).is_err())
        .chain(added.iter().copied())
        .collect();
    let mut items: Vec<sort::Item> = left
        .iter()
        .filter_map(|&u| {
            let index = view.index_of(u)?;
            let at = keys.binary_search_by_key(&u, |e| e.uid).ok()?;
            Some(sort::Item {
                index,
                entry: &keys[at],
            })
        })
        .collect();
    sort::sort(&mut items, criteria);
    *order = items.iter().map(|i| i.entry.uid).collect();
    let new: HashSet<u32> = added.iter().copied().collect();
    let added: Vec<(u32, u32)> = order
        .iter()
        .enumerate()
        .filter(|(_, u)| new.contains(u))
        .map(|(i, &u)| (i as u32 + 1, u))
        .collect();
    Ok((gone, added))
}

/// The `REMOVEFROM` lines, with sequence numbers as `view` has them now
/// (before the expunges are told).
pub(super) fn removals(out: &mut Vec<u8>, diffs: &[Diff], view: &View) {
    lines(out, diffs, view, "REMOVEFROM", |d| &d.removed);
}

/// The `ADDTO` lines, numbered as `view` has them now (after EXISTS).
pub(super) fn additions(out: &mut Vec<u8>, diffs: &[Diff], view: &View) {
    lines(out, diffs, view, "ADDTO", |d| &d.added);
}

fn lines(
    out: &mut Vec<u8>,
    diffs: &[Diff],
    view: &View,
    what: &str,
    pairs: fn(&Diff) -> &Vec<(u32, u32)>,
) {
    for d in diffs {
        let numbered: Vec<(u32, u32)> = pairs(d)
            .iter()
            .filter_map(|&(p, u)| {
                let n = if d.uid {
                    u
                } else {
                    view.index_of(u)? as u32 + 1
                };
                Some((p, n))
            })
            .collect();
        if numbered.is_empty() {
            continue;
        }
        let uid = if d.uid { " UID" } else { "" };
        let mut line = format!("* ESEARCH (TAG \"{}\"){uid}", d.tag);
        if numbered.iter().all(|&(p, _)| p == 0) {
            // Unsorted: one set at position 0 (RFC 5267 4.3).
            let mut numbers: Vec<u32> = numbered.iter().map(|&(_, n)| n).collect();
            numbers.sort_unstable();
            line.push_str(&format!(" {what} (0 {})", uid_set(&numbers)));
        } else {
            for (p, n) in numbered {
                line.push_str(&format!(" {what} ({p} {n})"));
            }
        }
        line.push_str("\r\n");
        out.extend_from_slice(line.as_bytes());
    }
}
