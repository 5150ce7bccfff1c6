//! SORT (RFC 5256, RFC 5957, ESORT of RFC 5267) and THREAD (RFC 5256):
//! the search picks the messages, the store's kept keys order them.

use std::fmt::Write;

use super::*;
use crate::{sort, thread};

impl Session {
    pub(super) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<&[SearchReturn]>,
        criteria: &[SortCriterion],
        charset: &str,
        key: &SearchKey,
    ) -> Done {
        let text = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Date | SortKey::Size));
        let parts = store::SortParts {
            text,
            ..Default::default()
        };
        let (entries, matched) = match self.matching_keys(charset, key, parts).await {
            Ok(e) => e,
            Err(done) => return done,
        };
        let Some(view) = self.selected.as_ref() else {
            return bad("No mailbox selected.");
        };
        let mut items: Vec<sort::Item> = matched
            .iter()
            .map(|&(index, at)| sort::Item {
                index,
                entry: &entries[at],
            })
            .collect();
        sort::sort(&mut items, criteria);
        let sorted_uids: Vec<u32> = items.iter().map(|i| i.entry.uid).collect();
        let numbers: Vec<u32> = items
            .iter()
            .map(|i| if uid { i.entry.uid } else { i.index as u32 + 1 })
            .collect();
        // RFC 7162 3.1.5: a MODSEQ in the criteria adds the highest one.
        let highest = uses_modseq(key)
            .then(|| items.iter().map(|i| view.messages[i.index].modseq).max())
            .flatten();
        match ret {
            None => {
                // 100,000 numbers: written in place, not one string each.
                let mut line = String::with_capacity(7 + numbers.len() * 7);
                line.push_str("* SORT");
                for n in &numbers {
                    let _ = write!(line, " {n}");
                }
                if let Some(m) = highest {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.line(&line);
            }
            Some(options) => {
                let options = if options.is_empty() {
                    &[SearchReturn::All][..]
                } else {
                    options
                };
                if options.contains(&SearchReturn::Save) {
                    self.saved = Some(sorted_uids.clone());
                }
                // RFC 5267 3.2: MIN and MAX are the first and last in sort
                // order, ALL the whole list in sort order.
                let mut line = format!("* ESEARCH (TAG \"{tag}\")");
                if uid {
                    line.push_str(" UID");
                }
                for o in options {
                    match (o, numbers.first(), numbers.last()) {
                        (SearchReturn::Min, Some(first), _) => {
                            line.push_str(&format!(" MIN {first}"))
                        }
                        (SearchReturn::Max, _, Some(last)) => {
                            line.push_str(&format!(" MAX {last}"))
                        }
                        (SearchReturn::All, Some(_), _) => {
                            line.push_str(" ALL ");
                            for (i, n) in numbers.iter().enumerate() {
                                let sep = if i == 0 { "" } else { "," };
                                let _ = write!(line, "{sep}{n}");
                            }
                        }
                        (SearchReturn::Count, ..) => {
                            line.push_str(&format!(" COUNT {}", numbers.len()))
                        }
                        (SearchReturn::Partial(low, high), ..) => {
                            super::messages::partial(&mut line, &numbers, *low, *high)
                        }
                        _ => {}
                    }
                }
                if let Some(m) = highest {
                    line.push_str(&format!(" MODSEQ {m}"));
                }
                if options != [SearchReturn::Save] {
                    self.line(&line);
                }
            }
        }
        // CONTEXT=SORT (RFC 5267 4): kept up to date, in its order.
        if ret.is_some_and(|r| r.contains(&SearchReturn::Update)) {
            let order = sorted_uids.clone();
            self.keep_live(
                tag,
                uid,
                key,
                &sorted_uids,
                Some((criteria.to_vec(), order)),
            );
        }
        ok("SORT completed.")
    }

    pub(super) async fn thread(
        &mut self,
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        key: &SearchKey,
    ) -> Done {
        let parts = store::SortParts {
            threads: true,
            ..Default::default()
        };
        let (entries, matched) = match self.matching_keys(charset, key, parts).await {
            Ok(e) => e,
            Err(done) => return done,
        };
        let msgs: Vec<thread::Msg> = matched
            .iter()
            .map(|&(index, at)| thread::Msg {
                index,
                entry: &entries[at],
            })
            .collect();
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&msgs),
            ThreadAlgorithm::Refs => thread::refs(&msgs),
            ThreadAlgorithm::References => thread::references(&msgs),
        };
        let number = |i: usize| {
            if uid {
                msgs[i].entry.uid
            } else {
                msgs[i].index as u32 + 1
            }
        };
        let mut line = String::from("* THREAD ");
        thread::write(&mut line, &threads, &number);
        self.line(line.trim_end());
        ok("THREAD completed.")
    }

    /// The messages `key` matches, with their sort keys from the index:
    /// the mailbox's keys, and (index in the view, index in those keys) of
    /// each match, in sequence order. Messages another session expunged
    /// meanwhile are left out.
    async fn matching_keys(
        &mut self,
        charset: &str,
        key: &SearchKey,
        parts: store::SortParts,
    ) -> Result<(std::sync::Arc<Vec<store::SortEntry>>, Vec<(usize, usize)>), Done> {
        if !matches!(charset, "UTF-8" | "US-ASCII") {
            return Err(no_code(
                "BADCHARSET (UTF-8 US-ASCII)",
                format!("Charset {charset} is not supported."),
            ));
        }
        if uses_modseq(key) {
            self.enabled.insert(capability::Extension::Condstore);
        }
        let store = self.server.store.clone();
        let Some(view) = self.selected.as_ref() else {
            return Err(bad("No mailbox selected."));
        };
        let hits = search::run(store.as_ref(), view, key, self.saved.as_deref())
            .await
            .map_err(no)?;
        let keys = store
            .sort_keys(view.mailbox.id, parts)
            .await
            .map_err(store_failure)?;
        // Both in UID order: one merge, no map of 100,000 entries.
        let mut at = 0;
        let mut matched = Vec::with_capacity(hits.len());
        for i in hits {
            let uid = view.messages[i].uid;
            at = crate::search::seek(&keys, at, uid);
            if keys.get(at).is_some_and(|e| e.uid == uid) {
                matched.push((i, at));
            }
        }
        Ok((keys, matched))
    }
}
