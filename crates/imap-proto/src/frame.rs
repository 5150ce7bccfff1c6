//! Framing: where a command line announces a literal that must be read
//! before the command is complete (RFC 9051 4.3, LITERAL+ RFC 7888,
//! literal8 RFC 3516).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralSpec {
    pub size: u64,
    /// `{n+}`: the client sends the data without waiting for `+`.
    pub non_sync: bool,
    /// `~{n}`: literal8, may hold NUL.
    pub binary: bool,
}

/// The literal announced at the end of `line` (given without its CRLF).
pub fn literal_at_end(line: &[u8]) -> Option<LiteralSpec> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let non_sync = digits.ends_with(b"+");
    if non_sync {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let binary = open > 0 && inner[open - 1] == b'~';
    Some(LiteralSpec {
        size,
        non_sync,
        binary,
    })
}

/// The command name of a first line (`tag NAME ...`, or `tag UID NAME`),
/// upper-cased; lets the session choose limits before the rest arrives.
pub fn command_name(line: &[u8]) -> String {
    let mut words = line.split(|&b| b == b' ').skip(1);
    let first = words.next().unwrap_or(b"");
    let name = if first.eq_ignore_ascii_case(b"UID") {
        words.next().unwrap_or(b"")
    } else {
        first
    };
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(
            literal_at_end(b"a APPEND INBOX {310}"),
            Some(LiteralSpec {
                size: 310,
                non_sync: false,
                binary: false
            })
        );
        assert_eq!(
            literal_at_end(b"a APPEND INBOX ~{5+}"),
            Some(LiteralSpec {
                size: 5,
                non_sync: true,
                binary: true
            })
        );
        assert_eq!(literal_at_end(b"a LOGIN x \"{5}\""), None);
        assert_eq!(literal_at_end(b"a NOOP {}"), None);
        assert_eq!(literal_at_end(b"a NOOP {99999999999999999999}"), None);
        assert_eq!(command_name(b"a1 uid fetch 1 FLAGS"), "FETCH");
        assert_eq!(command_name(b"a1 append x {3}"), "APPEND");
    }
}
