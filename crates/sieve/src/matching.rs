//! Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and
//! match types (:is, :contains, :matches with its wildcards and captures,
//! and the relational :value and :count of RFC 5231).

use std::cmp::Ordering;

use crate::compile::{Comparator, Match, MatchKind, Relation};

/// Whether any of `values` matches any of `keys`. For :matches, the
/// wildcards' captures of the first success go into `captures` (`${0}` is
/// the whole value, RFC 5229 3.2).
pub fn any(
    how: Match,
    values: &[String],
    keys: &[String],
    captures: &mut Option<Vec<String>>,
) -> bool {
    match how.kind {
        MatchKind::Count(relation) => {
            let count = values.len().to_string();
            keys.iter()
                .any(|k| relation.holds(order(how.comparator, &count, k)))
        }
        MatchKind::Value(relation) => values.iter().any(|v| {
            keys.iter()
                .any(|k| relation.holds(order(how.comparator, v, k)))
        }),
        MatchKind::Is => values
            .iter()
            .any(|v| keys.iter().any(|k| equal(how.comparator, v, k))),
        MatchKind::Contains => values
            .iter()
            .any(|v| keys.iter().any(|k| contains(how.comparator, v, k))),
        MatchKind::Matches => {
            for v in values {
                for k in keys {
                    if let Some(mut found) = wildcard(how.comparator, v, k) {
                        found.insert(0, v.clone());
                        *captures = Some(found);
                        return true;
                    }
                }
            }
            false
        }
    }
}

impl Relation {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Relation::Gt => o == Ordering::Greater,
            Relation::Ge => o != Ordering::Less,
            Relation::Lt => o == Ordering::Less,
            Relation::Le => o != Ordering::Greater,
            Relation::Eq => o == Ordering::Equal,
            Relation::Ne => o != Ordering::Equal,
        }
    }
}

fn equal(c: Comparator, a: &str, b: &str) -> bool {
    order(c, a, b) == Ordering::Equal
}

/// How `a` sorts against `b` under the comparator.
fn order(c: Comparator, a: &str, b: &str) -> Ordering {
    match c {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        // RFC 4790 9.2: ordered as if upper case ("_" sorts after "A").
        Comparator::AsciiCasemap => a
            .bytes()
            .map(|x| x.to_ascii_uppercase())
            .cmp(b.bytes().map(|x| x.to_ascii_uppercase())),
        Comparator::AsciiNumeric => numeric(a).cmp(&numeric(b)),
    }
}

/// i;ascii-numeric: the leading digits as a number; a string that does
/// not start with a digit is positive infinity (None sorts above all).
fn numeric(s: &str) -> NumericValue {
    let digits: &str = &s[..s.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return NumericValue::Infinity;
    }
    // Compare as digit strings without leading zeros: any length works.
    let trimmed = digits.trim_start_matches('0');
    NumericValue::Finite(trimmed.len(), trimmed.to_string())
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum NumericValue {
    /// (number of digits, digits): longer is larger, then digit by digit.
    Finite(usize, String),
    Infinity,
}

fn contains(c: Comparator, value: &str, key: &str) -> bool {
    match c {
        Comparator::Octet => value.contains(key),
        _ => value
            .to_ascii_lowercase()
            .contains(&key.to_ascii_lowercase()),
    }
}

fn same(c: Comparator, a: char, b: char) -> bool {
    match c {
        Comparator::Octet => a == b,
        _ => a.eq_ignore_ascii_case(&b),
    }
}

/// One element of a :matches key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Glob {
    Any,
    One,
    Char(char),
}

fn glob(key: &str) -> Vec<Glob> {
    let mut out = Vec::new();
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Glob::Any,
            '?' => Glob::One,
            '\\' => match chars.next() {
                Some(next) => Glob::Char(next),
                None => Glob::Char('\\'),
            },
            c => Glob::Char(c),
        });
    }
    out
}

