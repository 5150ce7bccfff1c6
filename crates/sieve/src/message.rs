//! The message as Sieve tests see it: header fields by name (values
//! unfolded and with RFC 2047 words decoded), the addresses in them, the
//! size, and the body as raw text, decoded text or chosen parts.

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, MimeHeaders, PartType};

/// Header fields read, at most (the rest of a hostile header is ignored).
const MAX_FIELDS: usize = 10_000;
/// Body text the body test looks at, at most.
const MAX_BODY_TEXT: usize = 1024 * 1024;

/// A message to run a script on.
pub struct Message<'a> {
    raw: &'a [u8],
    /// Lower-case name and raw value (after the colon, line ends included).
    fields: Vec<(String, &'a [u8])>,
    body_start: usize,
}

impl<'a> Message<'a> {
    pub fn new(raw: &'a [u8]) -> Message<'a> {
        let mut fields: Vec<(String, &'a [u8])> = Vec::new();
        let mut pos = 0;
        let mut body_start = raw.len();
        let mut current: Option<(String, usize, usize)> = None;
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(raw.len(), |i| pos + i + 1);
            let line = &raw[pos..end];
            if line == b"\r\n" || line == b"\n" {
                body_start = end;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                if let Some(c) = current.as_mut() {
                    c.2 = end;
                }
            } else {
                if let Some((name, start, stop)) = current.take()
                    && fields.len() < MAX_FIELDS
                {
                    fields.push((name, &raw[start..stop]));
                }
                if let Some(colon) = line.iter().position(|&c| c == b':') {
                    let name = String::from_utf8_lossy(&line[..colon])
                        .trim_end()
                        .to_ascii_lowercase();
                    current = Some((name, pos + colon + 1, end));
                }
            }
            pos = end;
        }
        if let Some((name, start, stop)) = current
            && fields.len() < MAX_FIELDS
        {
            fields.push((name, &raw[start..stop]));
        }
        Message {
            raw,
            fields,
            body_start,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.raw.len() as u64
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// Every value of the fields called `name`, decoded and unfolded.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.raw_values(name)
            .map(|v| match with_newline(v, |s| s.parse_unstructured()) {
                HeaderValue::Text(t) => t.trim().to_string(),
                _ => String::new(),
            })
            .collect()
    }

    /// The addresses (`local@domain`) in the fields called `name`; a
    /// mailbox without a domain comes as just its local part.
    /// The addresses of each field called `name`, field by field.
    pub(crate) fn address_fields(&self, name: &str) -> Vec<Vec<String>> {
        let mut fields = Vec::new();
        for v in self.raw_values(name) {
            let mut out = Vec::new();
            if let HeaderValue::Address(a) = with_newline(v, |s| s.parse_address()) {
                match a {
                    Address::List(list) => {
                        out.extend(list.iter().filter_map(|a| a.address().map(String::from)))
                    }
                    Address::Group(groups) => {
                        for g in groups {
                            out.extend(
                                g.addresses
                                    .iter()
                                    .filter_map(|a| a.address().map(String::from)),
                            );
                        }
                    }
                }
            }
            fields.push(out);
        }
        fields
    }

    fn raw_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// The body undecoded (RFC 5173 :raw).
    pub(crate) fn raw_body(&self) -> String {
        let body = &self.raw[self.body_start..];
        String::from_utf8_lossy(&body[..body.len().min(MAX_BODY_TEXT)]).into_owned()
    }

    /// The decoded text of the parts whose type is one of `types` (a type
    /// alone, "text", takes all its subtypes; "" takes every part); for
    /// :text, the text parts (RFC 5173 5.2).
    pub(crate) fn parts(&self, types: &[String]) -> Vec<String> {
        let Some(msg) = mime::message::parse(self.raw) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut budget = MAX_BODY_TEXT;
        for part in &msg.parts {
            let (ty, sub) = match part.content_type() {
                Some(ct) => (
                    ct.c_type.to_ascii_lowercase(),
                    ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase(),
                ),
                None => ("text".to_string(), "plain".to_string()),
            };
            let wanted = types.iter().any(|t| {
                t.is_empty()
                    || match t.split_once('/') {
                        Some((a, b)) => a == ty && b == sub,
                        None => *t == ty,
                    }
            });
            if !wanted {
                continue;
            }
            let text = match &part.body {
                PartType::Text(t) | PartType::Html(t) => t.to_string(),
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                // Containers have no text of their own; their parts follow.
                PartType::Message(_) | PartType::Multipart(_) => continue,
            };
            let take = text.len().min(budget);
            let mut end = take;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            budget -= end;
            out.push(text[..end].to_string());
            if budget == 0 {
                break;
            }
        }
        out
    }
}

/// mail-parser reads a field value up to a line end that no white space
/// follows; give it one if the value has none.
fn with_newline(
    value: &[u8],
    parse: impl for<'s> FnOnce(&mut MessageStream<'s>) -> HeaderValue<'s>,
) -> HeaderValue<'static> {
    let owned;
    let v = if value.ends_with(b"\n") {
        value
    } else {
        owned = [value, b"\r\n"].concat();
        &owned
    };
    parse(&mut MessageStream::new(v)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_addresses_and_parts() {
        let raw = b"From: \"Bob\" <Bob@Example.COM>\r\nTo: a@x.test,\r\n b+lists@x.test, group: c@y.test;\r\n\
Subject: =?utf-8?q?caf=C3=A9?= time\r\nSubject: second\r\nX-Empty:\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>html words</p>\r\n--b--\r\n";
        let m = Message::new(raw);
        assert_eq!(m.values("subject"), ["café time", "second"]);
        assert_eq!(m.values("x-empty"), [""]);
        assert!(m.has("x-empty") && !m.has("cc"));
        assert_eq!(m.address_fields("from"), [["Bob@Example.COM"]]);
        assert_eq!(
            m.address_fields("to"),
            [["a@x.test", "b+lists@x.test", "c@y.test"]]
        );
        assert_eq!(m.size(), raw.len() as u64);
        assert!(m.raw_body().starts_with("--b\r\n"));
        let text = m.parts(&["text".to_string()]);
        assert_eq!(text.len(), 2);
        assert!(text[0].contains("plain words") && text[1].contains("html words"));
        assert_eq!(m.parts(&["text/html".to_string()]).len(), 1);
        assert!(m.parts(&["image".to_string()]).is_empty());
        // No header end, no value end: still read.
        let bare = Message::new(b"Subject: x");
        assert_eq!(bare.values("subject"), ["x"]);
    }
}
