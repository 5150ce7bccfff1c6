//! FETCH responses (RFC 9051 7.5.2): one message's data items, written from
//! the index, the cached views and, when a body part is asked for, the
//! message itself.

use imap_proto::response::{self, date_time};
use imap_proto::{FetchAttr, PreviewForm};
use mime::section::{Section, SectionText, partial};
use mime::{Part, Value};
use store::{MessageCache, MessageMeta};

use crate::view::Entry;

/// A FETCH that asked for the size or date without [`Needs::details`]
/// having been read: a bug, answered as a failure, not a panic.
const NO_DETAILS: &str = "The message's index entry was not read.";

/// What the requested items need beyond the index.
pub struct Needs {
    /// The size, date or body file: the message's full index entry.
    pub details: bool,
    pub views: bool,
    pub body: bool,
    /// Items that set \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT).
    pub sets_seen: bool,
    /// The body is needed only for the top-level header (HEADER,
    /// HEADER.FIELDS[.NOT], RFC822.HEADER): a client's message list, the
    /// most common FETCH; the rest of the message is neither served nor
    /// parsed.
    pub header_only: bool,
    /// THREADID: the kept thread keys.
    pub threads: bool,
}

pub fn needs(items: &[FetchAttr]) -> Needs {
    let mut n = Needs {
        details: false,
        views: false,
        body: false,
        sets_seen: false,
        header_only: false,
        threads: false,
    };
    let mut beyond_header = false;
    for item in items {
        beyond_header |= match item {
            FetchAttr::Rfc822Header => false,
            FetchAttr::Section { section, .. } => {
                !section.part.is_empty()
                    || !matches!(
                        section.text,
                        Some(SectionText::Header | SectionText::HeaderFields { .. })
                    )
            }
            FetchAttr::Rfc822
            | FetchAttr::Rfc822Text
            | FetchAttr::Binary { .. }
            | FetchAttr::BinarySize(_) => true,
            _ => false,
        };
        match item {
            FetchAttr::Envelope
            | FetchAttr::Body
            | FetchAttr::BodyStructure
            | FetchAttr::Preview(_) => n.views = true,
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => {
                n.body = true;
                n.sets_seen = true;
            }
            FetchAttr::Rfc822Header => n.body = true,
            FetchAttr::Section { peek, .. } | FetchAttr::Binary { peek, .. } => {
                n.body = true;
                n.sets_seen |= !peek;
            }
            FetchAttr::BinarySize(_) => n.body = true,
            FetchAttr::InternalDate
            | FetchAttr::Rfc822Size
            | FetchAttr::EmailId
            | FetchAttr::SaveDate => n.details = true,
            // A message without Message-ID is named after its body.
            FetchAttr::ThreadId => {
                n.threads = true;
                n.details = true;
            }
            _ => {}
        }
    }
    n.details |= n.body;
    n.header_only = n.body && !beyond_header;
    n
}

/// A message read and parsed for body sections.
pub struct Loaded {
    pub served: Vec<u8>,
    pub root: Part,
    /// The stored bytes, when serving changed them: BINARY[] answers
    /// those, byte for byte (RFC 3516 4.2).
    pub stored: Option<Vec<u8>>,
}

impl Loaded {
    pub fn new(raw: Vec<u8>) -> Loaded {
        let (served, stored) = match mime::served(&raw) {
            std::borrow::Cow::Borrowed(_) => (raw, None),
            std::borrow::Cow::Owned(fixed) => (fixed, Some(raw)),
        };
        let root = Part::parse(&served);
        Loaded {
            served,
            root,
            stored,
        }
    }

    /// The message's header section alone: enough for every section
    /// [`Needs::header_only`] allows, which cut the same bytes from it as
    /// from the whole message.
    pub fn header(mut raw: Vec<u8>) -> Loaded {
        raw.truncate(mime::header_len(&raw));
        Loaded::new(raw)
    }

    fn section(&self, section: &Section) -> Vec<u8> {
        section.extract(&self.served, &self.root)
    }

    /// BINARY[part]: the part with its transfer encoding undone; the whole
    /// message for no part numbers.
    fn binary(&self, part: &[u32]) -> Result<Vec<u8>, String> {
        if part.is_empty() {
            return Ok(self.stored.as_ref().unwrap_or(&self.served).clone());
        }
        let Some(p) = mime::section::part_at(&self.root, part) else {
            return Ok(Vec::new());
        };
        mime::decode::part_content(&self.served, p)
            .ok_or_else(|| "[UNKNOWN-CTE] The part's transfer encoding is unknown.".to_string())
    }
}

/// The FLAGS of a message as this session shows them.
pub fn flags(meta: &Entry, recent: bool) -> Vec<&str> {
    let mut f: Vec<&str> = meta.flags.names().collect();
    f.extend(meta.keywords.iter().map(String::as_str));
    if recent {
        f.push("\\Recent");
    }
    f
}

