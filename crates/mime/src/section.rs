//! Body sections (RFC 9051 6.4.5): `BODY[1.2.MIME]`, `BODY[HEADER.FIELDS
//! (From)]`, `BODY[TEXT]<0.100>` and the rest, cut from the served form of
//! a message. A section that does not exist is empty, as Dovecot answers.

use crate::part::{Children, Part};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, outermost first; empty for the whole message.
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// HEADER.FIELDS, or HEADER.FIELDS.NOT with `not`.
    HeaderFields {
        not: bool,
        fields: Vec<Vec<u8>>,
    },
    Text,
    Mime,
}

/// Most part numbers in one section specification.
pub const MAX_PART_DEPTH: usize = 128;

impl Section {
    /// The bytes of this section of the message `data` whose tree is `root`
    /// (parsed from the same `data`; ranges outside it give nothing).
    pub fn extract(&self, data: &[u8], root: &Part) -> Vec<u8> {
        let cut = |r: std::ops::Range<usize>| data.get(r).unwrap_or_default().to_vec();
        let Some(part) = find(root, &self.part) else {
            return Vec::new();
        };
        // HEADER, HEADER.FIELDS and TEXT of a part number are those of the
        // message/rfc822 it holds; at the top, of the message itself.
        let message = if self.part.is_empty() {
            Some(root)
        } else {
            part.message()
        };
        match &self.text {
            // BODY[] is the whole message; BODY[n] the body of part n.
            None if self.part.is_empty() => data.to_vec(),
            None => cut(part.body.clone()),
            Some(SectionText::Mime) => cut(part.header.range.clone()),
            Some(SectionText::Header) => message
                .map(|m| cut(m.header.range.clone()))
                .unwrap_or_default(),
            Some(SectionText::Text) => message.map(|m| cut(m.body.clone())).unwrap_or_default(),
            Some(SectionText::HeaderFields { not, fields }) => message
                .map(|m| header_fields(data, m, *not, fields))
                .unwrap_or_default(),
        }
    }
}

/// The part that part numbers name (the message itself for none).
pub fn part_at<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    find(root, path)
}

/// Applies `<origin.length>` to a section's bytes.
pub fn partial(bytes: &[u8], origin: u64, length: Option<u64>) -> &[u8] {
    let start = (origin.min(bytes.len() as u64)) as usize;
    let end = match length {
        Some(n) => (origin.saturating_add(n)).min(bytes.len() as u64) as usize,
        None => bytes.len(),
    };
    &bytes[start..end.max(start)]
}

/// Finds the part a section's numbers name. At a multipart the number picks
/// a child; elsewhere only 1 is valid, and a path may go on only through a
/// message/rfc822 part, into the message it holds.
fn find<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut part = root;
    for (i, &n) in path.iter().enumerate() {
        let more = i + 1 < path.len();
        part = if let Children::Multipart(children) = &part.children {
            children.get((n as usize).checked_sub(1)?)?
        } else if n != 1 || (more && part.message().is_none()) {
            return None;
        } else {
            part
        };
        if more && let Some(inner) = part.message() {
            part = inner;
        }
    }
    Some(part)
}

/// The fields of `m`'s header that are (or with `not`, are not) in
/// `names`, in their order in the message, then the empty line.
fn header_fields(data: &[u8], m: &Part, not: bool, names: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &m.header.fields {
        let name = data.get(f.name.clone()).unwrap_or_default();
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(data.get(f.whole.clone()).unwrap_or_default());
            if !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_whole_message() {
        let msg = b"Subject: x\r\n\r\nbody\r\n";
        let root = Part::parse(msg);
        let s = |part: Vec<u32>, text| Section { part, text };
        assert_eq!(s(vec![], None).extract(msg, &root), msg);
        assert_eq!(s(vec![1], None).extract(msg, &root), b"body\r\n");
        assert_eq!(
            s(vec![], Some(SectionText::Text)).extract(msg, &root),
            b"body\r\n"
        );
    }
}
