//! The MIME tree of a message (RFC 2045/2046), as byte ranges into the
//! served form. Broken structure gives a best-effort tree: a multipart whose
//! boundary never shows has no children, a missing close delimiter ends the
//! last part at the end of its parent, and nesting stops at [`MAX_DEPTH`].

use std::ops::Range;

use crate::header::{Header, raw_value};
use crate::rfc822::{self, Cursor};

/// Depth (the message itself is 0) from which multiparts and message/rfc822
/// parts are no longer opened: such a part is shown as
/// application/octet-stream. Dovecot stops at 99; we stop earlier so that a
/// FETCH answer stays within the list nesting clients accept (imapflow
/// refuses more than 100 levels, and the FETCH list and an ENVELOPE inside
/// the deepest message/rfc822 add four).
pub const MAX_DEPTH: usize = 90;
/// Most children of one multipart that are parsed; the rest is ignored.
pub const MAX_CHILDREN: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Part {
    pub header: Header,
    pub body: Range<usize>,
    /// The Content-Type as sent; `None` when there is none.
    pub content_type: Option<ContentType>,
    /// The type that applies without a Content-Type: text/plain, or
    /// message/rfc822 inside multipart/digest.
    pub digest_child: bool,
    pub children: Children,
}

#[derive(Debug, Clone)]
pub enum Children {
    None,
    Multipart(Vec<Part>),
    Message(Box<Part>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub ty: Vec<u8>,
    pub subtype: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ContentType {
    /// Parses `type/subtype; name=value; ...` as Dovecot does: a broken
    /// value keeps what could be read (possibly empty type and subtype).
    pub fn parse(value: &[u8]) -> ContentType {
        let mut c = Cursor::new(value);
        let (ty, subtype, params_follow) = rfc822::content_type(&mut c);
        let params = if params_follow {
            rfc822::parameters(&mut c)
        } else {
            Vec::new()
        };
        ContentType {
            ty,
            subtype,
            params,
        }
    }

    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty.as_bytes())
            && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

impl Part {
    /// Parses the message in `data`.
    pub fn parse(data: &[u8]) -> Part {
        let mut p = Parser {
            data,
            boundaries: Vec::new(),
        };
        p.part(0, 0, false).0
    }

    pub fn is_multipart(&self) -> bool {
        matches!(self.children, Children::Multipart(_))
            || self
                .content_type
                .as_ref()
                .is_some_and(|c| c.ty.eq_ignore_ascii_case(b"multipart"))
    }

    /// The child parts a section number counts: those of a multipart, or
    /// for message/rfc822 the parts of the enclosed message.
    pub fn children(&self) -> &[Part] {
        match &self.children {
            Children::Multipart(parts) => parts,
            _ => &[],
        }
    }

    pub fn message(&self) -> Option<&Part> {
        match &self.children {
            Children::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// A delimiter line met while parsing: for which open multipart (index into
/// the boundary stack), whether it closes it, and where the line is.
#[derive(Debug, Clone)]
struct Hit {
    level: usize,
    close: bool,
    line: Range<usize>,
}

/// One pass over the message, as Dovecot's parser does it: every line is
/// checked against the boundaries of all open multiparts (the longest
/// match wins), so a part ends at its own delimiter or at any ancestor's.
struct Parser<'a> {
    data: &'a [u8],
    boundaries: Vec<Vec<u8>>,
}

impl Parser<'_> {
    fn line_end(&self, pos: usize) -> usize {
        memchr::memchr(b'\n', &self.data[pos..])
            .map(|i| pos + i + 1)
            .unwrap_or(self.data.len())
    }

    /// The open multipart whose delimiter `line` is, if any.
    fn delimiter(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        let (level, boundary) = self
            .boundaries
            .iter()
            .enumerate()
            .filter(|(_, b)| rest.starts_with(b))
            .max_by_key(|(_, b)| b.len())?;
        Some((level, rest[boundary.len()..].starts_with(b"--")))
    }

    /// Lines from `pos` up to the next delimiter line (or the end).
    fn scan(&self, mut pos: usize) -> (usize, Option<Hit>) {
        // Outside any multipart no line can be a delimiter: the content
        // runs to the end (most mail is one part; no need to walk it).
        if self.boundaries.is_empty() {
            return (self.data.len(), None);
        }
        while pos < self.data.len() {
            let end = self.line_end(pos);
            if let Some((level, close)) = self.delimiter(&self.data[pos..end]) {
                return (
                    pos,
                    Some(Hit {
                        level,
                        close,
                        line: pos..end,
                    }),
                );
            }
            pos = end;
        }
        (self.data.len(), None)
    }

    /// Where content ends before a delimiter line at `line_start`: the line
    /// break in front of it belongs to the delimiter (RFC 2046 5.1.1).
    fn before_break(&self, line_start: usize, floor: usize) -> usize {
        let mut end = line_start;
        if end > floor && self.data[end - 1] == b'\n' {
            end -= 1;
            if end > floor && self.data[end - 1] == b'\r' {
                end -= 1;
            }
        }
        end
    }

    fn content_end(&self, hit: &Option<Hit>, floor: usize) -> usize {
        match hit {
            Some(h) => self.before_break(h.line.start, floor),
            None => self.data.len(),
        }
    }

    fn part(&mut self, start: usize, depth: usize, digest_child: bool) -> (Part, Option<Hit>) {
        // The header ends at an empty line, or at a delimiter line.
        let mut pos = start;
        let mut header_hit = None;
        let mut header_end = self.data.len();
        while pos < self.data.len() {
            let end = self.line_end(pos);
            let line = &self.data[pos..end];
            if line == b"\r\n" || line == b"\n" {
                header_end = end;
                break;
            }
            if let Some((level, close)) = self.delimiter(line) {
                header_hit = Some(Hit {
                    level,
                    close,
                    line: pos..end,
                });
                header_end = self.before_break(pos, start);
                break;
            }
            pos = end;
        }
        let header = Header::parse(self.data, start, header_end);
        let body_start = header.range.end;
        let content_type = header
            .first(self.data, "Content-Type")
            .map(|v| ContentType::parse(&raw_value(v)));
        let mut part = Part {
            header,
            body: body_start..body_start,
            content_type,
            digest_child,
            children: Children::None,
        };
        if header_hit.is_some() {
            if part.is_multipart() {
                part.children = Children::Multipart(Vec::new());
            }
            return (part, header_hit);
        }

        if depth >= MAX_DEPTH {
            if let Some(ct) = part
                .content_type
                .as_mut()
                .filter(|ct| ct.ty.eq_ignore_ascii_case(b"multipart") || ct.is("message", "rfc822"))
            {
                ct.ty = b"application".to_vec();
                ct.subtype = b"octet-stream".to_vec();
            }
            return self.leaf(part);
        }
        let (is_multipart, is_message, boundary, digest) = match &part.content_type {
            None => (false, digest_child, None, false),
            Some(ct) => (
                ct.ty.eq_ignore_ascii_case(b"multipart"),
                ct.is("message", "rfc822"),
                ct.param("boundary")
                    .filter(|b| !b.is_empty())
                    .map(<[u8]>::to_vec),
                ct.subtype.eq_ignore_ascii_case(b"digest"),
            ),
        };
        if is_message {
            let (inner, hit) = self.part(body_start, depth + 1, false);
            part.body = body_start..inner.body.end.max(body_start);
            part.children = Children::Message(Box::new(inner));
            return (part, hit);
        }
        if !is_multipart {
            return self.leaf(part);
        }
        let Some(boundary) = boundary else {
            part.children = Children::Multipart(Vec::new());
            return self.leaf(part);
        };

        let own = self.boundaries.len();
        self.boundaries.push(boundary);
        let mut children = Vec::new();
        let (_, mut hit) = self.scan(body_start); // the preamble
        let outcome = loop {
            match hit {
                Some(h) if h.level == own && !h.close => {
                    let (child, next) = self.part(h.line.end, depth + 1, digest);
                    if children.len() < MAX_CHILDREN {
                        children.push(child);
                    }
                    hit = next;
                }
                Some(h) if h.level == own => {
                    // Closed: the epilogue runs to an ancestor's delimiter.
                    self.boundaries.pop();
                    break self.scan(h.line.end).1;
                }
                other => {
                    self.boundaries.pop();
                    break other;
                }
            }
        };
        part.body = body_start..self.content_end(&outcome, body_start);
        part.children = Children::Multipart(children);
        (part, outcome)
    }

    fn leaf(&self, mut part: Part) -> (Part, Option<Hit>) {
        let start = part.body.start;
        let (_, hit) = self.scan(start);
        part.body = start..self.content_end(&hit, start);
        (part, hit)
    }
}
