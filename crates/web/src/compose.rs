//! Writing mail: the compose form's fields, prefilled for a reply or a
//! forward, and the message built from them (mail-builder). Sending goes
//! through the outgoing pipeline like the submission door's mail; a draft is
//! stored in Drafts like an IMAP client's.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::mime::{BodyPart, MimePart};
use mail_parser::{Message, MimeHeaders};

/// Addresses one field may hold: a bound on what one form can send to.
pub const MAX_RECIPIENTS: usize = 100;

/// The compose form.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    /// The Message-ID replied to, with its angle brackets.
    pub in_reply_to: String,
    /// Space-separated Message-IDs, with their angle brackets.
    pub references: String,
    pub attachments: Vec<Upload>,
}

/// A file attached in the form (or the message forwarded as one).
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// An attachment of a stored message (a draft taken up again), as the
    /// form would have sent it: its name, its `type/subtype`, its decoded
    /// bytes (a forwarded message/rfc822 stays the message itself).
    pub fn of_part(part: &mail_parser::MessagePart<'_>) -> Upload {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        Upload {
            name: crate::message::attachment_name(part),
            content_type,
            bytes: part.contents().to_vec(),
        }
    }

    /// The attachment's MIME part. A forwarded message stays readable as
    /// message/rfc822, which RFC 2046 5.2.1 allows only in 7bit, 8bit or
    /// binary, never base64; every other file goes in base64 under the
    /// type the browser gave, when that is a plain `type/subtype`.
    fn part(&self) -> MimePart<'_> {
        let name = self.name.clone();
        if self.content_type == "message/rfc822" {
            let encoding = if self.bytes.is_ascii() {
                "7bit"
            } else {
                "8bit"
            };
            return MimePart::new(
                ContentType::new("message/rfc822"),
                BodyPart::Binary(self.bytes.as_slice().into()),
            )
            .attachment(name)
            .transfer_encoding(encoding);
        }
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        let ct = match self.content_type.split_once('/') {
            Some((t, st)) if plain(t) && plain(st) => self.content_type.clone(),
            _ => "application/octet-stream".to_string(),
        };
        MimePart::new(
            ContentType::new(ct),
            BodyPart::Binary(self.bytes.as_slice().into()),
        )
        .attachment(name)
    }
}

