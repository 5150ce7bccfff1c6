//! Cursor-style parsing of structured MIME header values (RFC 2045
//! Content-Type and friends, RFC 2231 parameters), with the same recovery
//! rules as Dovecot's parser, so that broken headers give the same
//! BODYSTRUCTURE a client already sees from Dovecot: a broken parameter
//! list loses the parameters after the break, a type without a subtype
//! keeps the type.

pub struct Cursor<'a> {
    s: &'a [u8],
    pub i: usize,
}

/// What a step found after skipping trailing white space and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum More {
    Yes,
    End,
    Broken,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a [u8]) -> Cursor<'a> {
        Cursor { s, i: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skips white space, line breaks and (nested) comments.
    pub fn skip_lwsp(&mut self) -> More {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    if !self.skip_comment() {
                        return More::Broken;
                    }
                }
                _ => return More::Yes,
            }
        }
        More::End
    }

    fn skip_comment(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                b'\\' => self.i += 1,
                _ => {}
            }
        }
        false
    }

    /// A MIME token (RFC 2045: no specials, space or controls), appended to
    /// `out`; then white space is skipped.
    pub fn mime_token(&mut self, out: &mut Vec<u8>) -> More {
        let start = self.i;
        while let Some(b) = self.peek() {
            if !is_token_char(b) {
                break;
            }
            self.i += 1;
        }
        out.extend_from_slice(&self.s[start..self.i]);
        if self.at_end() {
            More::End
        } else {
            self.skip_lwsp()
        }
    }

    /// An RFC 5322 atom (atext), appended to `out`; then white space.
    pub fn atom(&mut self, out: &mut Vec<u8>) -> Option<More> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if !is_atext(b) {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        out.extend_from_slice(&self.s[start..self.i]);
        Some(self.skip_lwsp())
    }

    /// A quoted string starting at `"`, unescaped into `out`, line breaks
    /// removed. `Broken` when the closing quote is missing.
    pub fn quoted_string(&mut self, out: &mut Vec<u8>) -> More {
        self.i += 1; // the opening quote
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.i += 1;
                    return self.skip_lwsp();
                }
                b'\r' | b'\n' => self.i += 1,
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                        None => return More::Broken,
                    }
                }
                _ => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        More::Broken
    }
}

/// RFC 2045 token characters (8-bit bytes are let through, as Dovecot does).
fn is_token_char(b: u8) -> bool {
    b >= 0x80 || (b.is_ascii_alphanumeric() || b"!#$%&'*+-^_`{|}~.".contains(&b))
}

