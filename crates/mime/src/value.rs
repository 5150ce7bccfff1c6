//! IMAP data items as a tree (`NIL`, strings, numbers, lists), written in
//! IMAP syntax and read back from it. ENVELOPE and BODYSTRUCTURE are built as
//! trees, cached as their IMAP text, and parsed again when a door needs a
//! variant (BODY is BODYSTRUCTURE without the extension data).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Str(Vec<u8>),
    Num(u64),
    List(Vec<Value>),
}

impl Value {
    pub fn str(s: impl Into<Vec<u8>>) -> Value {
        Value::Str(s.into())
    }

    /// A string, or NIL for `None`.
    pub fn nstr(s: Option<impl Into<Vec<u8>>>) -> Value {
        s.map(|s| Value::Str(s.into())).unwrap_or(Value::Nil)
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The IMAP text of this value.
    pub fn to_imap(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Nil => out.extend_from_slice(b"NIL"),
            Value::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::Str(s) => write_string(out, s),
            Value::List(items) => {
                out.push(b'(');
                // RFC 9051 9: the lists that open a list are written without
                // spaces between them: addresses in `env-to = "(" 1*address
                // ")"`, parts in `body-type-mpart = 1*body SP subtype`.
                let leading = items
                    .iter()
                    .take_while(|v| matches!(v, Value::List(_)))
                    .count();
                for (i, v) in items.iter().enumerate() {
                    if i > 0 && i >= leading {
                        out.push(b' ');
                    }
                    v.write(out);
                }
                out.push(b')');
            }
        }
    }

    /// Parses one value from IMAP text (quoted strings, literals, atoms,
    /// numbers, NIL, lists). Returns `None` on malformed text.
    pub fn parse(text: &[u8]) -> Option<Value> {
        let mut p = Parser { s: text, i: 0 };
        let v = p.value(0)?;
        (p.i == text.len()).then_some(v)
    }
}

/// A quoted string when the bytes allow it, a literal otherwise (CR, LF and
/// 8-bit bytes cannot be quoted in IMAP4rev1). NUL, which no IMAP string may
/// hold, is written as 0x80, as Dovecot does.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s
        .iter()
        .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend(s.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    }
}

/// Deepest list nesting `Value::parse` follows.
const MAX_PARSE_DEPTH: usize = 512;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn value(&mut self, depth: usize) -> Option<Value> {
        match *self.s.get(self.i)? {
            b'(' => {
                if depth > MAX_PARSE_DEPTH {
                    return None;
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    match *self.s.get(self.i)? {
                        b')' => {
                            self.i += 1;
                            return Some(Value::List(items));
                        }
                        // Dovecot writes address lists as `(...)(...)`.
                        b' ' if !items.is_empty() => self.i += 1,
                        b'(' => {}
                        _ if items.is_empty() => {}
                        _ => return None,
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match *self.s.get(self.i)? {
                        b'"' => {
                            self.i += 1;
                            return Some(Value::Str(out));
                        }
                        b'\\' => {
                            out.push(*self.s.get(self.i + 1)?);
                            self.i += 2;
                        }
                        b => {
                            out.push(b);
                            self.i += 1;
                        }
                    }
                }
            }
            b'{' => {
                let close = self.i + self.s[self.i..].iter().position(|&b| b == b'}')?;
                let digits = std::str::from_utf8(&self.s[self.i + 1..close]).ok()?;
                let n: usize = digits.trim_end_matches('+').parse().ok()?;
                let start = close + 3;
                if self.s.get(close + 1..start)? != b"\r\n" {
                    return None;
                }
                let body = self.s.get(start..start.checked_add(n)?)?.to_vec();
                self.i = start + n;
                Some(Value::Str(body))
            }
            _ => {
                let start = self.i;
                while let Some(&b) = self.s.get(self.i) {
                    if b == b' ' || b == b')' || b == b'(' {
                        break;
                    }
                    self.i += 1;
                }
                let atom = &self.s[start..self.i];
                if atom.is_empty() {
                    return None;
                }
                if atom.eq_ignore_ascii_case(b"NIL") {
                    return Some(Value::Nil);
                }
                if atom.iter().all(u8::is_ascii_digit) {
                    return std::str::from_utf8(atom).ok()?.parse().ok().map(Value::Num);
                }
                Some(Value::Str(atom.to_vec()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = Value::List(vec![
            Value::str("text"),
            Value::Nil,
            Value::Num(42),
            Value::str("a \"q\" \\ b"),
            Value::str("caf\u{e9}"),
            Value::List(vec![]),
        ]);
        let text = v.to_imap();
        assert!(text.starts_with(b"(\"text\" NIL 42 \"a \\\"q\\\" \\\\ b\" {5}\r\ncaf"));
        assert_eq!(Value::parse(&text), Some(v));
        assert_eq!(Value::parse(b"(\"a\" NIL"), None);
        assert_eq!(Value::parse(b"{99}\r\nab"), None);
    }
}