impl Draft {
    /// Every recipient (To, Cc, Bcc), checked; the error says which one is
    /// not an address.
    pub fn recipients(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for field in [&self.to, &self.cc, &self.bcc] {
            for a in addresses(field)? {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        if out.is_empty() {
            return Err("Add at least one recipient.".into());
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(format!("At most {MAX_RECIPIENTS} recipients per message."));
        }
        Ok(out)
    }

    /// The message as it is sent and stored: `from` is the account's
    /// address; `host` names the Message-ID's right side.
    pub fn build(&self, from: &str, host: &str) -> Result<Vec<u8>, String> {
        let mut m = MessageBuilder::new()
            .from(from.to_string())
            .subject(self.subject.trim().to_string())
            .date(Date::now())
            // As the submission path makes them (RFC 5322 3.6.4).
            .message_id(format!("{}@{host}", pipeline::queue_id().to_lowercase()));
        for (field, value) in [("to", &self.to), ("cc", &self.cc), ("bcc", &self.bcc)] {
            let list = addresses(value)?;
            if list.is_empty() {
                continue;
            }
            let a = Address::new_list(list.into_iter().map(Address::from).collect());
            m = match field {
                "to" => m.to(a),
                "cc" => m.cc(a),
                _ => m.bcc(a),
            };
        }
        if let Some(id) = message_ids(&self.in_reply_to).into_iter().next() {
            m = m.in_reply_to(MessageId::new(id));
        }
        let refs = message_ids(&self.references);
        if !refs.is_empty() {
            m = m.references(MessageId::new_list(refs.into_iter()));
        }
        m = if self.attachments.is_empty() {
            m.text_body(normalise(&self.body))
        } else {
            let text = MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                BodyPart::Text(normalise(&self.body).into()),
            );
            let parts = std::iter::once(text)
                .chain(self.attachments.iter().map(Upload::part))
                .collect();
            m.body(MimePart::new(
                ContentType::new("multipart/mixed"),
                BodyPart::Multipart(parts),
            ))
        };
        m.write_to_vec()
            .map_err(|e| format!("The message could not be put together: {e}"))
    }
}

/// A reply to `m`: to its Reply-To or From; with `all`, to its other
/// recipients too, less `me`; the text quoted (RFC 5322 3.6.4 for the
/// threading fields).
pub fn reply(m: &Message<'_>, all: bool, me: &str) -> Draft {
    let reply_to = m.reply_to().or(m.from());
    let mut to = plain_addresses(reply_to);
    let mut cc = Vec::new();
    if all {
        for a in plain_addresses(m.to())
            .into_iter()
            .chain(plain_addresses(m.cc()))
        {
            if !a.eq_ignore_ascii_case(me) && !to.contains(&a) && !cc.contains(&a) {
                cc.push(a);
            }
        }
    }
    to.retain(|a| !(all && a.eq_ignore_ascii_case(me) && !cc.is_empty()));
    let id = m.message_id().map(|i| format!("<{i}>")).unwrap_or_default();
    let mut references = header_ids(m.references());
    if !id.is_empty() {
        references.push(id.clone());
    }
    let who = plain_addresses(m.from()).join(", ");
    let when = m.date().map(|d| d.to_rfc822()).unwrap_or_default();
    let quoted: String = m
        .body_text(0)
        .unwrap_or_default()
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    Draft {
        to: to.join(", "),
        cc: cc.join(", "),
        subject: prefixed("Re:", m.subject().unwrap_or_default()),
        body: format!("\n\nOn {when}, {who} wrote:\n{quoted}"),
        in_reply_to: id,
        references: references.join(" "),
        ..Draft::default()
    }
}

/// A forward of `m`: inline (its header summary and text in the body) or
/// as an attachment (`raw` as message/rfc822).
pub fn forward(m: &Message<'_>, raw: &[u8], attached: bool) -> Draft {
    let subject = prefixed("Fwd:", m.subject().unwrap_or_default());
    if attached {
        return Draft {
            attachments: vec![Upload {
                name: format!("{}.eml", file_safe(m.subject().unwrap_or("message"))),
                content_type: "message/rfc822".into(),
                bytes: raw.to_vec(),
            }],
            subject,
            ..Draft::default()
        };
    }
    let body = format!(
        "\n\n---------- Forwarded message ----------\nFrom: {}\nDate: {}\nSubject: {}\nTo: {}\n\n{}",
        plain_addresses(m.from()).join(", "),
        m.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        m.subject().unwrap_or_default(),
        plain_addresses(m.to()).join(", "),
        m.body_text(0).unwrap_or_default()
    );
    Draft {
        subject,
        body,
        ..Draft::default()
    }
}

/// The addresses of a To/Cc/Bcc field: separated by commas or semicolons,
/// each `name <a@b>` or `a@b`; an error names the first that is not one.
pub fn addresses(field: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in field.split([',', ';']) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let addr = match (item.rfind('<'), item.rfind('>')) {
            (Some(l), Some(r)) if l < r => item[l + 1..r].trim(),
            _ => item,
        };
        if !valid_address(addr) {
            return Err(format!(
                "“{}” is not an email address.",
                item.chars().take(80).collect::<String>()
            ));
        }
        out.push(addr.to_string());
        if out.len() > MAX_RECIPIENTS {
            return Err(format!("At most {MAX_RECIPIENTS} recipients per message."));
        }
    }
    Ok(out)
}

fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.len() <= 254
        && a.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"".contains(c))
}

