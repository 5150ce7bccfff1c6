//! Which messages a list page shows, in which order: the search form's
//! filters (from, to, subject, text, a date range, has an attachment) and
//! the sort (date, from, subject, size), then the page. A search, and a
//! sort by sender or subject, read the mailbox's messages in batches (as
//! IMAP SEARCH does today); a plain list by date reads only its page.

use mime::search::{Searchable, fold};
use serde::Deserialize;
use store::{Mailbox, MessageMeta};

use crate::Web;
use crate::message::{self, Summary};
use crate::pages::PageError;

/// Bodies read per trip to the store during a search.
const BATCH: usize = 256;

/// The list page's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    pub page: Option<usize>,
    #[serde(default)]
    pub q: String,
    /// "all" (header fields and text), "from", "to", "subject", "text".
    #[serde(default)]
    pub field: String,
    /// `YYYY-MM-DD`, arrival on or after.
    #[serde(default)]
    pub since: String,
    /// `YYYY-MM-DD`, arrival before.
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub attachment: String,
    /// "arrival" (the default: UID order), "date" (the internal date),
    /// "from", "subject", "size".
    #[serde(default)]
    pub sort: String,
    /// "asc" or "desc" (the default).
    #[serde(default)]
    pub order: String,
}

impl ListQuery {
    pub fn searching(&self) -> bool {
        !self.q.trim().is_empty()
            || self.attachment == "1"
            || !self.since.is_empty()
            || !self.before.is_empty()
    }

    /// The query without its page, for the paging links.
    pub fn without_page(&self) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("field", self.field.as_str()),
            ("since", self.since.as_str()),
            ("before", self.before.as_str()),
            ("attachment", self.attachment.as_str()),
            ("sort", self.sort.as_str()),
            ("order", self.order.as_str()),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A page of the mailbox's messages as the query asks, with their list
/// fields, and how many match in all.
pub async fn select(
    web: &Web,
    mailbox: &Mailbox,
    query: &ListQuery,
    page: usize,
    size: usize,
) -> Result<(Vec<(MessageMeta, Summary)>, usize), PageError> {
    let store = &web.inner.store;
    if !query.searching() && matches!(query.sort.as_str(), "" | "arrival") && query.order != "asc" {
        // The usual list: newest arrivals first, one page read.
        let (page_of, total) = store
            .newest(mailbox.id, page.saturating_sub(1) * size, size)
            .await?;
        let blobs: Vec<_> = page_of.iter().map(|m| m.blob.clone()).collect();
        let bodies = store.read_blobs(&blobs).await?;
        let shown = page_of
            .into_iter()
            .zip(bodies)
            .map(|(m, body)| {
                let summary = body.map(|b| message::summary(&b)).unwrap_or_default();
                (m, summary)
            })
            .collect();
        return Ok((shown, total as usize));
    }
    let mut messages = store.messages(mailbox.id).await?;
    let since = day(&query.since);
    let before = day(&query.before);
    messages.retain(|m| {
        since.is_none_or(|t| m.internal_date.unix >= t)
            && before.is_none_or(|t| m.internal_date.unix < t)
    });
    let needle = fold(query.q.trim());
    let by_header = matches!(query.sort.as_str(), "from" | "subject");
    let read_all = !needle.is_empty() || query.attachment == "1" || by_header;
    let mut chosen: Vec<(MessageMeta, Option<Summary>)> = Vec::new();
    if read_all {
        for batch in messages.chunks(BATCH) {
            let blobs: Vec<_> = batch.iter().map(|m| m.blob.clone()).collect();
            let bodies = store.read_blobs(&blobs).await?;
            for (m, body) in batch.iter().zip(bodies) {
                let Ok(raw) = body else { continue };
                if !matches(&raw, &needle, &query.field, query.attachment == "1") {
                    continue;
                }
                let summary = by_header.then(|| message::summary(&raw));
                chosen.push((m.clone(), summary));
            }
        }
    } else {
        chosen = messages.into_iter().map(|m| (m, None)).collect();
    }
    let key = |s: &Option<Summary>, f: fn(&Summary) -> &str| {
        s.as_ref().map(|s| fold(f(s))).unwrap_or_default()
    };
    match query.sort.as_str() {
        "size" => chosen.sort_by_key(|(m, _)| (m.size, m.uid)),
        "date" => chosen.sort_by_key(|(m, _)| (m.internal_date.unix, m.uid)),
        "from" => chosen.sort_by_cached_key(|(m, s)| (key(s, |s| &s.from), m.uid)),
        "subject" => {
            chosen.sort_by_cached_key(|(m, s)| (key(s, |s| base_subject(&s.subject)), m.uid))
        }
        // Arrival: UID order.
        _ => chosen.sort_by_key(|(m, _)| m.uid),
    }
    // Newest, largest, Z first unless asked otherwise; A first for names.
    let ascending = match query.order.as_str() {
        "asc" => true,
        "desc" => false,
        _ => by_header,
    };
    if !ascending {
        chosen.reverse();
    }
    let total = chosen.len();
    let mut shown: Vec<(MessageMeta, Option<Summary>)> = chosen
        .into_iter()
        .skip(page.saturating_sub(1) * size)
        .take(size)
        .collect();
    let missing: Vec<_> = shown
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(m, _)| m.blob.clone())
        .collect();
    let mut bodies = store.read_blobs(&missing).await?.into_iter();
    for (_, s) in shown.iter_mut().filter(|(_, s)| s.is_none()) {
        let body = bodies.next();
        *s = Some(match body {
            Some(Ok(raw)) => message::summary(&raw),
            _ => Summary::default(),
        });
    }
    Ok((
        shown
            .into_iter()
            .map(|(m, s)| (m, s.unwrap_or_default()))
            .collect(),
        total,
    ))
}

