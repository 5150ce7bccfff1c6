//! Reading and editing a message's header fields (RFC 5322 2.2) as bytes,
//! without touching anything else of the message.

/// The end of the header: the offset just past its blank line (or the
/// whole message when it has no body).
fn header_end(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 0;
    }
    memchr::memmem::find(raw, b"\r\n\r\n").map_or(raw.len(), |i| i + 2)
}

/// Each field of the header as (start, end) with its folded lines and CRLF.
fn fields(raw: &[u8]) -> Vec<(usize, usize)> {
    let end = header_end(raw);
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < end {
        let next = memchr::memmem::find(&raw[pos..end], b"\r\n").map_or(end, |i| pos + i + 2);
        let folded = matches!(raw[pos], b' ' | b'\t');
        match out.last_mut() {
            Some(last) if folded => last.1 = next,
            _ => out.push((pos, next)),
        }
        pos = next;
    }
    out
}

fn named(raw: &[u8], (start, end): (usize, usize), name: &str) -> bool {
    let field = &raw[start..end];
    field.len() > name.len()
        && field[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && field[name.len()..]
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t'))
            == Some(&b':')
}

/// The unfolded value of the first field called `name`.
pub fn value(raw: &[u8], name: &str) -> Option<String> {
    let (start, end) = fields(raw).into_iter().find(|f| named(raw, *f, name))?;
    let field = String::from_utf8_lossy(&raw[start..end]);
    let (_, v) = field.split_once(':')?;
    Some(v.replace("\r\n", "").trim().to_string())
}

/// How many fields are called `name` (Received ones count hops).
pub fn count(raw: &[u8], name: &str) -> usize {
    fields(raw)
        .into_iter()
        .filter(|f| named(raw, *f, name))
        .count()
}

pub fn has(raw: &[u8], name: &str) -> bool {
    fields(raw).into_iter().any(|f| named(raw, f, name))
}

/// The message without any field called `name`.
pub fn without(raw: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for f in fields(raw) {
        if named(raw, f, name) {
            out.extend_from_slice(&raw[pos..f.0]);
            pos = f.1;
        }
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

/// The addresses of the first `From:` field (lower case).
pub fn from_addresses(raw: &[u8]) -> Vec<String> {
    let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    message
        .from()
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .map(|s| s.to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"From: a@x.test\r\nBcc: c@y.test,\r\n d@y.test\r\nSubject: hi\r\n\r\nBcc: body\r\n";

    #[test]
    fn fields_are_found_and_removed_whole() {
        assert_eq!(value(MSG, "bcc").as_deref(), Some("c@y.test, d@y.test"));
        assert!(has(MSG, "SUBJECT"));
        assert!(!has(MSG, "Date"));
        assert_eq!(
            without(MSG, "Bcc"),
            b"From: a@x.test\r\nSubject: hi\r\n\r\nBcc: body\r\n"
        );
        assert_eq!(without(b"Subject: x\r\n", "bcc"), b"Subject: x\r\n");
    }
}
