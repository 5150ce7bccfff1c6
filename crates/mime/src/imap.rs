//! ENVELOPE and BODYSTRUCTURE (RFC 9051 7.5.2) as [`Value`] trees.

use crate::address::envelope_addresses;
use crate::header::{Header, for_humans};
use crate::part::{Children, Part};
use crate::rfc822::{self, Cursor, More};
use crate::value::Value;

/// ENVELOPE of the message whose header is `header`.
pub fn envelope(data: &[u8], header: &Header) -> Value {
    let text = |name: &str| Value::nstr(header.get(data, name));
    let addresses = |name: &str| {
        header
            .get(data, name)
            .map(|v| envelope_addresses(&v))
            .unwrap_or(Value::Nil)
    };
    let from = addresses("From");
    // RFC 9051 7.5.2: sender and reply-to default to from.
    let or_from = |v: Value| if v == Value::Nil { from.clone() } else { v };
    Value::List(vec![
        text("Date"),
        Value::nstr(header.get(data, "Subject").map(|s| for_humans(&s))),
        from.clone(),
        or_from(addresses("Sender")),
        or_from(addresses("Reply-To")),
        addresses("To"),
        addresses("Cc"),
        addresses("Bcc"),
        text("In-Reply-To"),
        text("Message-ID"),
    ])
}

/// BODYSTRUCTURE of `part`; with `extensions` false, the BODY form.
pub fn bodystructure(data: &[u8], part: &Part, extensions: bool) -> Value {
    let h = &part.header;
    let mut out = Vec::new();
    if part.is_multipart() {
        for child in part.children() {
            out.push(bodystructure(data, child, extensions));
        }
        if out.is_empty() {
            // IMAP needs at least one part; show an empty text part.
            out.push(empty_text_part(extensions));
        }
        let ct = part.content_type.as_ref();
        out.push(Value::str(
            ct.map(|c| c.subtype.clone()).unwrap_or(b"mixed".to_vec()),
        ));
        if extensions {
            out.push(params_value(ct.map(|c| c.params.as_slice()).unwrap_or(&[])));
            out.extend(common_extensions(data, h));
        }
        return Value::List(out);
    }

    let (ty, subtype) = match &part.content_type {
        Some(ct) => (ct.ty.clone(), ct.subtype.clone()),
        None if part.digest_child => (b"message".to_vec(), b"rfc822".to_vec()),
        None => (b"text".to_vec(), b"plain".to_vec()),
    };
    let is_text = ty.eq_ignore_ascii_case(b"text");
    out.push(Value::str(ty));
    out.push(Value::str(subtype));
    let mut params = part
        .content_type
        .as_ref()
        .map(|c| c.params.clone())
        .unwrap_or_default();
    // RFC 2045 5.2: a text part without a charset is us-ascii; say so.
    if is_text
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"charset"))
    {
        params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
    }
    out.push(params_value(&params));
    out.push(Value::nstr(h.get(data, "Content-ID")));
    out.push(Value::nstr(h.get(data, "Content-Description")));
    out.push(Value::str(
        h.get(data, "Content-Transfer-Encoding")
            .and_then(|v| transfer_encoding(&v))
            .unwrap_or(b"7bit".to_vec()),
    ));
    let body = &data[part.body.clone()];
    out.push(Value::Num(body.len() as u64));
    if let Children::Message(inner) = &part.children {
        out.push(envelope(data, &inner.header));
        out.push(bodystructure(data, inner, extensions));
        out.push(Value::Num(count_lines(body)));
    } else if is_text {
        out.push(Value::Num(count_lines(body)));
    }
    if extensions {
        out.push(Value::nstr(h.get(data, "Content-MD5")));
        out.extend(common_extensions(data, h));
    }
    Value::List(out)
}

fn empty_text_part(extensions: bool) -> Value {
    let mut v = vec![
        Value::str("text"),
        Value::str("plain"),
        params_value(&[(b"charset".to_vec(), b"us-ascii".to_vec())]),
        Value::Nil,
        Value::Nil,
        Value::str("7bit"),
        Value::Num(0),
        Value::Num(0),
    ];
    if extensions {
        v.extend([Value::Nil, Value::Nil, Value::Nil, Value::Nil]);
    }
    Value::List(v)
}

/// Disposition, language and location: the extension data every part has.
fn common_extensions(data: &[u8], h: &Header) -> [Value; 3] {
    let disposition = h
        .get(data, "Content-Disposition")
        .map(|v| {
            let mut c = Cursor::new(&v);
            c.skip_lwsp();
            let mut kind = Vec::new();
            if c.mime_token(&mut kind) == More::Broken {
                return Value::Nil;
            }
            Value::List(vec![
                Value::str(kind),
                params_value(&rfc822::parameters(&mut c)),
            ])
        })
        .unwrap_or(Value::Nil);
    let language = h
        .get(data, "Content-Language")
        .map(|v| {
            // RFC 3282: a comma-separated list of language tags.
            let mut c = Cursor::new(&v);
            c.skip_lwsp();
            let mut langs = Vec::new();
            loop {
                let mut tag = Vec::new();
                if c.atom(&mut tag).is_none() {
                    break;
                }
                langs.push(Value::str(tag));
                if c.peek() != Some(b',') {
                    break;
                }
                c.i += 1;
                c.skip_lwsp();
            }
            if langs.is_empty() {
                Value::Nil
            } else {
                Value::List(langs)
            }
        })
        .unwrap_or(Value::Nil);
    let location = Value::nstr(h.get(data, "Content-Location"));
    [disposition, language, location]
}

/// The Content-Transfer-Encoding token, if the value is one token.
fn transfer_encoding(v: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor::new(v);
    c.skip_lwsp();
    let mut token = Vec::new();
    let more = c.mime_token(&mut token);
    (more == More::End && !token.is_empty()).then_some(token)
}

fn params_value(params: &[(Vec<u8>, Vec<u8>)]) -> Value {
    if params.is_empty() {
        return Value::Nil;
    }
    Value::List(
        params
            .iter()
            .flat_map(|(k, v)| [Value::str(k.clone()), Value::str(v.clone())])
            .collect(),
    )
}

/// Lines of a body as Dovecot counts them: its line feeds (a last line
/// without one is not counted).
fn count_lines(body: &[u8]) -> u64 {
    body.iter().filter(|&&b| b == b'\n').count() as u64
}

/// BODY from a BODYSTRUCTURE: the same tree without extension data.
pub fn body_from_bodystructure(bs: &Value) -> Value {
    let Some(items) = bs.as_list() else {
        return bs.clone();
    };
    if matches!(items.first(), Some(Value::List(_))) {
        // Multipart: the parts, then the subtype; extensions follow.
        let mut out: Vec<Value> = Vec::new();
        for v in items {
            match v {
                Value::List(_) => out.push(body_from_bodystructure(v)),
                other => {
                    out.push(other.clone());
                    break;
                }
            }
        }
        return Value::List(out);
    }
    let is = |i: usize, s: &str| {
        items
            .get(i)
            .and_then(Value::as_bytes)
            .is_some_and(|v| v.eq_ignore_ascii_case(s.as_bytes()))
    };
    let mut out: Vec<Value> = items.iter().take(7).cloned().collect();
    if is(0, "message") && is(1, "rfc822") && items.len() >= 10 {
        out.push(items[7].clone());
        out.push(body_from_bodystructure(&items[8]));
        out.push(items[9].clone());
    } else if is(0, "text") && items.len() >= 8 {
        out.push(items[7].clone());
    }
    Value::List(out)
}
