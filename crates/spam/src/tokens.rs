//! The tokens a message is judged by: words and pairs of neighbouring
//! words of its decoded text (HTML with its tags taken out) and subject,
//! the domains its links point to, the sender, the names of the fields it
//! carries and the types of its parts. Never the Received chain or
//! recipient addresses: those tell whose mailbox it is, not whether it is
//! spam.

/// A set of tokens: foldhash is several times faster than the standard
/// SipHash on short keys, and seeded per process as well.
type TokenSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

use mail_parser::{MimeHeaders, PartType};

/// Most tokens taken from one message.
pub const MAX_TOKENS: usize = 2000;

/// Fields that are no evidence about the message: where it went (trace and
/// recipients) and how a mailbox or an archive kept it.
const NOT_EVIDENCE: &[&str] = &[
    "received",
    "to",
    "cc",
    "bcc",
    "delivered-to",
    "x-original-to",
    "return-path",
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "delivery-date",
    "x-original-date",
    "content-length",
    "lines",
];

/// Any of these makes a message a list post (RFC 2369, RFC 2919, Mailman).
const LIST_MARKS: &[&str] = &[
    "list-id",
    "list-post",
    "list-unsubscribe",
    "x-mailman-version",
    "x-beenthere",
];

/// What a list adds besides its List-* fields, counted in `list:post`.
const LIST_FIELDS: &[&str] = &[
    "precedence",
    "errors-to",
    "sender",
    "x-mailman-version",
    "x-beenthere",
];

/// The distinct tokens of a message, in order.
pub fn tokens(raw: &[u8]) -> Vec<String> {
    // A hash set, sorted once at the end: a word seen again costs a hash
    // and one comparison, where a tree paid a dozen string comparisons.
    let mut out = TokenSet::default();
    let Some(msg) = mime::message::parse(raw) else {
        words(&String::from_utf8_lossy(raw), "", &mut out);
        return sorted(out);
    };
    if let Some(subject) = msg.subject() {
        words(subject, "subject:", &mut out);
    }
    if let Some(from) = msg.from().and_then(|a| a.first()) {
        if let Some(name) = from.name() {
            words(name, "fromname:", &mut out);
        }
        if let Some(address) = from.address() {
            let address = address.to_lowercase();
            if let Some((_, domain)) = address.rsplit_once('@') {
                out.insert(format!("from:{domain}"));
            }
            out.insert(format!("from:{address}"));
        }
    }
    if let Some(domain) = msg
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@'))
    {
        out.insert(format!("reply-to:{}", domain.1.to_lowercase()));
    }
    if let Some((_, domain)) = msg.message_id().and_then(|id| id.rsplit_once('@')) {
        out.insert(format!("message-id:{}", domain.to_lowercase()));
    }
    // Which fields a message carries says much about the software that
    // wrote it (mailing lists, bulk mailers); the trace and recipient
    // fields say where it went, our own X-Spam fields what we thought, and
    // some only how a mailbox was kept (a mail reader's status and
    // keywords, the local delivery time): none of those is evidence.
    // A mailing list's dozen fields are one piece of evidence, not a dozen
    // votes: one token says the message is a list post.
    let list_post = msg.headers().iter().any(|h| {
        let name = h.name.as_str();
        LIST_MARKS.iter().any(|m| name.eq_ignore_ascii_case(m))
    });
    if list_post {
        out.insert("list:post".to_string());
    }
    for h in msg.headers() {
        let name = h.name.as_str().to_ascii_lowercase();
        let said_by_the_list = list_post && LIST_FIELDS.contains(&name.as_str());
        if !NOT_EVIDENCE.contains(&name.as_str())
            && !name.starts_with("x-spam")
            && !name.starts_with("list-")
            && !said_by_the_list
        {
            out.insert(format!("header:{name}"));
        }
    }
    for name in ["X-Mailer", "User-Agent", "Content-Type"] {
        if let Some(v) = msg.header_raw(name) {
            let v: String = v.trim().chars().take(40).collect();
            out.insert(format!("{}:{}", name.to_lowercase(), v.to_lowercase()));
        }
    }
    // The message's parts, then those of messages attached to it (a
    // forwarded spam is read too); the nesting was cut to a bound when it
    // was parsed, and this walk keeps its own list, no recursion.
    let mut parts: std::collections::VecDeque<&mail_parser::MessagePart<'_>> =
        msg.parts.iter().collect();
    while let Some(part) = parts.pop_front() {
        if let PartType::Message(inner) = &part.body {
            parts.extend(inner.parts.iter());
            continue;
        }
        if let Some(ct) = part.content_type() {
            let mut t = format!("part:{}", ct.c_type.to_ascii_lowercase());
            if let Some(sub) = &ct.c_subtype {
                t.push('/');
                t.push_str(&sub.to_ascii_lowercase());
            }
            out.insert(t);
            if let Some(charset) = ct.attribute("charset") {
                out.insert(format!("charset:{}", charset.to_ascii_lowercase()));
            }
        }
        if let Some(cte) = part.content_transfer_encoding() {
            out.insert(format!("encoding:{}", cte.to_ascii_lowercase()));
        }
        let text = match &part.body {
            PartType::Text(t) => t.to_string(),
            PartType::Html(h) => strip_tags(h),
            _ => continue,
        };
        // Stopped at the cap: a message of a million distinct links must
        // not hold a million tokens.
        for url in urls(&text) {
            if out.len() >= MAX_TOKENS {
                break;
            }
            out.insert(format!("url:{url}"));
        }
        words(&text, "", &mut out);
        if out.len() >= MAX_TOKENS {
            break;
        }
    }
    sorted(out)
}