fn is_atext(b: u8) -> bool {
    b >= 0x80 || b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// `type/subtype` at the cursor. Returns the type, the subtype (empty when
/// missing) and whether parameters may follow.
pub fn content_type(c: &mut Cursor) -> (Vec<u8>, Vec<u8>, bool) {
    let mut ty = Vec::new();
    let mut subtype = Vec::new();
    if c.skip_lwsp() != More::Yes {
        return (ty, subtype, false);
    }
    if c.mime_token(&mut ty) != More::Yes || c.peek() != Some(b'/') {
        return (ty, subtype, false);
    }
    c.i += 1;
    if c.skip_lwsp() != More::Yes {
        return (ty, subtype, false);
    }
    let more = c.mime_token(&mut subtype);
    (ty, subtype, more != More::Broken)
}

/// Parameters `; name=value ...` at the cursor, RFC 2231 continuations
/// merged (`name*0*=...; name*1=...` becomes `name*`), in the order: plain
/// parameters as they came, then the merged ones by name.
pub fn parameters(c: &mut Cursor) -> Vec<(Vec<u8>, Vec<u8>)> {
    struct Piece {
        key: Vec<u8>,
        idx: u32,
        extended: bool,
        value: Vec<u8>,
    }
    let mut plain = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut last_idx = 0u32;
    loop {
        match parameter(c) {
            Param::End => break,
            Param::Broken => {
                if c.at_end() {
                    break;
                }
                c.i += 1;
            }
            Param::Ok(key, value) => match key.iter().position(|&b| b == b'*') {
                None => plain.push((key, value)),
                Some(star) => {
                    let rest = &key[star + 1..];
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    if digits > 0 {
                        last_idx = rest[..digits].iter().fold(0u32, |n, d| {
                            n.saturating_mul(10).saturating_add((d - b'0') as u32)
                        });
                    }
                    let tail = &rest[digits..];
                    // `name*` alone: the star marks an extended value.
                    let extended = rest.is_empty() || tail == b"*";
                    if tail.is_empty() || extended {
                        pieces.push(Piece {
                            key: key[..star].to_vec(),
                            idx: last_idx,
                            extended,
                            value,
                        });
                    } else {
                        plain.push((key, value));
                    }
                }
            },
        }
    }
    pieces.sort_by(|a, b| {
        a.key
            .to_ascii_lowercase()
            .cmp(&b.key.to_ascii_lowercase())
            .then(a.idx.cmp(&b.idx))
    });
    let mut i = 0;
    while i < pieces.len() {
        let mut j = i;
        let mut in_order = true;
        let mut any_extended = false;
        while j < pieces.len() && pieces[j].key.eq_ignore_ascii_case(&pieces[i].key) {
            in_order &= pieces[j].idx == (j - i) as u32;
            any_extended |= pieces[j].extended;
            j += 1;
        }
        let group = &pieces[i..j];
        if !in_order {
            // Missing indexes: not RFC 2231 after all; keep them as sent.
            for p in group {
                let mut key = p.key.clone();
                key.extend_from_slice(format!("*{}", p.idx).as_bytes());
                if p.extended {
                    key.push(b'*');
                }
                plain.push((key, p.value.clone()));
            }
        } else {
            let mut value = Vec::new();
            if any_extended && !group[0].extended {
                value.extend_from_slice(b"''");
            }
            for p in group {
                if any_extended && !p.extended {
                    percent_escape(&mut value, &p.value);
                } else {
                    value.extend_from_slice(&p.value);
                }
            }
            let mut key = group[0].key.clone();
            if any_extended {
                key.push(b'*');
            }
            plain.push((key, value));
        }
        i = j;
    }
    plain
}

enum Param {
    Ok(Vec<u8>, Vec<u8>),
    End,
    Broken,
}

/// One `; key=value`.
fn parameter(c: &mut Cursor) -> Param {
    let Some(b) = c.peek() else {
        return Param::End;
    };
    if b != b';' {
        return Param::Broken;
    }
    c.i += 1;
    if c.skip_lwsp() != More::Yes {
        return Param::Broken;
    }
    let mut key = Vec::new();
    if c.mime_token(&mut key) != More::Yes {
        return Param::Broken;
    }
    if c.skip_lwsp() != More::Yes || c.peek() != Some(b'=') {
        return Param::Broken;
    }
    c.i += 1;
    let mut value = Vec::new();
    let more = match c.skip_lwsp() {
        More::Yes => match c.peek() {
            Some(b'"') => c.quoted_string(&mut value),
            Some(b'=') => {
                // Broken but common: name==?utf-8?b?...?=
                while let Some(b) = c.peek() {
                    if matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    value.push(b);
                    c.i += 1;
                }
                More::Yes
            }
            _ => c.mime_token(&mut value),
        },
        other => other,
    };
    if more == More::Broken {
        Param::Broken
    } else {
        Param::Ok(key, value)
    }
}

fn percent_escape(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b <= 0x20 || b >= 0x7f || b"*'%()<>@,;:\\\"/[]?=".contains(&b) {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(s: &str) -> (String, String, Vec<(String, String)>) {
        let mut c = Cursor::new(s.as_bytes());
        let (t, st, more) = content_type(&mut c);
        let params = if more { parameters(&mut c) } else { Vec::new() };
        let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
        (
            s(t),
            s(st),
            params.into_iter().map(|(k, v)| (s(k), s(v))).collect(),
        )
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn content_types() {
        assert_eq!(ct("text/plain"), ("text".into(), "plain".into(), vec![]));
        assert_eq!(
            ct(" TEXT/Plain ; CHARSET=\"UTF-8\" (comment); format=flowed"),
            (
                "TEXT".into(),
                "Plain".into(),
                p(&[("CHARSET", "UTF-8"), ("format", "flowed")])
            )
        );
        assert_eq!(ct("text"), ("text".into(), "".into(), vec![]));
        assert_eq!(ct("; charset=utf-8"), ("".into(), "".into(), vec![]));
        assert_eq!(
            ct("application/x; ; name=\"x\"; junk; =v; charset").2,
            vec![]
        );
        assert_eq!(ct("text/plain; charset=\"unterminated").2, vec![]);
    }

    #[test]
    fn rfc2231_merges() {
        assert_eq!(
            ct("a/b; name*0=\"one \"; name*1=\"two\"").2,
            p(&[("name", "one two")])
        );
        assert_eq!(
            ct("a/b; x=1; f*1*=%41; f*0*=utf-8''%40; f*2=\".b n\"").2,
            p(&[("x", "1"), ("f*", "utf-8''%40%41.b%20n")])
        );
        assert_eq!(ct("a/b; f*1=x; f*2=y").2, p(&[("f*1", "x"), ("f*2", "y")]));
    }
}
