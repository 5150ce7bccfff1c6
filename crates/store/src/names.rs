//! Validation of the names users choose: account addresses, aliases, list
//! entries, mailbox and script names.
//! Done here, once, so every door refuses the same things.

use crate::Error;
use crate::types::{DEFAULT_MAILBOXES, DELIMITER};

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

/// An alias: an address, or `@domain` for a domain's catch-all.
pub fn normalize_alias(alias: &str) -> Result<String, Error> {
    match alias.strip_prefix('@') {
        Some(domain) => {
            let whole = normalize_address(&format!("catch-all@{domain}"))?;
            Ok(format!("@{}", &whole["catch-all@".len()..]))
        }
        None => normalize_address(alias),
    }
}

/// An allow/block list entry: `user@domain` or `@domain`, lower case.
pub fn normalize_sender_pattern(pattern: &str) -> Result<String, Error> {
    let p = pattern.trim().to_lowercase();
    let bad = |why| Err(Error::InvalidAddress(pattern.to_string(), why));
    let Some((local, domain)) = p.rsplit_once('@') else {
        return bad("give an address (bob@example.com) or a domain with its @ (@example.com)");
    };
    if domain.is_empty() || !domain.contains('.') && domain != "localhost" {
        return bad("the domain after @ is missing or has no dot");
    }
    if p.len() > 320
        || p.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return bad("spaces, control characters and <> are not allowed");
    }
    if local.contains('@') {
        return bad("more than one @");
    }
    Ok(p)
}

/// A script name: 1 to 128 characters, no control characters (RFC 5804
/// 1.6), no slash (names may become file names elsewhere).
pub fn check_script_name(name: &str) -> Result<(), Error> {
    let bad = |why| Err(Error::InvalidScriptName(name.to_string(), why));
    if name.is_empty() || name.chars().count() > 128 {
        return bad("a name is 1 to 128 characters long");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\u{2028}' || c == '\u{2029}')
    {
        return bad("control characters and / are not allowed");
    }
    Ok(())
}

/// Refuses to delete or rename away a default mailbox other than INBOX
/// (which has rules of its own): filing would re-create it without its
/// special-use attribute, and blocked senders' mail would land in INBOX.
pub(crate) fn refuse_default(name: &str) -> Result<(), Error> {
    match DEFAULT_MAILBOXES
        .iter()
        .find(|(n, _)| *n != "INBOX" && *n == name)
    {
        Some((n, _)) => Err(Error::DefaultMailbox(n.to_string())),
        None => Ok(()),
    }
}

/// Why `address` cannot get an account when the config lists the local
/// `domains`: an account elsewhere would make its domain local behind the
/// admin's back. Without any listed (the development defaults), accounts'
/// domains are local and anything goes.
pub fn outside_local_domains(address: &str, domains: &[String]) -> Option<String> {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    if domains.is_empty() || domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return None;
    }
    Some(format!(
        "{domain:?} is not one of the local domains ({}): add it to `domains` in the config first",
        domains.join(", ")
    ))
}

/// A size as people write it: `500M`, `2G`, `100K` (powers of 1024) or
/// plain bytes; `None` for anything else.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_list_entries_and_script_names() {
        assert_eq!(normalize_alias("@Example.TEST").unwrap(), "@example.test");
        assert_eq!(
            normalize_alias("Bob@Example.test").unwrap(),
            "bob@example.test"
        );
        assert!(normalize_alias("@").is_err());
        assert_eq!(
            normalize_sender_pattern(" @News.Example.com ").unwrap(),
            "@news.example.com"
        );
        for bad in ["bob", "bob@", "a@b@c.com", "<a@b.com>", "a b@c.com"] {
            assert!(normalize_sender_pattern(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_script_name("vacation").is_ok());
        for bad in ["", "a/b", "tab\there", &"x".repeat(129)] {
            assert!(check_script_name(bad).is_err(), "{bad:?} accepted");
        }
    }

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

    #[test]
    fn sizes_as_people_write_them() {
        assert_eq!(parse_size("500M"), Some(500 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("100 KB"), Some(100 << 10));
        assert_eq!(parse_size("12345"), Some(12345));
        for bad in ["", "M", "5X", "-5M", "1.5G", "99999999999999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