/// The first [`MAX_TOKENS`] tokens in order.
fn sorted(set: TokenSet<String>) -> Vec<String> {
    let mut out: Vec<String> = set.into_iter().collect();
    out.sort_unstable();
    out.truncate(MAX_TOKENS);
    out
}

fn words(text: &str, prefix: &str, out: &mut TokenSet<String>) {
    // Buffers reused for every word: most words of a message were seen
    // before in it, and a token already in the set costs no allocation.
    let (mut lower, mut previous, mut key) = (String::new(), String::new(), String::new());
    let mut has_previous = false;
    let insert = |out: &mut TokenSet<String>, key: &str| {
        if !out.contains(key) {
            out.insert(key.to_string());
        }
    };
    for w in text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '$' && c != '!') {
        let w = w.trim_matches('\'');
        // Chinese and Japanese are written without spaces: a run of them
        // is one "word" here; its pairs of neighbouring characters are the
        // tokens instead (as CJK-aware filters do).
        if !w.is_ascii() && w.chars().any(is_cjk) {
            let chars: Vec<char> = w.chars().collect();
            for pair in chars.windows(2).filter(|p| p.iter().all(|&c| is_cjk(c))) {
                key.clear();
                key.push_str(prefix);
                key.extend(pair);
                insert(out, &key);
                if out.len() >= MAX_TOKENS {
                    return;
                }
            }
            has_previous = false;
            continue;
        }
        let n = if w.is_ascii() {
            w.len()
        } else {
            w.chars().count()
        };
        if (3..=20).contains(&n) && !w.chars().all(|c| c.is_ascii_digit()) {
            lower.clear();
            if w.is_ascii() {
                lower.push_str(w);
                lower.make_ascii_lowercase();
            } else {
                lower.push_str(&w.to_lowercase());
            }
            // Pairs of neighbouring words tell phrases ("click here") from
            // the same words apart.
            if has_previous {
                key.clear();
                key.push_str(prefix);
                key.push_str(&previous);
                key.push(' ');
                key.push_str(&lower);
                insert(out, &key);
            }
            key.clear();
            key.push_str(prefix);
            key.push_str(&lower);
            insert(out, &key);
            std::mem::swap(&mut previous, &mut lower);
            has_previous = true;
            if out.len() >= MAX_TOKENS {
                return;
            }
        } else if n > 20 {
            // Too long to be a word, yet telling (encoded junk, glued
            // words): its first letter and length in tens (SpamBayes).
            if let Some(first) = w.chars().next() {
                insert(
                    out,
                    &format!("{prefix}skip:{} {}", first.to_lowercase(), n / 10 * 10),
                );
            }
            has_previous = false;
        } else if !w.is_empty() {
            has_previous = false;
        }
    }
}

/// Han, kana and Hangul: scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // Hiragana, Katakana
        | 0x3400..=0x4dbf    // CJK Extension A
        | 0x4e00..=0x9fff    // CJK Unified Ideographs
        | 0xac00..=0xd7af    // Hangul syllables
        | 0xf900..=0xfaff    // CJK Compatibility Ideographs
        | 0x20000..=0x2ffff) // the supplementary ideographs
}