/// Everything one FETCH response needs about its message.
pub struct Message<'a> {
    pub seq: usize,
    /// What the session knows of it (flags as last announced).
    pub meta: &'a Entry,
    /// Its full index entry, when the items need it ([`Needs::details`]).
    pub details: Option<&'a MessageMeta>,
    pub recent: bool,
    pub views: Option<&'a MessageCache>,
    pub body: Option<&'a Loaded>,
    /// Its THREADID, when asked for (None: NIL).
    pub thread: Option<&'a str>,
}

/// Writes `* seq FETCH (...)`. `uid_first` puts UID in front (UID FETCH
/// always returns it); `with_flags` adds FLAGS when \Seen was just set.
pub fn write(
    out: &mut Vec<u8>,
    m: &Message,
    items: &[FetchAttr],
    uid_first: bool,
    with_flags: bool,
) -> Result<(), String> {
    out.extend_from_slice(format!("* {} FETCH (", m.seq).as_bytes());
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let wants_uid = items.contains(&FetchAttr::Uid);
    if uid_first || wants_uid {
        sep(out);
        out.extend_from_slice(format!("UID {}", m.meta.uid).as_bytes());
    }
    let wants_flags = items.contains(&FetchAttr::Flags);
    for item in items {
        match item {
            FetchAttr::Uid => {}
            FetchAttr::Flags => {
                sep(out);
                out.extend_from_slice(b"FLAGS ");
                response::flag_list(out, flags(m.meta, m.recent));
            }
            FetchAttr::InternalDate => {
                sep(out);
                let d = m
                    .details
                    .ok_or_else(|| NO_DETAILS.to_string())?
                    .internal_date;
                out.extend_from_slice(
                    format!("INTERNALDATE {}", date_time(d.unix, d.tz_minutes)).as_bytes(),
                );
            }
            FetchAttr::Rfc822Size => {
                sep(out);
                let size = m.details.ok_or_else(|| NO_DETAILS.to_string())?.size;
                out.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes());
            }
            FetchAttr::ModSeq => {
                sep(out);
                out.extend_from_slice(format!("MODSEQ ({})", m.meta.modseq).as_bytes());
            }
            FetchAttr::EmailId => {
                sep(out);
                let blob = &m.details.ok_or_else(|| NO_DETAILS.to_string())?.blob;
                out.extend_from_slice(
                    format!("EMAILID ({})", crate::objectid::email_id(blob)).as_bytes(),
                );
            }
            FetchAttr::Preview(form) => {
                sep(out);
                out.extend_from_slice(match form {
                    PreviewForm::Preview => b"PREVIEW ".as_slice(),
                    PreviewForm::Fuzzy => b"PREVIEW (FUZZY ",
                    PreviewForm::Snippet => b"SNIPPET (FUZZY ",
                });
                match m.views.and_then(|v| v.preview.as_deref()) {
                    Some(text) => Value::str(text.as_bytes()).write(out),
                    None => out.extend_from_slice(b"NIL"),
                }
                if *form != PreviewForm::Preview {
                    out.push(b')');
                }
            }
            FetchAttr::SaveDate => {
                sep(out);
                let saved = m.details.ok_or_else(|| NO_DETAILS.to_string())?.saved_at;
                out.extend_from_slice(format!("SAVEDATE {}", date_time(saved, 0)).as_bytes());
            }
            FetchAttr::ThreadId => {
                sep(out);
                match m.thread {
                    Some(t) => out.extend_from_slice(format!("THREADID ({t})").as_bytes()),
                    None => out.extend_from_slice(b"THREADID NIL"),
                }
            }
            FetchAttr::Envelope => {
                sep(out);
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(view(m, |v| v.envelope.as_deref())?);
            }
            FetchAttr::BodyStructure => {
                sep(out);
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(view(m, |v| v.bodystructure.as_deref())?);
            }
            FetchAttr::Body => {
                sep(out);
                out.extend_from_slice(b"BODY ");
                let bs = view(m, |v| v.bodystructure.as_deref())?;
                let tree = Value::parse(bs).ok_or("the cached BODYSTRUCTURE is damaged")?;
                mime::imap::body_from_bodystructure(&tree).write(out);
            }
            FetchAttr::Rfc822 | FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let loaded = m.body.ok_or("the message could not be read")?;
                let (name, text) = match item {
                    FetchAttr::Rfc822 => ("RFC822", None),
                    FetchAttr::Rfc822Header => {
                        ("RFC822.HEADER", Some(mime::section::SectionText::Header))
                    }
                    _ => ("RFC822.TEXT", Some(mime::section::SectionText::Text)),
                };
                let bytes = loaded.section(&Section { part: vec![], text });
                sep(out);
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                response::literal(out, &mime::without_nul(&bytes));
            }
            FetchAttr::Section {
                section,
                partial: p,
                ..
            } => {
                let loaded = m.body.ok_or("the message could not be read")?;
                let bytes = loaded.section(section);
                sep(out);
                out.extend_from_slice(b"BODY[");
                write_section_spec(out, section);
                out.push(b']');
                let slice = match p {
                    Some((origin, len)) => {
                        out.extend_from_slice(format!("<{origin}>").as_bytes());
                        partial(&bytes, *origin, Some(*len))
                    }
                    None => &bytes[..],
                };
                out.push(b' ');
                response::literal(out, &mime::without_nul(slice));
            }
            FetchAttr::Binary {
                part, partial: p, ..
            } => {
                let loaded = m.body.ok_or("the message could not be read")?;
                let bytes = loaded.binary(part)?;
                sep(out);
                out.extend_from_slice(format!("BINARY[{}]", dotted(part)).as_bytes());
                let slice = match p {
                    Some((origin, len)) => {
                        out.extend_from_slice(format!("<{origin}>").as_bytes());
                        partial(&bytes, *origin, Some(*len))
                    }
                    None => &bytes[..],
                };
                out.push(b' ');
                // RFC 3516 4.2: literal8 when the data holds NUL.
                if slice.contains(&0) {
                    out.push(b'~');
                }
                response::literal(out, slice);
            }
            FetchAttr::BinarySize(part) => {
                let loaded = m.body.ok_or("the message could not be read")?;
                let size = loaded.binary(part)?.len();
                sep(out);
                out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", dotted(part)).as_bytes());
            }
        }
    }
    if with_flags && !wants_flags {
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        response::flag_list(out, flags(m.meta, m.recent));
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

fn view<'a>(
    m: &'a Message,
    pick: impl Fn(&'a MessageCache) -> Option<&'a [u8]>,
) -> Result<&'a [u8], String> {
    m.views
        .and_then(pick)
        .ok_or_else(|| "the message's cached structure is missing".to_string())
}

