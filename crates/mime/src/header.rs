//! Header fields of one part: split, unfolded, looked up by name.

use std::ops::Range;

/// One header field: its name and its raw value (after the colon, folding
/// and all), as byte ranges into the message.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
    /// The whole field, name to the end of its last line (with the CRLF).
    pub whole: Range<usize>,
}

/// The header of a part: where it ends and the fields in it.
#[derive(Debug, Clone)]
pub struct Header {
    pub fields: Vec<Field>,
    /// The header bytes, including the empty line that ends it if there is one.
    pub range: Range<usize>,
}

/// Limits what one header can cost: fields past this number are ignored.
pub const MAX_FIELDS: usize = 10_000;

impl Header {
    /// Parses the header starting at `start`; it ends after the first empty
    /// line, or at `end` when there is none.
    pub fn parse(data: &[u8], start: usize, end: usize) -> Header {
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = start;
        while pos < end {
            let line_end = memchr(b'\n', &data[pos..end])
                .map(|i| pos + i + 1)
                .unwrap_or(end);
            let line = &data[pos..line_end];
            if line == b"\r\n" || line == b"\n" {
                return Header {
                    fields,
                    range: start..line_end,
                };
            }
            if matches!(line[0], b' ' | b'\t') {
                // Continuation of the previous field.
                if let Some(f) = fields.last_mut() {
                    f.value.end = line_end;
                    f.whole.end = line_end;
                }
            } else if let Some(colon) = memchr(b':', line) {
                let name_end = trim_end_ws(line, colon);
                if name_end > 0 && fields.len() < MAX_FIELDS {
                    fields.push(Field {
                        name: pos..pos + name_end,
                        value: pos + colon + 1..line_end,
                        whole: pos..line_end,
                    });
                }
            }
            // A line with no colon is not a field; it is skipped, as Dovecot does.
            pos = line_end;
        }
        Header {
            fields,
            range: start..end,
        }
    }

    /// The raw value of the first field called `name` (case-insensitive).
    pub fn first<'a>(&self, data: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| data[f.name.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| &data[f.value.clone()])
    }

    /// The first field called `name`, as [`raw_value`].
    pub fn get(&self, data: &[u8], name: &str) -> Option<Vec<u8>> {
        self.first(data, name).map(raw_value)
    }
}

/// A field value as IMAP shows it: the white space after the colon dropped,
/// line breaks removed (the folding white space itself stays).
pub fn raw_value(value: &[u8]) -> Vec<u8> {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    value[start..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// A value for people to read (subjects, display names): runs of white
/// space and line breaks become one space, none at either end, and NUL
/// becomes 0x80 so the text stays a valid IMAP string.
pub fn for_humans(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut space = false;
    for &b in value {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => space = !out.is_empty(),
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(if b == 0 { 0x80 } else { b });
            }
        }
    }
    out
}

fn trim_end_ws(line: &[u8], mut end: usize) -> usize {
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    end
}

pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}
