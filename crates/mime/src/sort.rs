//! What SORT and THREAD (RFC 5256, RFC 5957) order messages by, and the
//! header fields SEARCH looks in most, taken from the header once, at
//! delivery, so that a sort or a header search reads the index and never
//! a message. Text keys are compared with i;unicode-casemap (RFC 5051:
//! titlecase, then NFKD), as Dovecot compares them; for ASCII text that is
//! the i;ascii-casemap RFC 5256 names.

use mail_parser::{Address, HeaderValue, MessageParser};
use unicode_normalization::UnicodeNormalization;

/// The sort and thread keys of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    /// The Date field in Unix seconds (UTC); None when it is missing or
    /// unreadable (SORT then uses the internal date, RFC 5256 2.2).
    pub sent: Option<i64>,
    /// The base subject (RFC 5256 2.1), case-mapped.
    pub subject: String,
    /// Whether the subject was a reply or forward (`Re:`, `Fwd:`,
    /// `(fwd)`), for THREAD=REFERENCES' subject grouping (RFC 5256 4, 5).
    pub reply: bool,
    /// The local part of the first From, To and Cc address, case-mapped.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// The display name of the first From and To address, else its
    /// address (RFC 5957), case-mapped.
    pub display_from: String,
    pub display_to: String,
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The References (else the first In-Reply-To) message IDs, oldest first.
    pub references: Vec<String>,
    /// The Date field's day as written there (year, month, day), for
    /// SENTBEFORE, SENTON and SENTSINCE (RFC 9051 6.4.4).
    pub sent_day: Option<(i64, u32, u32)>,
    /// Each occurrence of the [`INDEXED`] fields, its lower-case name and
    /// its text as SEARCH matches it (folded), in one string (one
    /// allocation a message; read it with [`fields`]); None when one is
    /// longer than [`MAX_FIELD_TEXT`] (SEARCH then reads the message).
    pub fields: Option<String>,
}

/// The header fields whose text the index keeps for SEARCH: the ones the
/// SEARCH keys FROM, TO, CC, BCC and SUBJECT name, and those clients
/// search with HEADER most (threads, lists).
pub const INDEXED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "in-reply-to",
    "references",
    "reply-to",
    "sender",
    "list-id",
];

/// Bytes of one field's text the index keeps; a longer one is searched in
/// the message itself.
pub const MAX_FIELD_TEXT: usize = 4096;

const NAME_END: char = '\u{1}';
const FIELD_END: char = '\u{2}';

/// The (name, text) pairs of [`SortKeys::fields`].
pub fn fields(kept: &str) -> impl Iterator<Item = (&str, &str)> {
    kept.split(FIELD_END).filter_map(|f| f.split_once(NAME_END))
}

/// References kept per message, the last ones.
pub const MAX_REFERENCES: usize = 1000;