/// A word as tiling knows it: the prefix of the field it came from (`""`,
/// `subject:`, `fromname:`) and the word, both borrowed from a token; the
/// token of that word alone is the two joined.
pub type Word<'a> = (&'a str, &'a str);

/// The two words of a token made of neighbouring words (`buy now`,
/// `subject:cheap pills`); `None` for any other token.
pub fn pair_words(token: &str) -> Option<(Word<'_>, Word<'_>)> {
    let (prefix, rest) = split_prefix(token);
    let (a, b) = rest.split_once(' ')?;
    if a.is_empty() || b.is_empty() || rest.contains(':') || b.contains(' ') {
        return None;
    }
    Some(((prefix, a), (prefix, b)))
}

/// The word a token that is no pair stands for (every other token is its
/// own piece of evidence).
pub fn word_of(token: &str) -> Word<'_> {
    split_prefix(token)
}

/// `subject:` or `fromname:` and the rest; `""` and the whole token
/// otherwise (words never hold a colon, so the two cannot be confused).
fn split_prefix(token: &str) -> Word<'_> {
    match token.split_once(':') {
        Some(("subject" | "fromname", _)) => {
            let at = token.find(':').map_or(0, |i| i + 1);
            token.split_at(at)
        }
        _ => ("", token),
    }
}

/// Domains of the http(s) links in `text`, as they are found.
pub fn urls(text: &str) -> impl Iterator<Item = String> + '_ {
    text.match_indices("http").filter_map(|(i, _)| {
        let rest = &text[i..];
        let rest = rest
            .strip_prefix("https://")
            .or_else(|| rest.strip_prefix("http://"))?;
        let host: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        host.contains('.').then(|| host.to_lowercase())
    })
}

/// Longest tag whose attributes are read.
const MAX_TAG: usize = 2048;

/// Text of HTML without its tags (scripts and styles dropped).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    // ASCII only, so byte positions in `lower` are those in `html`.
    let lower = html.to_ascii_lowercase();
    let mut skip_until: Option<&str> = None;
    // Where the tag at hand ends: found once per tag, not once per `<`, so
    // that `<<<<...` costs one pass.
    let mut tag_end = 0;
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
                // Link targets are text worth reading too, within the tag
                // and its first MAX_TAG bytes.
                if lower[i..].starts_with("<a ") {
                    if tag_end <= i {
                        tag_end = lower[i..].find('>').map_or(lower.len(), |j| i + j);
                    }
                    let mut end = tag_end.min(i + MAX_TAG);
                    while !lower.is_char_boundary(end) {
                        end -= 1;
                    }
                    if let Some(j) = lower[i..end].find("href=") {
                        let rest = &html[i + j + 5..];
                        let target: String = rest
                            .trim_start_matches(['"', '\''])
                            .chars()
                            .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' '))
                            .take(MAX_TAG)
                            .collect();
                        out.push(' ');
                        out.push_str(&target);
                        out.push(' ');
                    }
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
            "buy now",
            "fromname:shop",
            "from:deals@cheap-pills.test",
            "header:subject",
            "part:text/html",
        ] {
            assert!(t.contains(&want.to_string()), "{want} missing from {t:?}");
        }
        assert!(
            !t.iter().any(|w| w.contains("evil")
                || w.contains("secret")
                || w.contains("alice")
                || w == "header:received"
                || w == "header:to"),
            "{t:?}"
        );
    }

    #[test]
    fn text_without_spaces_gives_character_pairs_and_long_strings_a_skip_token() {
        let raw = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                   \u{514d}\u{8d39}\u{4f1a}\u{5458} aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ok\r\n"
            .as_bytes();
        let t = tokens(raw);
        for want in [
            "\u{514d}\u{8d39}",
            "\u{8d39}\u{4f1a}",
            "\u{4f1a}\u{5458}",
            "skip:a 30",
        ] {
            assert!(t.contains(&want.to_string()), "{want} missing from {t:?}");
        }
    }

    #[test]
    fn an_attached_message_is_read_too() {
        let raw = b"Subject: fwd\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nunclaimed inheritance\r\n--b--\r\n";
        let t = tokens(raw);
        assert!(t.contains(&"inheritance".to_string()), "{t:?}");
        assert!(t.contains(&"below".to_string()), "{t:?}");
    }
}
