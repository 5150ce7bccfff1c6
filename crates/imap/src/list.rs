//! LIST and LSUB (RFC 9051 6.3.9, LIST-EXTENDED RFC 5258, SPECIAL-USE RFC
//! 6154, LIST-STATUS RFC 5819): which names match a pattern, and with
//! which attributes.

use std::collections::{BTreeMap, BTreeSet};

use store::{DELIMITER, Mailbox};

/// One name to list, with what LIST says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// A mailbox by that name exists (else it is only a parent of others,
    /// or only subscribed).
    pub exists: bool,
    pub has_children: bool,
    pub subscribed: bool,
    pub special_use: Option<&'static str>,
}

/// Every name LIST could show: the mailboxes, parents implied by deeper
/// names, and (for selection SUBSCRIBED) subscribed names.
pub fn entries(mailboxes: &[Mailbox], subscriptions: &[String]) -> Vec<Entry> {
    let mut names: BTreeMap<String, Entry> = BTreeMap::new();
    let subscribed: BTreeSet<&str> = subscriptions.iter().map(String::as_str).collect();
    let mut add = |name: &str, exists: bool, special_use: Option<&'static str>| {
        let e = names.entry(name.to_string()).or_insert(Entry {
            name: name.to_string(),
            exists: false,
            has_children: false,
            subscribed: subscribed.contains(name),
            special_use: None,
        });
        e.exists |= exists;
        if special_use.is_some() {
            e.special_use = special_use;
        }
    };
    for m in mailboxes {
        add(&m.name, true, m.special_use.map(|s| s.as_imap()));
    }
    for s in subscriptions {
        add(s, false, None);
    }
    // Parents of every name, and who has children.
    let all: Vec<String> = names.keys().cloned().collect();
    for name in &all {
        let mut parent = name.as_str();
        while let Some((p, _)) = parent.rsplit_once(DELIMITER) {
            let e = names.entry(p.to_string()).or_insert(Entry {
                name: p.to_string(),
                exists: false,
                has_children: false,
                subscribed: subscribed.contains(p),
                special_use: None,
            });
            e.has_children = true;
            parent = p;
        }
    }
    let mut out: Vec<Entry> = names.into_values().collect();
    // INBOX first, as clients expect; the rest by name.
    out.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    out
}

/// Whether `name` matches a LIST pattern: `*` matches anything, `%` anything
/// but the delimiter. A leading INBOX matches in any case.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (canonical_inbox(pattern), canonical_inbox(name));
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    wildcard(&p, &n)
}

fn canonical_inbox(s: &str) -> String {
    let head = s.split(DELIMITER).next().unwrap_or("");
    if head.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &s[head.len()..])
    } else {
        s.to_string()
    }
}

/// Glob matching with `*` and `%`, in O(pattern x name) without recursion.
fn wildcard(p: &[char], n: &[char]) -> bool {
    // reach[j]: the pattern so far can end having consumed n[..j].
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for &c in p {
        let mut next = vec![false; n.len() + 1];
        match c {
            '*' | '%' => {
                // on: some start i <= j is reached and the wildcard may
                // consume n[i..j] (for %, no delimiter in it).
                let mut on = false;
                for j in 0..=n.len() {
                    if c == '%' && j > 0 && n[j - 1] == DELIMITER {
                        on = false;
                    }
                    on |= reach[j];
                    next[j] = on;
                }
            }
            _ => {
                for j in 0..n.len() {
                    if reach[j] && n[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
    }
    reach[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "Work/Projects"));
        assert!(matches("%", "Work"));
        assert!(!matches("%", "Work/Projects"));
        assert!(matches("Work/%", "Work/Projects"));
        assert!(!matches("Work/%", "Work/Projects/Satchel"));
        assert!(matches("Work/*", "Work/Projects/Satchel"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/*", "INBOX/Sub"));
        assert!(!matches("inbox", "Inbox2"));
        assert!(matches("%/%", "a/b"));
        assert!(!matches("%/%", "a/b/c"));
        assert!(matches("*b%", "a/b"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("P%Junk", "Possible Junk"));
    }
}