/// The keys of a message from its stored bytes (only the header is read).
pub fn sort_keys(raw: &[u8]) -> SortKeys {
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return SortKeys::default();
    };
    let (subject, reply) = base_subject(m.subject().unwrap_or(""));
    let local = |a: Option<&Address>| {
        let addr = a.and_then(|a| a.first()).and_then(|a| a.address.as_deref());
        casemap(
            addr.map(|a| a.rsplit_once('@').map_or(a, |(l, _)| l))
                .unwrap_or(""),
        )
    };
    let display = |a: Option<&Address>| {
        let first = a.and_then(|a| a.first());
        let name = first
            .and_then(|a| a.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty());
        casemap(
            name.or(first.and_then(|a| a.address.as_deref()))
                .unwrap_or(""),
        )
    };
    let ids = |v: &HeaderValue| -> Vec<String> {
        match v {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut references = ids(m.references());
    if references.is_empty() {
        references = ids(m.in_reply_to()).into_iter().take(1).collect();
    }
    references.retain(|r| !r.is_empty());
    // The nearest ancestors are the ones that place a message; a header of
    // millions (hostile) is kept to its last MAX_REFERENCES.
    if references.len() > MAX_REFERENCES {
        references.drain(..references.len() - MAX_REFERENCES);
    }
    let mut fields = Some(String::new());
    for h in m.headers() {
        let name = h.name.as_str().to_ascii_lowercase();
        if INDEXED.contains(&name.as_str()) {
            let text = crate::search::fold(&crate::search::header_text(raw, h));
            if text.len() > MAX_FIELD_TEXT {
                fields = None;
                break;
            }
            if let Some(f) = fields.as_mut() {
                // The separators cannot be in the text (control
                // characters become spaces there).
                f.push_str(&name);
                f.push(NAME_END);
                f.extend(text.chars().map(|c| {
                    if c == NAME_END || c == FIELD_END {
                        ' '
                    } else {
                        c
                    }
                }));
                f.push(FIELD_END);
            }
        }
    }
    SortKeys {
        sent: m.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp()),
        sent_day: m.date().and_then(crate::search::written_day),
        fields,
        subject: casemap(&subject),
        reply,
        from: local(m.from()),
        to: local(m.to()),
        cc: local(m.cc()),
        display_from: display(m.from()),
        display_to: display(m.to()),
        message_id: m.message_id().filter(|s| !s.is_empty()).map(str::to_string),
        references,
    }
}

/// i;unicode-casemap (RFC 5051 2): each character titlecased (upper case
/// in Rust's tables, which differ only for a few digraphs), then NFKD.
/// ASCII, most of what SEARCH folds (whole bodies), takes a direct path:
/// it has no decompositions and is a starter, so the runs between ASCII
/// characters decompose alone exactly as within the whole string.
pub fn casemap(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let ascii = rest.find(|c: char| !c.is_ascii()).unwrap_or(rest.len());
        out.extend(rest[..ascii].chars().map(|c| c.to_ascii_uppercase()));
        rest = &rest[ascii..];
        let other = rest.find(|c: char| c.is_ascii()).unwrap_or(rest.len());
        out.extend(rest[..other].chars().flat_map(char::to_uppercase).nfkd());
        rest = &rest[other..];
    }
    out
}

/// The base subject of RFC 5256 2.1, and whether anything marked it as a
/// reply or forward. `subject` is already decoded (encoded words).
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) White space runs, folding included, become one space.
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) Trailing "(fwd)" and white space.
        loop {
            let t = s.trim_end();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                reply = true;
                s = t[..t.len() - 5].to_string();
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3)-(5) Leading subj-leader and subj-blob, while they match.
        loop {
            let before = s.len();
            if let Some(rest) = strip_leader(&s) {
                reply = true;
                s = rest.to_string();
            }
            let t = s.trim_start();
            if t.len() != s.len() {
                s = t.to_string();
            }
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: ...]" around the rest: unwrap and start over.
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            reply = true;
            s = s[5..s.len() - 1].to_string();
            continue;
        }
        return (s, reply);
    }
}

/// `*subj-blob subj-refwd` at the start of `s` (RFC 5256 5): what is left
/// after it, if it is there.
fn strip_leader(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    let lower = rest.to_ascii_lowercase();
    let after = if lower.starts_with("re") {
        &rest[2..]
    } else if lower.starts_with("fwd") {
        &rest[3..]
    } else if lower.starts_with("fw") {
        &rest[2..]
    } else {
        return None;
    };
    let after = after.trim_start_matches([' ', '\t']);
    let after = strip_blob(after).unwrap_or(after);
    after.strip_prefix(':')
}

