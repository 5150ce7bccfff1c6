//! SEARCH (RFC 9051 6.4.4): evaluating search keys over the selected
//! mailbox. Body and text keys read and parse each message once; header
//! keys on the fields the index keeps (`mime::sort::INDEXED`) and sent
//! dates use the kept keys; the others use only the index.

use imap_proto::SearchKey;
use imap_proto::parse::days_from_civil;
use mime::search::{Searchable, fold};
use std::collections::HashMap;

use store::{Flags, MailStore, MessageMeta, SortEntry, SortKeys, SortParts};

use crate::view::{Entry, Selection, View};

/// Whether any key in `key`, however nested in AND, OR and NOT, is one
/// `leaf` says yes to.
pub(crate) fn any(key: &SearchKey, leaf: &impl Fn(&SearchKey) -> bool) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(|k| any(k, leaf)),
        SearchKey::Or(a, b) => any(a, leaf) || any(b, leaf),
        SearchKey::Not(k) => any(k, leaf),
        other => leaf(other),
    }
}

/// Whether `key` needs the message itself: the body, or a header field
/// the index does not keep.
fn needs_content(key: &SearchKey) -> bool {
    any(key, &|k| match k {
        SearchKey::Header(field, _) => !indexed(field),
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    })
}

/// Whether `key` reads the kept header keys: indexed fields, the sent
/// date, the thread. A message whose fields were too long to keep is read
/// instead.
fn needs_keys(key: &SearchKey) -> bool {
    any(key, &|k| match k {
        SearchKey::Header(field, _) => indexed(field),
        SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::ThreadId(_) => true,
        _ => false,
    })
}

fn indexed(field: &str) -> bool {
    mime::sort::INDEXED
        .iter()
        .any(|f| f.eq_ignore_ascii_case(field))
}

/// Whether `key` needs the size, dates or body file of the index entry.
fn needs_details(key: &SearchKey) -> bool {
    needs_content(key)
        || any(key, &|k| {
            matches!(
                k,
                SearchKey::Before(_)
                    | SearchKey::On(_)
                    | SearchKey::Since(_)
                    | SearchKey::Larger(_)
                    | SearchKey::Smaller(_)
                    | SearchKey::Older(_)
                    | SearchKey::Younger(_)
                    | SearchKey::EmailId(_)
                    | SearchKey::ThreadId(_)
                    | SearchKey::SavedBefore(_)
                    | SearchKey::SavedOn(_)
                    | SearchKey::SavedSince(_)
            )
        })
}

/// The indexes (into `view.messages`) of the messages that match.
pub async fn run(
    store: &dyn MailStore,
    view: &View,
    key: &SearchKey,
    saved: Option<&[u32]>,
) -> Result<Vec<usize>, String> {
    run_on(store, view, key, saved, None).await
}

/// [`run`] over some messages only (`only`: indexes in ascending order).
pub async fn run_on(
    store: &dyn MailStore,
    view: &View,
    key: &SearchKey,
    saved: Option<&[u32]>,
    only: Option<&[usize]>,
) -> Result<Vec<usize>, String> {
    let content = needs_content(key);
    // Size, dates and body files come from the store's entries, read once.
    let needs = needs_details(key);
    let details: HashMap<u32, MessageMeta> = if needs {
        store
            .messages(view.mailbox.id)
            .await
            .map_err(|e| format!("The mailbox cannot be read: {e}"))?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect()
    } else {
        HashMap::new()
    };
    // Header fields and sent dates from the index, where it has them, in
    // UID order like the view.
    let with_keys = needs_keys(key);
    // Header keys match the kept fields, which a message may lack.
    let fields = any(key, &|k| matches!(k, SearchKey::Header(..)));
    let keys: std::sync::Arc<Vec<SortEntry>> = if with_keys {
        let parts = SortParts {
            fields,
            threads: any(key, &|k| matches!(k, SearchKey::ThreadId(_))),
            ..SortParts::default()
        };
        store
            .sort_keys(view.mailbox.id, parts)
            .await
            .map_err(|e| format!("The mailbox cannot be read: {e}"))?
    } else {
        Default::default()
    };
    let built = Key::build(key, view, saved);
    let mut hits = Vec::new();
    let mut at = 0;
    let indexes: Box<dyn Iterator<Item = usize> + Send> = match only {
        Some(o) => Box::new(o.iter().copied()),
        None => Box::new(0..view.messages.len()),
    };
    for i in indexes {
        let Some(m) = view.messages.get(i) else {
            continue;
        };
        let detail = details.get(&m.uid);
        at = seek(&keys, at, m.uid);
        let kept = keys.get(at).filter(|e| e.uid == m.uid).map(|e| &e.keys);
        // Expunged by another session (this view may not know yet): not a
        // match, whatever the key (NOT LARGER must not find it either).
        if (needs && detail.is_none()) || (with_keys && kept.is_none()) {
            continue;
        }
        // The message itself: for body keys, and for header keys the
        // index could not keep for this one.
        let read = content || (fields && kept.is_none_or(|k| k.fields.is_none()));
        let raw = if read {
            let blob = match detail {
                Some(d) => Some(d.blob.clone()),
                None => store
                    .details(view.mailbox.id, &[m.uid])
                    .await
                    .ok()
                    .and_then(|d| d.into_iter().next())
                    .map(|d| d.blob),
            };
            let Some(blob) = blob else { continue };
            match store.read_blob(&blob).await {
                Ok(raw) => Some(raw),
                // Expunged by another session (this view may not know yet)
                // and its file collected: not a match.
                Err(e) => {
                    tracing::debug!("imap search: message {} unreadable: {e}", m.uid);
                    continue;
                }
            }
        } else {
            None
        };
        let parsed = raw.as_deref().and_then(Searchable::parse);
        let ctx = Ctx {
            view,
            index: i,
            meta: m,
            details: detail,
            text: parsed.as_ref(),
            kept,
        };
        if built.matches(&ctx) {
            hits.push(i);
        }
    }
    Ok(hits)
}

