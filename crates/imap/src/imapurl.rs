//! IMAP URLs (RFC 5092) as CATENATE names a part of a stored message
//! (RFC 4469 5): `imap://user@host/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2/;PARTIAL=0.1024`,
//! or the same from the first `/` on. Only what names a message is read;
//! URLAUTH (RFC 4467) is not offered, so a URL that carries it is refused.

/// A message, or a part of one, that a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// The user of `imap://user@host/`, when given.
    pub user: Option<String>,
    /// The mailbox name, percent-decoded (UTF-8, RFC 5092 3.3).
    pub mailbox: String,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    /// The section as FETCH BODY[...] takes it, percent-decoded.
    pub section: Option<String>,
    /// `;PARTIAL=offset[.length]` (RFC 5550): bytes from offset, at most
    /// length of them.
    pub partial: Option<(u64, Option<u64>)>,
}

/// Parses an absolute or server-relative IMAP URL naming a message;
/// the error says what is wrong with it.
pub fn parse(url: &str) -> Result<MessageUrl, String> {
    let (user, path) = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("imap://") => {
            let rest = &url[7..];
            let (authority, path) = rest.split_at(rest.find('/').ok_or("no mailbox in the URL")?);
            let user = match authority.rsplit_once('@') {
                Some((userinfo, _)) => {
                    // ;AUTH=mechanism may follow the user (RFC 5092 3.2).
                    let name = userinfo.split(';').next().unwrap_or_default();
                    Some(decode(name)?)
                }
                None => None,
            };
            (user, path)
        }
        _ if url.starts_with('/') => (None, url),
        _ => return Err("an IMAP URL starts with imap:// or /".into()),
    };
    let path = &path[1..];
    // The mailbox may hold the hierarchy's "/": it ends where "/;" starts
    // the message's part (RFC 5092 6).
    let (mailbox_segment, rest) = match path.find("/;") {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (path, ""),
    };
    let segments = rest.split('/').filter(|s| !s.is_empty());
    let mut mailbox_params = mailbox_segment.split(';');
    let mailbox = decode(mailbox_params.next().unwrap_or_default())?;
    if mailbox.is_empty() {
        return Err("no mailbox in the URL".into());
    }
    let mut parsed = MessageUrl {
        user,
        mailbox,
        uidvalidity: None,
        uid: 0,
        section: None,
        partial: None,
    };
    for p in mailbox_params {
        match param(p)? {
            ("UIDVALIDITY", v) => parsed.uidvalidity = Some(number(v)?),
            (name, _) => return Err(format!(";{name} is not taken after the mailbox")),
        }
    }
    for segment in segments {
        for p in segment.split(';').filter(|p| !p.is_empty()) {
            match param(p)? {
                ("UID", v) => parsed.uid = number(v)?,
                ("SECTION", v) => parsed.section = Some(decode(v)?),
                ("PARTIAL", v) => {
                    let (offset, length) = match v.split_once('.') {
                        Some((o, l)) => (o, Some(number(l)?)),
                        None => (v, None),
                    };
                    parsed.partial = Some((number(offset)?, length));
                }
                ("URLAUTH", _) => return Err("URLAUTH is not offered here".into()),
                (name, _) => return Err(format!(";{name} is not taken here")),
            }
        }
    }
    if parsed.uid == 0 {
        return Err("the URL names no message (;UID=)".into());
    }
    Ok(parsed)
}

/// `NAME=value`, the name in upper case.
fn param(p: &str) -> Result<(&'static str, &str), String> {
    let (name, value) = p
        .split_once('=')
        .ok_or_else(|| format!("{p:?} is not NAME=value"))?;
    for known in [
        "UIDVALIDITY",
        "UID",
        "SECTION",
        "PARTIAL",
        "URLAUTH",
        "EXPIRE",
    ] {
        if name.eq_ignore_ascii_case(known) {
            return Ok((known, value));
        }
    }
    Err(format!(";{name} is not an IMAP URL parameter"))
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a number"));
    }
    s.parse().map_err(|_| format!("{s} is too large"))
}

/// Undoes %XX escapes; the result must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a % escape is cut short")?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| format!("%{hex} is not an escape"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's escapes are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_urls() {
        let u = parse("imap://bob;AUTH=*@mail.example.org/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2/;PARTIAL=10.20").unwrap();
        assert_eq!(
            u,
            MessageUrl {
                user: Some("bob".into()),
                mailbox: "INBOX".into(),
                uidvalidity: Some(385759045),
                uid: 20,
                section: Some("1.2".into()),
                partial: Some((10, Some(20))),
            }
        );
        let u = parse("/Stuff%20and%20more/D%C3%A9j%C3%A0;UIDVALIDITY=7/;UID=3").unwrap();
        assert_eq!(u.mailbox, "Stuff and more/Déjà");
        assert_eq!((u.uid, u.section, u.partial, u.user), (3, None, None, None));
        let u = parse("/INBOX/;UID=3/;SECTION=HEADER.FIELDS%20(SUBJECT)").unwrap();
        assert_eq!(u.section.as_deref(), Some("HEADER.FIELDS (SUBJECT)"));
    }

    #[test]
    fn broken_urls_say_why() {
        for url in [
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/;URLAUTH=anonymous:internal:abc",
            "/INBOX/;UID=1/;COLOUR=blue",
            "/INBOX;UID=1",
            "/%ZZ/;UID=1",
            "/%C3/;UID=1",
            "imap://host",
            "/;UID=1",
        ] {
            assert!(parse(url).is_err(), "{url}");
        }
    }
}
