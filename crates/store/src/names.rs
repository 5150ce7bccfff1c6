//! Validation of the names users choose: account addresses and mailbox names.
//! Done here, once, so every door refuses the same things.

use crate::Error;
use crate::types::DELIMITER;

/// Longest address accepted (RFC 5321 4.5.3.1.3 path limit, less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest mailbox name in bytes, and deepest hierarchy.
pub const MAX_MAILBOX_NAME_LEN: usize = 512;
pub const MAX_MAILBOX_DEPTH: usize = 16;

/// Checks an account address and returns its canonical (lower-case) form.
pub fn normalize_address(address: &str) -> Result<String, Error> {
    let bad = |why: &'static str| Error::InvalidAddress(address.to_string(), why);
    if address.len() > MAX_ADDRESS_LEN {
        return Err(bad("longer than 254 characters"));
    }
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| bad("it needs the form local@domain"))?;
    if local.is_empty() || domain.is_empty() {
        return Err(bad("it needs the form local@domain"));
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\\'))
    {
        return Err(bad(
            "it contains spaces, control characters, quotes or angle brackets",
        ));
    }
    if local.contains('@') {
        return Err(bad("it contains more than one @"));
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad("the domain has an empty label"));
    }
    if !domain
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
    {
        return Err(bad("the domain may hold only letters, digits, '-' and '.'"));
    }
    Ok(address.to_lowercase())
}

/// Checks a mailbox name (UTF-8, levels separated by `/`) and returns it in
/// canonical form: `INBOX` in any case is `INBOX`, as RFC 9051 5.1 requires.
pub fn normalize_mailbox_name(name: &str) -> Result<String, Error> {
    let bad = |why: &'static str| Error::InvalidMailboxName(name.to_string(), why);
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.len() > MAX_MAILBOX_NAME_LEN {
        return Err(bad("the name is longer than 512 bytes"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("control characters are not allowed"));
    }
    if name.contains(['*', '%']) {
        return Err(bad(
            "'*' and '%' are LIST wildcards and not allowed in names",
        ));
    }
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    if levels.len() > MAX_MAILBOX_DEPTH {
        return Err(bad("the hierarchy is deeper than 16 levels"));
    }
    for level in &levels {
        if level.is_empty() {
            return Err(bad(
                "a level of the name is empty (leading, trailing or doubled '/')",
            ));
        }
        if *level == "." || *level == ".." || level.starts_with("..") {
            return Err(bad("levels '.' and '..' are not allowed"));
        }
        if level.trim() != *level {
            return Err(bad("a level starts or ends with white space"));
        }
    }
    let mut out = String::with_capacity(name.len());
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push(DELIMITER);
        }
        if i == 0 && level.eq_ignore_ascii_case("INBOX") {
            out.push_str("INBOX");
        } else {
            out.push_str(level);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address("Alice@Example.Test").unwrap(),
            "alice@example.test"
        );
        for bad in [
            "",
            "alice",
            "@x.test",
            "a@",
            "a b@x.test",
            "a@x..test",
            "a@@x",
            "a@x_y.test",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mailbox_names() {
        assert_eq!(normalize_mailbox_name("inbox").unwrap(), "INBOX");
        assert_eq!(normalize_mailbox_name("inBox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(
            normalize_mailbox_name("Possible Junk").unwrap(),
            "Possible Junk"
        );
        assert_eq!(
            normalize_mailbox_name("Déjà vu/日本").unwrap(),
            "Déjà vu/日本"
        );
        for bad in [
            "", "/a", "a/", "a//b", "..", "a/../b", "a\u{0}b", "a\rb", "x*", " a",
        ] {
            assert!(normalize_mailbox_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_mailbox_name(&"a/".repeat(20)).is_err());
    }
}
