//! RFC 5322 address lists as IMAP ENVELOPE address structures: `(name adl
//! mailbox host)`, with RFC 3501 group markers. Names stay as sent (encoded
//! words included): decoding is the client's business.

use crate::header::for_humans;
use crate::lex::{ADDRESS_SPECIALS, Token, tokens};
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

impl Address {
    fn to_value(&self) -> Value {
        Value::List(vec![
            Value::nstr(self.name.as_deref().map(for_humans)),
            Value::nstr(self.route.clone()),
            Value::nstr(self.mailbox.clone()),
            Value::nstr(self.host.clone()),
        ])
    }
}

/// Most addresses taken from one header field.
pub const MAX_ADDRESSES: usize = 1000;

/// Parses an address list into ENVELOPE form; NIL when it holds none.
pub fn envelope_addresses(value: &[u8]) -> Value {
    let list = parse_list(value);
    if list.is_empty() {
        Value::Nil
    } else {
        Value::List(list.iter().map(Address::to_value).collect())
    }
}

/// The addresses a message is written to (every To, Cc and Bcc field of
/// its header), as `local@domain` in lower case, each once: the people a
/// user corresponds with.
pub fn recipients(raw: &[u8]) -> Vec<String> {
    let header = crate::header::Header::parse(raw, 0, raw.len());
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &header.fields {
        let name = &raw[f.name.clone()];
        if !["to", "cc", "bcc"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            continue;
        }
        for a in parse_list(&raw[f.value.clone()]) {
            let (Some(mailbox), Some(host)) = (&a.mailbox, &a.host) else {
                continue;
            };
            let address = format!(
                "{}@{}",
                String::from_utf8_lossy(mailbox),
                String::from_utf8_lossy(host)
            )
            .to_lowercase();
            if seen.insert(address.clone()) {
                out.push(address);
                if out.len() == MAX_ADDRESSES {
                    return out;
                }
            }
        }
    }
    out
}

/// The addresses of an address list, with group start `(NIL NIL name NIL)`
/// and end `(NIL NIL NIL NIL)` markers.
pub fn parse_list(value: &[u8]) -> Vec<Address> {
    let toks = tokens(value, ADDRESS_SPECIALS);
    let mut p = ListParser {
        t: &toks,
        i: 0,
        out: Vec::new(),
    };
    p.list();
    p.out
}

struct ListParser<'a> {
    t: &'a [Token],
    i: usize,
    out: Vec<Address>,
}

impl ListParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i)
    }

    fn list(&mut self) {
        let mut in_group = false;
        while self.i < self.t.len() && self.out.len() < MAX_ADDRESSES {
            match self.peek() {
                Some(Token::Special(b',')) => {
                    self.i += 1;
                    continue;
                }
                Some(Token::Special(b';')) => {
                    self.i += 1;
                    if in_group {
                        self.out.push(Address::default());
                        in_group = false;
                    }
                    continue;
                }
                _ => {}
            }
            let start = self.i;
            let phrase = self.phrase();
            match self.peek() {
                Some(Token::Special(b':')) if !in_group => {
                    self.i += 1;
                    self.out.push(Address {
                        mailbox: Some(phrase.unwrap_or_default()),
                        ..Address::default()
                    });
                    in_group = true;
                }
                Some(Token::Special(b'<')) => {
                    self.i += 1;
                    let mut a = self.angle_addr();
                    a.name = phrase;
                    self.out.push(a);
                }
                _ => {
                    self.i = start;
                    if let Some(a) = self.addr_spec() {
                        self.out.push(a);
                    } else {
                        // Nothing usable up to the next separator: skip it.
                        self.skip_to_separator();
                    }
                }
            }
        }
        if in_group {
            self.out.push(Address::default());
        }
    }

    /// A display name: words (atoms, quoted strings) joined by one space;
    /// comments in it are dropped.
    fn phrase(&mut self) -> Option<Vec<u8>> {
        let mut words: Vec<Vec<u8>> = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Token::Atom(w) | Token::Quoted(w) => words.push(w.clone()),
                Token::Comment(_) => {}
                _ => break,
            }
            self.i += 1;
        }
        (!words.is_empty()).then(|| words.join(&b' '))
    }

    /// After `<`: `[@route,@route:]local@domain>`.
    fn angle_addr(&mut self) -> Address {
        let mut a = Address::default();
        // Obsolete source route.
        if matches!(self.peek(), Some(Token::Special(b'@'))) {
            let mut route = Vec::new();
            while let Some(t) = self.peek() {
                match t {
                    Token::Special(b':') => {
                        self.i += 1;
                        break;
                    }
                    Token::Special(b'>') => break,
                    Token::Special(c) => route.push(*c),
                    Token::Atom(w) | Token::DomainLiteral(w) | Token::Quoted(w) => {
                        route.extend_from_slice(w)
                    }
                    Token::Comment(_) => {}
                }
                self.i += 1;
            }
            a.route = Some(route);
        }
        let (mailbox, host) = self.local_at_domain(true);
        a.mailbox = Some(or_missing(mailbox, b"MISSING_MAILBOX"));
        a.host = Some(or_missing(host, b"MISSING_DOMAIN"));
        if matches!(self.peek(), Some(Token::Special(b'>'))) {
            self.i += 1;
        }
        a
    }

    fn addr_spec(&mut self) -> Option<Address> {
        // A comment before the address is not its name: `(c) a@b`.
        while let Some(Token::Comment(_)) = self.peek() {
            self.i += 1;
        }
        let start = self.i;
        let (mailbox, host) = self.local_at_domain(false);
        if self.i == start {
            return None;
        }
        // A trailing comment names the address: `a@b (Name)`.
        let mut name = None;
        while let Some(Token::Comment(c)) = self.peek() {
            name = Some(c.clone());
            self.i += 1;
        }
        Some(Address {
            name,
            route: None,
            mailbox: Some(or_missing(mailbox, b"MISSING_MAILBOX")),
            host: Some(or_missing(host, b"MISSING_DOMAIN")),
        })
    }

    /// `local@domain`; pieces that are missing come back empty.
    fn local_at_domain(&mut self, in_angle: bool) -> (Vec<u8>, Vec<u8>) {
        let mut local = Vec::new();
        let mut domain = Vec::new();
        let mut at = false;
        while let Some(t) = self.peek() {
            match t {
                Token::Special(b'@') if !at => at = true,
                Token::Special(b'>') if in_angle => break,
                Token::Special(b',' | b';' | b'<' | b'>' | b':') => break,
                Token::Special(c) => (if at { &mut domain } else { &mut local }).push(*c),
                Token::Atom(w) | Token::DomainLiteral(w) => {
                    (if at { &mut domain } else { &mut local }).extend_from_slice(w)
                }
                Token::Quoted(w) => {
                    (if at { &mut domain } else { &mut local }).extend_from_slice(w)
                }
                Token::Comment(_) if !in_angle => break,
                Token::Comment(_) => {}
            }
            self.i += 1;
        }
        (local, domain)
    }

    fn skip_to_separator(&mut self) {
        while let Some(t) = self.peek() {
            if matches!(t, Token::Special(b',' | b';')) {
                break;
            }
            self.i += 1;
        }
    }
}