fn plain_addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// The Message-IDs of an In-Reply-To or References field, with their
/// angle brackets (mail-parser keeps one as text and several as a list).
pub fn header_ids(h: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match h.as_text_list() {
        Some(list) => list.iter().map(|r| format!("<{r}>")).collect(),
        None => h
            .as_text()
            .map(|r| vec![format!("<{r}>")])
            .unwrap_or_default(),
    }
}

fn message_ids(field: &str) -> Vec<String> {
    field
        .split_whitespace()
        .map(|i| i.trim_start_matches('<').trim_end_matches('>'))
        .filter(|i| !i.is_empty() && i.contains('@') && !i.contains(['<', '>']))
        .map(str::to_string)
        .collect()
}

/// `Re: subject`, without stacking prefixes.
fn prefixed(prefix: &str, subject: &str) -> String {
    let s = subject.trim();
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        s.to_string()
    } else {
        format!("{prefix} {s}")
    }
}

/// A browser's textarea sends CRLF or LF; the message gets CRLF (RFC 5322
/// 2.3), which mail-builder writes from LF.
fn normalise(body: &str) -> String {
    body.replace("\r\n", "\n").replace('\r', "\n")
}

fn file_safe(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let t = cleaned.trim();
    if t.is_empty() {
        "message".into()
    } else {
        t.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_and_deduplicated() {
        let d = Draft {
            to: "Ann <ann@example.test>, bo@example.test".into(),
            cc: "bo@example.test".into(),
            ..Draft::default()
        };
        assert_eq!(
            d.recipients().unwrap(),
            ["ann@example.test", "bo@example.test"]
        );
        let bad = Draft {
            to: "ann@example.test, not an address".into(),
            ..Draft::default()
        };
        assert!(bad.recipients().unwrap_err().contains("not an address"));
        assert!(Draft::default().recipients().is_err());
        assert!(addresses("a@b.test\r\nBcc: x@y.test").is_err());
    }

    #[test]
    fn a_reply_threads_quotes_and_reaches_the_others_with_reply_all() {
        let raw = b"From: Ann <ann@example.test>\r\nTo: me@example.test, bo@example.test\r\n\
Cc: cy@example.test\r\nSubject: Plans\r\nMessage-ID: <p1@example.test>\r\n\
References: <p0@example.test>\r\n\r\nSee you at noon.\r\n";
        let m = mime::message::parse(raw).unwrap();
        let one = reply(&m, false, "me@example.test");
        assert_eq!(one.to, "ann@example.test");
        assert_eq!(one.cc, "");
        assert_eq!(one.subject, "Re: Plans");
        assert_eq!(one.in_reply_to, "<p1@example.test>");
        assert_eq!(one.references, "<p0@example.test> <p1@example.test>");
        assert!(one.body.contains("> See you at noon."), "{}", one.body);
        let all = reply(&m, true, "me@example.test");
        assert_eq!(all.cc, "bo@example.test, cy@example.test");
        let built = all.build("me@example.test", "example.test").unwrap();
        let text = String::from_utf8_lossy(&built);
        assert!(text.contains("In-Reply-To: <p1@example.test>"), "{text}");
        assert!(
            text.contains("References: <p0@example.test> <p1@example.test>"),
            "{text}"
        );
        assert!(text.contains("Subject: Re: Plans"), "{text}");
    }

    #[test]
    fn a_forward_as_attachment_carries_the_original() {
        let raw = b"From: ann@example.test\r\nSubject: Re: Fwd: x\r\n\r\nbody\r\n";
        let m = mime::message::parse(raw).unwrap();
        let f = forward(&m, raw, true);
        assert_eq!(f.subject, "Fwd: Re: Fwd: x");
        assert_eq!(f.attachments[0].content_type, "message/rfc822");
        assert_eq!(f.attachments[0].bytes, raw);
        let d = Draft {
            to: "bo@example.test".into(),
            ..f
        };
        let built = String::from_utf8_lossy(&d.build("me@example.test", "example.test").unwrap())
            .into_owned();
        assert!(built.contains("message/rfc822"), "{built}");
        assert!(built.contains("Subject: Re: Fwd: x"), "{built}");
    }
}
