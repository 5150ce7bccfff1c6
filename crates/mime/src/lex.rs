//! A lexer for RFC 5322 structured header values: atoms, quoted strings,
//! comments, domain literals and specials. Lenient: broken input gives a
//! best-effort token stream, never an error.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A run of atom characters (dots included, as in dot-atoms).
    Atom(Vec<u8>),
    /// A quoted string, quotes removed and `\x` unescaped.
    Quoted(Vec<u8>),
    /// A comment, outer parentheses removed.
    Comment(Vec<u8>),
    /// `[...]`, brackets kept.
    DomainLiteral(Vec<u8>),
    Special(u8),
}

/// Tokens of `value`. `specials` are the characters that end atoms; the
/// rest of the RFC 5322 specials are atom characters for this caller (MIME
/// parameters, for instance, allow `@` and `.` in values).
pub fn tokens(value: &[u8], specials: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < value.len() && value[i] != b'"' {
                    if value[i] == b'\\' && i + 1 < value.len() {
                        i += 1;
                    }
                    if value[i] != b'\r' && value[i] != b'\n' {
                        s.push(value[i]);
                    }
                    i += 1;
                }
                i += 1; // the closing quote, if any
                out.push(Token::Quoted(s));
            }
            b'(' => {
                let mut depth = 0usize;
                let mut s = Vec::new();
                while i < value.len() {
                    let c = value[i];
                    match c {
                        b'\\' if i + 1 < value.len() => {
                            s.push(value[i + 1]);
                            i += 2;
                            continue;
                        }
                        b'(' => {
                            depth += 1;
                            if depth > 1 {
                                s.push(c);
                            }
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            s.push(c);
                        }
                        b'\r' | b'\n' => {}
                        _ => s.push(c),
                    }
                    i += 1;
                }
                out.push(Token::Comment(s));
            }
            b'[' => {
                let end = value[i..]
                    .iter()
                    .position(|&c| c == b']')
                    .map(|p| i + p + 1);
                let end = end.unwrap_or(value.len());
                out.push(Token::DomainLiteral(value[i..end].to_vec()));
                i = end;
            }
            _ if specials.contains(&b) => {
                out.push(Token::Special(b));
                i += 1;
            }
            _ => {
                let start = i;
                while i < value.len() {
                    let c = value[i];
                    if matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'(' | b'[')
                        || specials.contains(&c)
                    {
                        break;
                    }
                    i += 1;
                }
                out.push(Token::Atom(value[start..i].to_vec()));
            }
        }
    }
    out
}

/// RFC 5322 specials that matter in address lists (`.` stays in atoms).
pub const ADDRESS_SPECIALS: &[u8] = b"<>@,;:\\]";