/// Matches `value` against the wildcard `key`; on success, what each `*`
/// and `?` took, in order. Each `*` takes as little as it can, the last
/// the rest (RFC 5229's example: "[*] *" on "[acme] [fwd] hi" gives
/// "acme" and "[fwd] hi"). Time is at most value length times key length.
fn wildcard(c: Comparator, value: &str, key: &str) -> Option<Vec<String>> {
    let p = glob(key);
    let t: Vec<char> = value.chars().collect();
    // For each wildcard in order: its span in `t`.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let (mut pi, mut ti) = (0, 0);
    // The last `*`: its index in `p`, where its span starts, and how many
    // spans were recorded before it.
    let mut star: Option<(usize, usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Glob::Any) => {
                star = Some((pi, ti, spans.len()));
                spans.push((ti, ti));
                pi += 1;
                continue;
            }
            Some(Glob::One) => {
                spans.push((ti, ti + 1));
                pi += 1;
                ti += 1;
                continue;
            }
            Some(Glob::Char(ch)) if same(c, *ch, t[ti]) => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: the last `*` takes one more character, and the rest
        // of the key is tried again after it.
        let (sp, start, before) = star?;
        let taken = spans[before].1 + 1;
        if taken > t.len() {
            return None;
        }
        spans.truncate(before);
        spans.push((start, taken));
        pi = sp + 1;
        ti = taken;
    }
    // The value is used up: only `*`s may be left of the key.
    while let Some(Glob::Any) = p.get(pi) {
        spans.push((ti, ti));
        pi += 1;
    }
    (pi == p.len()).then(|| {
        spans
            .iter()
            .map(|&(a, b)| t[a..b].iter().collect())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchKind, comparator: Comparator) -> Match {
        Match { comparator, kind }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn is_and_contains_by_comparator() {
        let mut cap = None;
        let casemap = Comparator::AsciiCasemap;
        assert!(any(
            m(MatchKind::Is, casemap),
            &s(&["Hello"]),
            &s(&["hELLO"]),
            &mut cap
        ));
        assert!(!any(
            m(MatchKind::Is, Comparator::Octet),
            &s(&["Hello"]),
            &s(&["hello"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Contains, casemap),
            &s(&["Frobnitz"]),
            &s(&["OBN"]),
            &mut cap
        ));
        assert!(!any(
            m(MatchKind::Contains, Comparator::Octet),
            &s(&["Frobnitz"]),
            &s(&["OBN"]),
            &mut cap
        ));
        // Non-ASCII letters are not folded by i;ascii-casemap.
        assert!(!any(
            m(MatchKind::Is, casemap),
            &s(&["É"]),
            &s(&["é"]),
            &mut cap
        ));
        assert!(cap.is_none());
    }

    #[test]
    fn numeric_and_relational() {
        let mut cap = None;
        let num = Comparator::AsciiNumeric;
        assert!(any(
            m(MatchKind::Value(Relation::Gt), num),
            &s(&["10"]),
            &s(&["9"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Value(Relation::Eq), num),
            &s(&["007x"]),
            &s(&["7"]),
            &mut cap
        ));
        // No leading digit: positive infinity, equal to itself.
        assert!(any(
            m(MatchKind::Value(Relation::Gt), num),
            &s(&["abc"]),
            &s(&["99999999999999999999999"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Value(Relation::Eq), num),
            &s(&["abc"]),
            &s(&["xyz"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Count(Relation::Ge), num),
            &s(&["a", "b", "c"]),
            &s(&["3"]),
            &mut cap
        ));
        assert!(!any(
            m(MatchKind::Count(Relation::Gt), num),
            &s(&["a", "b", "c"]),
            &s(&["3"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Count(Relation::Eq), num),
            &[],
            &s(&["0"]),
            &mut cap
        ));
        // RFC 5231's casemap example: "Fred" :value "gt" "fred" is false.
        assert!(!any(
            m(MatchKind::Value(Relation::Gt), Comparator::AsciiCasemap),
            &s(&["Fred"]),
            &s(&["fred"]),
            &mut cap
        ));
        assert!(any(
            m(MatchKind::Value(Relation::Lt), Comparator::AsciiCasemap),
            &s(&["abc"]),
            &s(&["ABD"]),
            &mut cap
        ));
        // Upper case is the order: "_" (0x5F) sorts after "A" (0x41).
        assert!(any(
            m(MatchKind::Value(Relation::Gt), Comparator::AsciiCasemap),
            &s(&["_"]),
            &s(&["a"]),
            &mut cap
        ));
    }

    #[test]
    fn wildcards_and_what_they_capture() {
        let c = Comparator::AsciiCasemap;
        assert_eq!(
            wildcard(c, "[acme-users] [fwd] version 1.0 is out", "[*] *"),
            Some(s(&["acme-users", "[fwd] version 1.0 is out"]))
        );
        assert_eq!(wildcard(c, "abc", "a?c"), Some(s(&["b"])));
        assert_eq!(wildcard(c, "abc", "*"), Some(s(&["abc"])));
        assert_eq!(wildcard(c, "", "*"), Some(s(&[""])));
        assert_eq!(wildcard(c, "", "?"), None);
        assert_eq!(wildcard(c, "a*c", "a\\*c"), Some(vec![]));
        assert_eq!(wildcard(c, "abc", "a\\*c"), None);
        assert_eq!(wildcard(c, "ABC", "a*"), Some(s(&["BC"])));
        assert_eq!(wildcard(Comparator::Octet, "ABC", "a*"), None);
        assert_eq!(wildcard(c, "xaybzc", "*a*b*c"), Some(s(&["x", "y", "z"])));
        assert_eq!(
            wildcard(c, "xaybzc", "*a*b*c*"),
            Some(s(&["x", "y", "z", ""]))
        );
        assert_eq!(wildcard(c, "aaa", "*a*a"), Some(s(&["", "a"])));
        assert_eq!(wildcard(c, "ab", "*a*a"), None);
        // Pathological keys cost length times length, not an explosion.
        let long = "a".repeat(5000);
        assert_eq!(wildcard(c, &long, &("*a".repeat(50) + "b")), None);
        let mut cap = None;
        assert!(any(
            m(MatchKind::Matches, c),
            &s(&["no", "yes please"]),
            &s(&["yes *"]),
            &mut cap
        ));
        assert_eq!(cap, Some(s(&["yes please", "please"])));
    }
}