/// The first of `keys` (in UID order) from `at` on whose UID is not
/// below `uid`: galloping, so walking a view and the keys side by side
/// costs one step per entry when both are dense and a few when the view
/// skips (a binary search per message missed the cache on every probe).
pub fn seek(keys: &[SortEntry], at: usize, uid: u32) -> usize {
    let mut step = 1;
    let mut low = at;
    while low < keys.len() && keys[low].uid < uid {
        let next = (low + step).min(keys.len());
        if next == keys.len() || keys[next].uid >= uid {
            return low + 1 + keys[low + 1..next].partition_point(|e| e.uid < uid);
        }
        low = next;
        step *= 2;
    }
    low
}

/// A search key with its sets resolved to message indexes and its strings
/// folded once.
enum Key {
    And(Vec<Key>),
    Or(Box<Key>, Box<Key>),
    Not(Box<Key>),
    /// A sequence or UID set, resolved.
    In(Selection),
    Header(String, String),
    Body(String),
    Text(String),
    Leaf(SearchKey),
}

struct Ctx<'a> {
    view: &'a View,
    index: usize,
    meta: &'a Entry,
    /// The full entry, when the key needs it (gone: no date or size key
    /// matches).
    details: Option<&'a MessageMeta>,
    text: Option<&'a Searchable<'a>>,
    /// The keys the index keeps (header fields, sent day), for keys the
    /// message was not read for.
    kept: Option<&'a SortKeys>,
}

impl Key {
    fn build(key: &SearchKey, view: &View, saved: Option<&[u32]>) -> Key {
        match key {
            // An out-of-range sequence number in SEARCH matches nothing
            // rather than failing the command, as Dovecot does.
            SearchKey::Sequence(s) => Key::In(view.resolve(s, false, saved).unwrap_or_default()),
            SearchKey::Uid(s) => Key::In(view.resolve(s, true, saved).unwrap_or_default()),
            SearchKey::And(keys) => {
                Key::And(keys.iter().map(|k| Key::build(k, view, saved)).collect())
            }
            SearchKey::Or(a, b) => Key::Or(
                Box::new(Key::build(a, view, saved)),
                Box::new(Key::build(b, view, saved)),
            ),
            SearchKey::Not(k) => Key::Not(Box::new(Key::build(k, view, saved))),
            SearchKey::Header(f, n) => Key::Header(f.clone(), folded(n)),
            SearchKey::Body(n) => Key::Body(folded(n)),
            SearchKey::Text(n) => Key::Text(folded(n)),
            other => Key::Leaf(other.clone()),
        }
    }

