//! The tokens a message is judged by: words of its decoded text (HTML with
//! its tags taken out), its subject, the domains its links point to, and a
//! few headers. Never the Received chain or recipient addresses: those tell
//! whose mailbox it is, not whether it is spam.

use std::collections::BTreeSet;

use mail_parser::{MessageParser, PartType};

/// Most tokens taken from one message.
pub const MAX_TOKENS: usize = 2000;

/// The distinct tokens of a message.
pub fn tokens(raw: &[u8]) -> Vec<String> {
    let mut out = BTreeSet::new();
    let Some(msg) = MessageParser::default().parse(raw) else {
        words(&String::from_utf8_lossy(raw), "", &mut out);
        return out.into_iter().take(MAX_TOKENS).collect();
    };
    if let Some(subject) = msg.subject() {
        words(subject, "subject:", &mut out);
    }
    if let Some(from) = msg.from().and_then(|a| a.first()).and_then(|a| a.address())
        && let Some((_, domain)) = from.rsplit_once('@')
    {
        out.insert(format!("from:{}", domain.to_lowercase()));
    }
    for name in ["X-Mailer", "User-Agent", "Content-Type"] {
        if let Some(v) = msg.header_raw(name) {
            let v: String = v.trim().chars().take(40).collect();
            out.insert(format!("{}:{}", name.to_lowercase(), v.to_lowercase()));
        }
    }
    for part in &msg.parts {
        let text = match &part.body {
            PartType::Text(t) => t.to_string(),
            PartType::Html(h) => strip_tags(h),
            _ => continue,
        };
        for url in urls(&text) {
            out.insert(format!("url:{url}"));
        }
        words(&text, "", &mut out);
        if out.len() >= MAX_TOKENS {
            break;
        }
    }
    out.into_iter().take(MAX_TOKENS).collect()
}

fn words(text: &str, prefix: &str, out: &mut BTreeSet<String>) {
    for w in text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '$' && c != '!') {
        let w = w.trim_matches('\'');
        let n = w.chars().count();
        if (3..=20).contains(&n) && !w.chars().all(|c| c.is_ascii_digit()) {
            out.insert(format!("{prefix}{}", w.to_lowercase()));
            if out.len() >= MAX_TOKENS {
                return;
            }
        }
    }
}

/// Domains of the http(s) links in `text`.
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("http") {
        let rest = &text[i..];
        let rest = rest
            .strip_prefix("https://")
            .or_else(|| rest.strip_prefix("http://"));
        if let Some(rest) = rest {
            let host: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            if host.contains('.') {
                out.push(host.to_lowercase());
            }
        }
    }
    out
}

/// Text of HTML without its tags (scripts and styles dropped).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    // ASCII only, so byte positions in `lower` are those in `html`.
    let lower = html.to_ascii_lowercase();
    let mut skip_until: Option<&str> = None;
    for (i, c) in html.char_indices() {
        if let Some(end) = skip_until {
            if lower[i..].starts_with(end) {
                skip_until = None;
            }
            continue;
        }
        match c {
            '<' => {
                in_tag = true;
                if lower[i..].starts_with("<script") {
                    skip_until = Some("</script");
                } else if lower[i..].starts_with("<style") {
                    skip_until = Some("</style");
                }
                // Link targets are text worth reading too.
                if lower[i..].starts_with("<a ")
                    && let Some(j) = lower[i..].find("href=")
                {
                    let rest = &html[i + j + 5..];
                    let target: String = rest
                        .trim_start_matches(['"', '\''])
                        .chars()
                        .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' '))
                        .collect();
                    out.push(' ');
                    out.push_str(&target);
                    out.push(' ');
                }
            }
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_with_letters_that_change_length_when_lowercased() {
        // 'İ' is two bytes, its Unicode lower case three: positions must not drift.
        let text = strip_tags("İİİ <A HREF=\"http://x.test/\">İstanbul</A> <SCRIPT>no</SCRIPT>ok");
        assert!(
            text.contains("http://x.test/") && text.contains("İstanbul") && text.contains("ok")
        );
        assert!(!text.contains("no"));
    }

    #[test]
    fn tokens_of_a_message() {
        let raw = b"From: Shop <deals@cheap-pills.test>\r\nTo: alice@example.test\r\nSubject: Cheap VIAGRA now\r\n\
Received: from secret.internal\r\nContent-Type: text/html\r\n\r\n<p>Buy <b>now</b> at \
<a href=\"http://cheap-pills.test/x\">our shop</a></p><script>evil()</script>";
        let t = tokens(raw);
        for want in [
            "subject:viagra",
            "subject:cheap",
            "from:cheap-pills.test",
            "buy",
            "url:cheap-pills.test",
            "shop",
        ] {
            assert!(t.contains(&want.to_string()), "{want} missing from {t:?}");
        }
        assert!(
            !t.iter()
                .any(|w| w.contains("evil") || w.contains("secret") || w.contains("alice")),
            "{t:?}"
        );
    }
}