fn matches(raw: &[u8], needle: &str, field: &str, attachment: bool) -> bool {
    let Some(m) = Searchable::parse(raw) else {
        return needle.is_empty() && !attachment;
    };
    if attachment && !m.has_attachment() {
        return false;
    }
    if needle.is_empty() {
        return true;
    }
    match field {
        "from" => m.header_contains("from", needle),
        "to" => m.header_contains("to", needle) || m.header_contains("cc", needle),
        "subject" => m.header_contains("subject", needle),
        "text" => m.body_contains(needle),
        _ => m.text_contains(needle),
    }
}

/// The subject without `Re:`/`Fwd:` prefixes, for sorting (RFC 5256's
/// base subject, simplified).
fn base_subject(s: &str) -> &str {
    let mut s = s.trim();
    loop {
        let lower = s.get(..4).map(str::to_ascii_lowercase);
        let cut = match lower.as_deref() {
            Some(p) if p.starts_with("re:") => 3,
            Some("fwd:") => 4,
            Some(p) if p.starts_with("fw:") => 3,
            _ => return s,
        };
        s = s[cut..].trim_start();
    }
}

/// Midnight UTC of `YYYY-MM-DD`, in Unix seconds.
fn day(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s.trim(), &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_lose_their_prefixes() {
        assert_eq!(base_subject("Re: RE: Fwd: hello"), "hello");
        assert_eq!(base_subject("Fw: x"), "x");
        assert_eq!(base_subject("Regards"), "Regards");
        assert_eq!(base_subject(""), "");
    }

    #[test]
    fn dates_and_the_query_string() {
        assert_eq!(day("2024-01-02"), Some(1_704_153_600));
        assert_eq!(day("yesterday"), None);
        let q = ListQuery {
            page: Some(3),
            q: "a b&c".into(),
            sort: "from".into(),
            ..ListQuery::default()
        };
        assert_eq!(q.without_page(), "q=a%20b%26c&sort=from");
        assert!(q.searching());
        assert!(!ListQuery::default().searching());
    }
}