    fn matches(&self, c: &Ctx) -> bool {
        let m = c.meta;
        match self {
            Key::And(keys) => keys.iter().all(|k| k.matches(c)),
            Key::Or(a, b) => a.matches(c) || b.matches(c),
            Key::Not(k) => !k.matches(c),
            Key::In(set) => set.contains(c.index),
            Key::Header(field, needle) => match (c.text, c.kept.and_then(|k| k.fields.as_ref())) {
                (Some(t), _) => t.header_contains(field, needle),
                (None, Some(fields)) => mime::sort::fields(fields).any(|(name, text)| {
                    name.eq_ignore_ascii_case(field) && (needle.is_empty() || text.contains(needle))
                }),
                (None, None) => false,
            },
            Key::Body(needle) => c.text.is_some_and(|t| t.body_contains(needle)),
            Key::Text(needle) => c.text.is_some_and(|t| t.text_contains(needle)),
            Key::Leaf(leaf) => match leaf {
                SearchKey::All => true,
                SearchKey::ModSeq(n) => m.modseq >= *n,
                SearchKey::Flag(f) => has_flag(m, f),
                SearchKey::Unflag(f) => !has_flag(m, f),
                SearchKey::Recent => c.view.recent.contains(&m.uid),
                SearchKey::New => c.view.recent.contains(&m.uid) && !m.flags.contains(Flags::SEEN),
                SearchKey::Old => !c.view.recent.contains(&m.uid),
                SearchKey::Before(d) => internal_day(c).is_some_and(|day| day < d.0),
                SearchKey::On(d) => internal_day(c).is_some_and(|day| day == d.0),
                SearchKey::Since(d) => internal_day(c).is_some_and(|day| day >= d.0),
                SearchKey::SentBefore(d) => sent_day(c).is_some_and(|s| s < d.0),
                SearchKey::SentOn(d) => sent_day(c).is_some_and(|s| s == d.0),
                SearchKey::SentSince(d) => sent_day(c).is_some_and(|s| s >= d.0),
                SearchKey::Larger(n) => c.details.is_some_and(|d| d.size > *n),
                SearchKey::Older(n) => age(c).is_some_and(|a| a > *n as i64),
                SearchKey::SavedBefore(d) => saved_day(c).is_some_and(|day| day < d.0),
                SearchKey::SavedOn(d) => saved_day(c).is_some_and(|day| day == d.0),
                SearchKey::SavedSince(d) => saved_day(c).is_some_and(|day| day >= d.0),
                SearchKey::SaveDateSupported => true,
                SearchKey::EmailId(id) => c
                    .details
                    .is_some_and(|d| crate::objectid::email_id(&d.blob) == *id),
                SearchKey::ThreadId(id) => c.kept.is_some_and(|k| {
                    crate::objectid::thread_id(k, c.details.map(|d| &d.blob)).as_ref() == Some(id)
                }),
                SearchKey::Younger(n) => age(c).is_some_and(|a| a <= *n as i64),
                SearchKey::Smaller(n) => c.details.is_some_and(|d| d.size < *n),
                // Built into other variants above.
                _ => false,
            },
        }
    }
}

fn has_flag(m: &Entry, f: &str) -> bool {
    match Flags::parse(f) {
        Some(flag) => m.flags.contains(flag),
        None => m.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)),
    }
}

fn folded(needle: &[u8]) -> String {
    fold(&String::from_utf8_lossy(needle))
}

/// The save date's day, in UTC (RFC 8514).
fn saved_day(c: &Ctx) -> Option<i64> {
    Some(c.details?.saved_at.div_euclid(86400))
}

/// Seconds since the internal date (WITHIN, RFC 5032).
fn age(c: &Ctx) -> Option<i64> {
    Some(store::unix_now() - c.details?.internal_date.unix)
}

/// The internal date's day, in the zone it was given in.
fn internal_day(c: &Ctx) -> Option<i64> {
    let d = c.details?.internal_date;
    Some((d.unix + d.tz_minutes as i64 * 60).div_euclid(86400))
}

fn sent_day(c: &Ctx) -> Option<i64> {
    let day = match c.text {
        Some(t) => t.sent_date(),
        None => c.kept.and_then(|k| k.sent_day),
    };
    day.map(|(y, m, d)| days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_finds_the_first_uid_not_below() {
        let keys: Vec<SortEntry> = [2u32, 3, 5, 8, 9, 10, 11, 20, 40]
            .iter()
            .map(|&uid| SortEntry {
                uid,
                internal_date: 0,
                size: 0,
                keys: SortKeys::default(),
            })
            .collect();
        for at in 0..=keys.len() {
            for uid in 0..45 {
                let want = at + keys[at..].partition_point(|e| e.uid < uid);
                assert_eq!(seek(&keys, at, uid), want, "from {at} to {uid}");
            }
        }
        assert_eq!(seek(&[], 0, 7), 0);
    }
}