/// The section specification as the response echoes it.
fn write_section_spec(out: &mut Vec<u8>, s: &Section) {
    use mime::section::SectionText;
    let parts: Vec<String> = s.part.iter().map(u32::to_string).collect();
    out.extend_from_slice(parts.join(".").as_bytes());
    let Some(text) = &s.text else {
        return;
    };
    if !s.part.is_empty() {
        out.push(b'.');
    }
    match text {
        SectionText::Header => out.extend_from_slice(b"HEADER"),
        SectionText::Text => out.extend_from_slice(b"TEXT"),
        SectionText::Mime => out.extend_from_slice(b"MIME"),
        SectionText::HeaderFields { not, fields } => {
            out.extend_from_slice(if *not {
                b"HEADER.FIELDS.NOT ("
            } else {
                b"HEADER.FIELDS ("
            });
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                let name = f.to_ascii_uppercase();
                // As atoms, the way clients wrote them (and Dovecot answers).
                if !name.is_empty()
                    && name
                        .iter()
                        .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(b))
                {
                    out.extend_from_slice(&name);
                } else {
                    response::string(out, &name);
                }
            }
            out.push(b')');
        }
    }
}

fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_sections() -> Vec<Section> {
        let fields = |not| SectionText::HeaderFields {
            not,
            fields: vec![b"Subject".to_vec(), b"From".to_vec()],
        };
        [
            Some(SectionText::Header),
            Some(fields(false)),
            Some(fields(true)),
        ]
        .into_iter()
        .map(|text| Section { part: vec![], text })
        .collect()
    }

    #[test]
    fn the_header_alone_cuts_the_same_sections_as_the_whole_message() {
        let messages: [&[u8]; 6] = [
            b"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n",
            b"From: a@b\nSubject: bare LFs\n\nbody\nmore\n",
            b"Subject: no body, no empty line\r\nFrom: a@b\r\n",
            b"Subject: folded\r\n  line\r\nX-Other: 1\r\n\r\n\r\nbody after an empty line\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\nSubject: m\r\n\r\n--x\r\n\
              Subject: inner\r\n\r\npart\r\n--x--\r\n",
            b"",
        ];
        for raw in messages {
            let whole = Loaded::new(raw.to_vec());
            let header = Loaded::header(raw.to_vec());
            for s in header_sections() {
                assert_eq!(whole.section(&s), header.section(&s), "{s:?} of {raw:?}");
            }
        }
    }

    #[test]
    fn only_top_level_header_items_skip_the_body() {
        let section = |part: Vec<u32>, text| FetchAttr::Section {
            section: Section { part, text },
            partial: None,
            peek: true,
        };
        let header = section(vec![], Some(SectionText::Header));
        assert!(needs(&[FetchAttr::Uid, FetchAttr::Rfc822Size, header.clone()]).header_only);
        assert!(needs(&[FetchAttr::Rfc822Header]).header_only);
        for other in [
            section(vec![1], Some(SectionText::Header)),
            section(vec![], Some(SectionText::Text)),
            section(vec![], None),
            FetchAttr::Rfc822,
            FetchAttr::BinarySize(vec![]),
        ] {
            assert!(
                !needs(&[header.clone(), other.clone()]).header_only,
                "{other:?}"
            );
        }
        assert!(!needs(&[FetchAttr::Flags]).header_only);
    }
}
