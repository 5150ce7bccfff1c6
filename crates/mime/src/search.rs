//! Text search for IMAP SEARCH (RFC 9051 6.4.4): header fields with encoded
//! words decoded, and text bodies decoded from their transfer encoding and
//! charset, matched without regard to case. Built on mail-parser, which
//! does the decoding; nesting is cut at [`crate::part::MAX_DEPTH`] by
//! [`crate::message::parse`], and the walk keeps its own stack.

use mail_parser::{Address, HeaderValue, Message, PartType};

/// A parsed message, ready to be searched many times.
pub struct Searchable<'a> {
    message: Message<'a>,
}

/// Folds text for comparison without regard to case: i;unicode-casemap
/// (RFC 5051), the comparator IMAP's I18NLEVEL=1 names for SEARCH (RFC
/// 5255 4.2) and SORT uses already, so that "ﬁ" finds "fi" and a
/// decomposed "é" the composed one, as in Dovecot.
pub fn fold(s: &str) -> String {
    crate::sort::casemap(s)
}

impl<'a> Searchable<'a> {
    pub fn parse(raw: &'a [u8]) -> Option<Searchable<'a>> {
        crate::message::parse(raw).map(|message| Searchable { message })
    }

    /// Whether the message has an attachment (a part mail-parser counts
    /// as one: not a body text, not a container).
    pub fn has_attachment(&self) -> bool {
        self.message.attachment_count() > 0
    }

    /// Whether a field called `field` contains `needle` (already folded);
    /// an empty needle asks only that the field exists.
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        self.message.headers().iter().any(|h| {
            h.name.as_str().eq_ignore_ascii_case(field)
                && (needle.is_empty() || fold(&self.text_of(h)).contains(needle))
        })
    }

    /// Whether a text part of the body contains `needle` (already folded).
    /// Enclosed messages are searched too, without copying them.
    pub fn body_contains(&self, needle: &str) -> bool {
        let mut todo: Vec<&Message<'_>> = vec![&self.message];
        while let Some(message) = todo.pop() {
            for part in &message.parts {
                match &part.body {
                    PartType::Text(t) | PartType::Html(t) if fold(t).contains(needle) => {
                        return true;
                    }
                    PartType::Message(m) => todo.push(m),
                    _ => {}
                }
            }
        }
        false
    }

    /// Whether the header or the body contains `needle` (already folded).
    pub fn text_contains(&self, needle: &str) -> bool {
        self.message
            .headers()
            .iter()
            .any(|h| fold(&self.text_of(h)).contains(needle))
            || self.body_contains(needle)
    }

    /// The date of the Date field as written there (year, month, day), for
    /// SENTBEFORE, SENTON and SENTSINCE.
    pub fn sent_date(&self) -> Option<(i64, u32, u32)> {
        self.message.date().and_then(written_day)
    }

    fn text_of(&self, h: &mail_parser::Header<'_>) -> String {
        header_text(self.message.raw_message(), h)
    }
}

/// A Date field's day as written there (year, month, day); None when it
/// names no real month or day.
pub fn written_day(d: &mail_parser::DateTime) -> Option<(i64, u32, u32)> {
    (d.month >= 1 && d.month <= 12 && d.day >= 1).then_some((
        d.year as i64,
        d.month as u32,
        d.day as u32,
    ))
}

/// A header field's text as SEARCH matches it: encoded words decoded,
/// addresses as their names and addresses; other fields as written.
/// `raw` is the message the field was parsed from.
pub fn header_text(raw: &[u8], h: &mail_parser::Header<'_>) -> String {
    // Message IDs as written, angle brackets and all (mail-parser drops
    // them): `HEADER Message-ID <id@host>` must find the message, as it
    // does on Dovecot.
    let as_written = matches!(
        h.name.as_str().to_ascii_lowercase().as_str(),
        "message-id" | "in-reply-to" | "references" | "resent-message-id" | "content-id"
    );
    if as_written {
        let (s, e) = (h.offset_start as usize, h.offset_end as usize);
        let text = String::from_utf8_lossy(raw.get(s..e).unwrap_or_default());
        return text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    match &h.value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        HeaderValue::Address(a) => {
            let mut out = String::new();
            let mut push = |name: Option<&str>, addr: Option<&str>| {
                for s in [name, addr].into_iter().flatten() {
                    out.push_str(s);
                    out.push(' ');
                }
            };
            match a {
                Address::List(list) => {
                    for x in list {
                        push(x.name.as_deref(), x.address.as_deref());
                    }
                }
                Address::Group(groups) => {
                    for g in groups {
                        push(g.name.as_deref(), None);
                        for x in &g.addresses {
                            push(x.name.as_deref(), x.address.as_deref());
                        }
                    }
                }
            }
            out
        }
        // Dates, content types, trace fields: search them as written.
        _ => {
            let (s, e) = (h.offset_start as usize, h.offset_end as usize);
            String::from_utf8_lossy(raw.get(s..e).unwrap_or_default()).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_matches() {
        let raw = "From: =?utf-8?q?Gr=C3=BC=C3=9Fe?= <gruss@example.de>\r\n\
                   Subject: =?iso-8859-1?q?caf=E9?= menu\r\n\
                   Date: Tue, 02 Jan 2024 23:30:00 -0500\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                   Na=C3=AFve body TEXT\r\n";
        let s = Searchable::parse(raw.as_bytes()).unwrap();
        assert!(s.header_contains("subject", &fold("CAFÉ")));
        assert!(s.header_contains("From", &fold("grüße")));
        assert!(s.header_contains("from", &fold("gruss@example")));
        assert!(!s.header_contains("To", &fold("")));
        let ids = "Message-ID: <A1@Example.org>\r\nReferences: <x@y>\r\n  <z@w>\r\n\r\nbody\r\n";
        let by_id = Searchable::parse(ids.as_bytes()).unwrap();
        assert!(by_id.header_contains("message-id", &fold("<a1@example.org>")));
        assert!(by_id.header_contains("references", &fold("<x@y> <z@w>")));
        assert!(s.header_contains("Date", &fold("")));
        assert!(s.body_contains(&fold("naïve body")));
        assert!(!s.body_contains(&fold("menu")));
        assert!(s.text_contains(&fold("menu")) && s.text_contains(&fold("naïve")));
        assert_eq!(s.sent_date(), Some((2024, 1, 2)));
    }

    /// The remote crash of issue 21: thousands of nested messages, then a
    /// body search. Bounded: the text past the depth limit is not searched.
    #[test]
    fn deeply_nested_messages_are_searched_to_the_limit() {
        let run = |levels: usize| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let mut raw = b"Content-Type: message/rfc822\r\n\r\n".repeat(levels);
                    raw.extend_from_slice(b"Subject: in\r\n\r\nneedle\r\n");
                    let s = Searchable::parse(&raw).unwrap();
                    (
                        s.body_contains(&fold("needle")),
                        s.text_contains(&fold("needle")),
                    )
                })
                .unwrap()
                .join()
                .unwrap()
        };
        assert_eq!(run(5), (true, true));
        assert_eq!(run(3_000), (false, false));
        assert_eq!(run(10_000), (false, false));
    }
}
