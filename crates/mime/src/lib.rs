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
mod rfc822;
pub mod search;
pub mod section;
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
}

/// Everything the index caches about a message, from its stored bytes.
pub fn analyze(raw: &[u8]) -> Analysis {
    let served = served(raw);
    let root = Part::parse(&served);
    Analysis {
        size: served.len() as u64,
        envelope: imap::envelope(&served, &root.header).to_imap(),
        bodystructure: imap::bodystructure(&served, &root, true).to_imap(),
    }
}

/// The message as IMAP and POP3 serve it: every bare LF becomes CRLF.
pub fn served(raw: &[u8]) -> Cow<'_, [u8]> {
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