/// `"[" *BLOBCHAR "]" *WSP` at the start of `s`: what is left after it.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    if inner.as_bytes()[end] != b']' {
        return None;
    }
    Some(inner[end + 1..].trim_start_matches([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casemap_by_runs_is_casemap_of_the_whole() {
        let whole = |s: &str| -> String { s.chars().flat_map(char::to_uppercase).nfkd().collect() };
        for s in [
            "plain ascii",
            "Données du ﬁchier",
            "e\u{301}te\u{301} a\u{30a}\u{301}",
            "\u{301}leading mark",
            "Straße ǅ ﬀ Ｗｉｄｅ ½",
            "ὈΔΥΣΣΕΎΣ and ß",
            "",
        ] {
            assert_eq!(casemap(s), whole(s), "{s:?}");
        }
    }

    #[test]
    fn base_subjects_of_rfc_5256() {
        let cases = [
            ("Hello", "Hello", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Fwd: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("[dev] Re: Hello", "Hello", true),
            ("[dev] Hello", "Hello", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("[Fwd: Re: Hello]", "Hello", true),
            ("[dev]", "[dev]", false),
            ("  Re:   spaced\t\r\n out ", "spaced out", true),
            ("Fw: x", "x", true),
            ("Re : not a leader", "not a leader", true),
            ("Reply all", "Reply all", false),
            ("", "", false),
        ];
        for (subject, base, reply) in cases {
            assert_eq!(
                base_subject(subject),
                (base.to_string(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn keys_from_a_header() {
        let raw = b"From: =?utf-8?q?=C3=89mile?= Zola <Emile@Example.FR>\r\n\
            To: bob@example.net, carol@example.org\r\n\
            Cc: <Dana@lists.example.com>\r\n\
            Subject: Re: =?utf-8?b?RG9ubsOpZXM=?= du projet\r\n\
            Date: Mon, 01 Jan 2024 09:00:00 +0100\r\n\
            Message-ID: <a@b>\r\n\
            In-Reply-To: <x@y>\r\n\
            References: <w@v> <x@y>\r\n\r\nbody\r\n";
        let k = sort_keys(raw);
        assert_eq!(k.sent, Some(1_704_096_000));
        assert_eq!(k.subject, casemap("Données du projet"));
        assert!(k.reply);
        assert_eq!(k.from, "EMILE");
        assert_eq!(k.to, "BOB");
        assert_eq!(k.cc, "DANA");
        // Titlecased and decomposed: É sorts among the Es.
        assert_eq!(k.display_from, "E\u{301}MILE ZOLA");
        assert_eq!(k.display_to, "BOB@EXAMPLE.NET");
        assert_eq!(k.message_id.as_deref(), Some("a@b"));
        assert_eq!(k.references, vec!["w@v", "x@y"]);
        assert_eq!(k.sent_day, Some((2024, 1, 1)));
        let kept = k.fields.expect("short fields are kept");
        let fields: Vec<(&str, &str)> = super::fields(&kept).collect();
        // Folded with i;unicode-casemap, as SEARCH folds its needles.
        let from = casemap("émile zola emile@example.fr ");
        let subject = casemap("re: données du projet");
        assert!(fields.contains(&("from", from.as_str())));
        assert!(fields.contains(&("subject", subject.as_str())));
        assert!(fields.contains(&("message-id", "<A@B>")));
        assert!(fields.iter().all(|(n, _)| *n != "date"), "Date is not kept");
        let odd = sort_keys(b"Subject: a =?utf-8?q?=01=02?= b\r\n\r\n");
        let kept = odd.fields.expect("kept");
        assert_eq!(
            super::fields(&kept).collect::<Vec<_>>(),
            vec![("subject", "A    B")]
        );
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(MAX_FIELD_TEXT + 1));
        assert_eq!(sort_keys(long.as_bytes()).fields, None);
        let bare = sort_keys(b"Subject: x\r\nIn-Reply-To: <p@q> <r@s>\r\nDate: nonsense\r\n\r\n");
        assert_eq!(bare.references, vec!["p@q"]);
        assert_eq!(bare.sent, None);
        assert_eq!(bare.message_id, None);
        assert_eq!(sort_keys(b""), SortKeys::default());
        let many: String = (0..3000).map(|i| format!("<r{i}@x> ")).collect();
        let k = sort_keys(format!("References: {many}\r\n\r\n").as_bytes());
        assert_eq!(k.references.len(), MAX_REFERENCES);
        assert_eq!(k.references.last().map(String::as_str), Some("r2999@x"));
    }
}