/// What Dovecot (and so clients used to it) show for a missing part.
fn or_missing(v: Vec<u8>, missing: &[u8]) -> Vec<u8> {
    if v.is_empty() { missing.to_vec() } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Address {
        let l = parse_list(s.as_bytes());
        assert_eq!(l.len(), 1, "{s}: {l:?}");
        l[0].clone()
    }

    fn b(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn common_forms() {
        let a = one("\"Bob Brown\" <bob@example.net>");
        assert_eq!(
            (a.name, a.mailbox, a.host),
            (b("Bob Brown"), b("bob"), b("example.net"))
        );
        let a = one("bob@example.net (Bob)");
        assert_eq!((a.name, a.mailbox), (b("Bob"), b("bob")));
        let a = one("=?utf-8?q?B=C3=B6b?= <bob@x.test>");
        assert_eq!(a.name, b("=?utf-8?q?B=C3=B6b?="));
        let a = one("<@route.test,@b.test:bob@x.test>");
        assert_eq!((a.route, a.mailbox), (b("@route.test,@b.test"), b("bob")));
    }

    #[test]
    fn groups() {
        let l = parse_list(b"Team: a@x.test, b@y.test;, c@z.test");
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].mailbox, b("Team"));
        assert_eq!(l[0].host, None);
        assert_eq!(l[3], Address::default());
        assert_eq!(l[4].mailbox, b("c"));
        let l = parse_list(b"undisclosed-recipients:;");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn garbage_is_bounded() {
        let junk = ",".repeat(100_000) + &"a@b,".repeat(5000);
        assert_eq!(parse_list(junk.as_bytes()).len(), MAX_ADDRESSES);
        let _ = parse_list(b"<<<>>>@@@::;;\"unterminated");
    }
}

#[cfg(test)]
mod recipient_tests {
    use super::recipients;

    #[test]
    fn every_to_cc_and_bcc_once() {
        let raw = b"From: me@example.test\r\nTo: Carol <Carol@Example.NET>, dave@example.net\r\n\
Cc: team: erin@example.org, carol@example.net;\r\nBCC: <frank@example.com>\r\n\
Subject: to: nobody@example.com\r\n\r\nTo: body@example.com\r\n";
        assert_eq!(
            recipients(raw),
            [
                "carol@example.net",
                "dave@example.net",
                "erin@example.org",
                "frank@example.com"
            ]
        );
        assert!(recipients(b"To: undisclosed-recipients:;\r\n\r\n").is_empty());
    }
}
