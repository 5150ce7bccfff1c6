//! Parsed-message views the doors need: ENVELOPE, BODYSTRUCTURE and section
//! extraction, computed on the served form of a message (bare LFs sent as
//! CRLF). Malformed mail gives a valid, best-effort answer, never a panic.

pub mod address;
pub mod decode;
pub mod fields;
pub mod header;
pub mod imap;
mod lex;
pub mod message;
pub mod part;
pub mod preview;
mod rfc822;
pub mod search;
pub mod section;
pub mod sort;
mod value;

use std::borrow::Cow;

pub use part::Part;
pub use value::Value;

/// A message's served size and the IMAP views a store caches with it.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// RFC822.SIZE: octets as served, every bare LF counted as CRLF.
    pub size: u64,
    /// ENVELOPE, in IMAP syntax (bytes: headers may hold 8-bit text).
    pub envelope: Vec<u8>,
    /// BODYSTRUCTURE with extension data, in IMAP syntax.
    pub bodystructure: Vec<u8>,
    /// PREVIEW (RFC 8970): the body's first text.
    pub preview: Option<String>,
}

/// Everything the index caches about a message, from its stored bytes.
pub fn analyze(raw: &[u8]) -> Analysis {
    let served = served(raw);
    let root = Part::parse(&served);
    Analysis {
        size: served.len() as u64,
        envelope: imap::envelope(&served, &root.header).to_imap(),
        bodystructure: imap::bodystructure(&served, &root, true).to_imap(),
        preview: preview::preview(raw),
    }
}

/// The message as IMAP and POP3 serve it: every bare LF becomes CRLF, and
/// a part sent with `Content-Transfer-Encoding: binary` whose bytes that
/// would change (a bare LF) or cannot travel in a literal (NUL) is served
/// in base64 instead, as Dovecot serves it: its content survives whole,
/// and IMAP BINARY decodes it back byte for byte (RFC 3516).
pub fn served(raw: &[u8]) -> Cow<'_, [u8]> {
    match binary_parts_as_base64(raw) {
        Some(rewritten) => Cow::Owned(crlf(&rewritten).into_owned()),
        None => crlf(raw),
    }
}

/// Every bare LF as CRLF.
fn crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize| i == 0 || raw[i - 1] != b'\r';
    let count = memchr::memchr_iter(b'\n', raw).filter(|&i| bare(i)).count();
    if count == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + count);
    let mut from = 0;
    for i in memchr::memchr_iter(b'\n', raw).filter(|&i| bare(i)) {
        out.extend_from_slice(&raw[from..i]);
        out.extend_from_slice(b"\r\n");
        from = i + 1;
    }
    out.extend_from_slice(&raw[from..]);
    Cow::Owned(out)
}

/// The message with each `binary` part that needs it (see [`served`])
/// re-encoded in base64; `None` when none does (the common case, found
/// without parsing when the word "binary" is nowhere in the message).
fn binary_parts_as_base64(raw: &[u8]) -> Option<Vec<u8>> {
    // Two fast scans (binary, Binary, BINARY); an odd mix of cases such as
    // "bInary" is served the old way, line breaks made CRLF.
    let mentions = memchr::memmem::find(raw, b"inary").is_some()
        || memchr::memmem::find(raw, b"INARY").is_some();
    if !mentions {
        return None;
    }
    let root = Part::parse(raw);
    let mut leaves = Vec::new();
    collect_binary_leaves(raw, &root, &mut leaves);
    if leaves.is_empty() {
        return None;
    }
    leaves.sort_by_key(|(field, _)| field.start);
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + 64);
    let mut at = 0;
    for (value, body) in leaves {
        if value.start < at {
            continue; // overlapping ranges: never from one parse, but stay safe
        }
        out.extend_from_slice(&raw[at..value.start]);
        out.extend_from_slice(b" base64");
        out.extend_from_slice(&raw[value.end..body.start]);
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &raw[body.clone()],
        );
        // RFC 2045 6.8: lines of at most 76 characters.
        for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
        at = body.end;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

/// The leaf parts (at any depth) sent as `binary` whose body holds a NUL
/// or a bare LF: the range of their Content-Transfer-Encoding value, and
/// of their body.
fn collect_binary_leaves(
    raw: &[u8],
    part: &Part,
    out: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
) {
    match &part.children {
        part::Children::Multipart(children) => {
            for c in children {
                collect_binary_leaves(raw, c, out);
            }
        }
        part::Children::Message(inner) => collect_binary_leaves(raw, inner, out),
        part::Children::None => {
            let Some(field) =
                part.header.fields.iter().find(|f| {
                    raw[f.name.clone()].eq_ignore_ascii_case(b"Content-Transfer-Encoding")
                })
            else {
                return;
            };
            if !header::raw_value(&raw[field.value.clone()]).eq_ignore_ascii_case(b"binary") {
                return;
            }
            // The value without the line break that ends the field.
            let v = &raw[field.value.clone()];
            let kept = v
                .iter()
                .rev()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            let value = field.value.start..field.value.end - kept;
            let body = &raw[part.body.clone()];
            let bare_lf = memchr::memchr_iter(b'\n', body).any(|i| i == 0 || body[i - 1] != b'\r');
            if body.contains(&0) || bare_lf {
                out.push((value, part.body.clone()));
            }
        }
    }
}

/// How many leading octets of `raw` are its header section, with the empty
/// line that ends it (RFC 5322 2.1; all of `raw` when no line is empty):
/// the part a FETCH of the top-level header needs served and parsed, cut
/// where [`Part::parse`] ends the top-level header.
pub fn header_len(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let end = memchr::memchr(b'\n', &raw[pos..]).map_or(raw.len(), |i| pos + i + 1);
        if matches!(&raw[pos..end], b"\n" | b"\r\n") {
            return end;
        }
        pos = end;
    }
    raw.len()
}

/// Bytes safe to send in an IMAP literal: NUL is not allowed there
/// (RFC 9051 4.3), so it goes out as 0x80, as Dovecot sends it.
pub fn without_nul(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&0) {
        return Cow::Borrowed(bytes);
    }
    Cow::Owned(
        bytes
            .iter()
            .map(|&b| if b == 0 { 0x80 } else { b })
            .collect(),
    )
}

#[cfg(test)]
mod served_tests {
    use super::*;

    #[test]
    fn a_binary_part_with_nul_or_bare_lf_is_served_in_base64() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Transfer-Encoding: Binary\r\n\r\na\nb\x00c\r\n--b\r\n\
Content-Transfer-Encoding: binary\r\n\r\nplain\r\n--b--\r\n";
        let served = served(raw);
        let text = String::from_utf8_lossy(&served);
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nYQpiAGM=\r\n--b"),
            "{text}"
        );
        // A binary part whose bytes survive as they are stays binary.
        assert!(
            text.contains("Content-Transfer-Encoding: binary\r\n\r\nplain"),
            "{text}"
        );
        // Nothing to change: the same bytes, not a copy.
        let plain = b"Subject: binary words\r\n\r\nbinary\r\n";
        assert!(matches!(super::served(plain), Cow::Borrowed(_)));
    }
}
