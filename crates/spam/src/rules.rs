//! Checks that need no training: header sanity, what the pipeline's
//! authentication found, and dangerous content.

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::Verdict;

/// Attachment name endings that run code when opened.
const EXECUTABLE: &[&str] = &[
    ".exe", ".scr", ".bat", ".cmd", ".com", ".pif", ".vbs", ".js", ".jar", ".msi", ".hta", ".lnk",
];

/// Adds the rule reasons for `raw` to `verdict`. `auth_results` is the
/// pipeline's Authentication-Results value for this message, if any.
pub fn check(raw: &[u8], auth_results: Option<&str>, verdict: &mut Verdict) {
    if let Some(ar) = auth_results {
        let ar = ar.to_ascii_lowercase();
        if ar.contains("dmarc=fail") {
            verdict.add("DMARC_FAIL", 40);
        }
        if ar.contains("spf=fail") {
            verdict.add("SPF_FAIL", 20);
        } else if ar.contains("spf=softfail") {
            verdict.add("SPF_SOFTFAIL", 10);
        }
        if ar.contains("dkim=fail") {
            verdict.add("DKIM_FAIL", 15);
        }
        if ar.contains("dkim=pass") && ar.contains("dmarc=pass") {
            verdict.add("DKIM_DMARC_PASS", -5);
        }
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        verdict.add("UNPARSABLE", 30);
        return;
    };
    if msg.header_raw("Date").is_none() {
        verdict.add("MISSING_DATE", 10);
    } else if msg.date().is_none() {
        verdict.add("BAD_DATE", 10);
    }
    if msg.message_id().is_none() {
        verdict.add("MISSING_MESSAGE_ID", 10);
    }
    match msg.from().and_then(|a| a.first()) {
        None => verdict.add("MISSING_FROM", 20),
        Some(a) if a.address().is_none_or(|x| !x.contains('@')) => {
            verdict.add("MALFORMED_FROM", 15)
        }
        _ => {}
    }
    if msg.subject().is_none_or(|s| s.trim().is_empty()) {
        verdict.add("EMPTY_SUBJECT", 5);
    }
    let has_text = msg
        .parts
        .iter()
        .any(|p| matches!(p.body, PartType::Text(_)));
    let has_html = msg
        .parts
        .iter()
        .any(|p| matches!(p.body, PartType::Html(_)));
    if has_html && !has_text {
        verdict.add("HTML_ONLY", 10);
    }
    let lying = msg.parts.iter().any(|p| match &p.body {
        PartType::Html(h) => lying_link(h),
        _ => false,
    });
    // Light: newsletters' click trackers do the same (text www.shop.test,
    // target clickthru.mailer.test); 3 of 90 hard ham in the benchmark's
    // training part did.
    if lying {
        verdict.add("LYING_LINK", 15);
    }
    let executable = msg.attachments().any(|a| {
        a.attachment_name()
            .map(|n| n.to_ascii_lowercase())
            .is_some_and(|n| EXECUTABLE.iter().any(|e| n.ends_with(e)))
    });
    if executable {
        verdict.add("EXECUTABLE_ATTACHMENT", 60);
    }
}

/// The domain of the From address, lower case.
pub fn from_domain(raw: &[u8]) -> Option<String> {
    let msg = MessageParser::default().parse_headers(raw)?;
    let address = msg.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

/// For mail from outside whose From is one of our own domains (the caller
/// knows which are ours): unless SPF or DKIM vouches for it, somebody is
/// posing as a local user, the oldest phishing there is.
pub fn forged_local_sender(auth_results: &str, verdict: &mut Verdict) {
    let ar = auth_results.to_ascii_lowercase();
    if !ar.contains("spf=pass") && !ar.contains("dkim=pass") {
        verdict.add("FORGED_LOCAL_SENDER", 50);
    }
}

/// Whether a link's visible text names one site and its target another
/// (`<a href="http://evil.test/">https://bank.test/</a>`): phishing's
/// favourite trick.
fn lying_link(html: &str) -> bool {
    // ASCII only, so byte positions in `lower` are those in `html`.
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<a ").map(|i| at + i) {
        let Some(tag_end) = lower[open..].find('>').map(|i| open + i) else {
            return false;
        };
        let Some(close) = lower[tag_end..].find("</a>").map(|i| tag_end + i) else {
            return false;
        };
        at = close + 4;
        let Some(target) = href(&lower[open..tag_end]).and_then(|h| site(&host_of(h)?)) else {
            continue;
        };
        let text = crate::tokens::strip_tags(&html[tag_end + 1..close]);
        let shown =
            crate::tokens::urls(&text)
                .into_iter()
                .chain(text.split_whitespace().filter_map(|w| {
                    w.to_ascii_lowercase()
                        .strip_prefix("www.")
                        .map(host_of_bare)
                }));
        for host in shown {
            if site(&host).is_some_and(|s| s != target) {
                return true;
            }
        }
    }
    false
}

/// The href value of an `<a ...` tag (lower case).
fn href(tag: &str) -> Option<&str> {
    let i = tag.find("href")?;
    let rest = tag[i + 4..].trim_start().strip_prefix('=')?.trim_start();
    Some(match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split(|c: char| c.is_whitespace()).next()?,
    })
}

fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    Some(host_of_bare(rest))
}

fn host_of_bare(rest: &str) -> String {
    rest.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

/// The last two labels of a host: a cheap stand-in for the registrable
/// domain (without the public suffix list, `a.co.uk` and `b.co.uk` look
/// alike, which can only miss a lie, never invent one).
fn site(host: &str) -> Option<String> {
    let labels: Vec<&str> = host
        .trim_end_matches('.')
        .rsplit('.')
        .take(2)
        .filter(|l| !l.is_empty())
        .collect();
    (labels.len() == 2).then(|| format!("{}.{}", labels[1], labels[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(raw: &[u8], ar: Option<&str>) -> Vec<&'static str> {
        let mut v = Verdict::default();
        check(raw, ar, &mut v);
        v.reasons.iter().map(|r| r.name).collect()
    }

    const GOOD: &[u8] = b"From: Bob <bob@example.net>\r\nTo: a@example.test\r\nSubject: lunch\r\n\
Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.net>\r\n\r\nNoon?\r\n";

    #[test]
    fn a_normal_message_has_no_reasons() {
        assert!(reasons(GOOD, Some("mx; spf=pass; dkim=none; dmarc=none")).is_empty());
    }

    #[test]
    fn each_rule() {
        let r = reasons(b"Subject: \r\n\r\nx", None);
        for want in [
            "MISSING_DATE",
            "MISSING_MESSAGE_ID",
            "MISSING_FROM",
            "EMPTY_SUBJECT",
        ] {
            assert!(r.contains(&want), "{want} in {r:?}");
        }
        let bad_date = b"From: Bob <bob@example.net>\r\nSubject: x\r\nDate: yesterday-ish\r\nMessage-ID: <1@x>\r\n\r\nx";
        assert_eq!(reasons(bad_date, None), vec!["BAD_DATE"]);
        assert_eq!(
            reasons(GOOD, Some("mx; spf=fail; dkim=fail; dmarc=fail")),
            vec!["DMARC_FAIL", "SPF_FAIL", "DKIM_FAIL"]
        );
        assert_eq!(
            reasons(GOOD, Some("mx; dkim=pass; spf=pass; dmarc=pass")),
            vec!["DKIM_DMARC_PASS"]
        );
        let html = b"From: x@y.test\r\nSubject: s\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m@y>\r\n\
Content-Type: text/html\r\n\r\n<b>hi</b>";
        assert_eq!(reasons(html, None), vec!["HTML_ONLY"]);
        let exe = b"From: x@y.test\r\nSubject: invoice\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m@y>\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
Content-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n--b--\r\n";
        assert_eq!(reasons(exe, None), vec!["EXECUTABLE_ATTACHMENT"]);
        let phish = b"From: x@y.test\r\nSubject: s\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m@y>\r\n\
Content-Type: text/html\r\n\r\n<p>Log in: <A HREF=\"http://203.0.113.9.evil.test/login\">https://www.bank.test/login</A></p>";
        assert_eq!(reasons(phish, None), vec!["HTML_ONLY", "LYING_LINK"]);
    }

    #[test]
    fn forged_local_sender_unless_spf_or_dkim_pass() {
        assert_eq!(from_domain(GOOD).as_deref(), Some("example.net"));
        assert_eq!(from_domain(b"Subject: x\r\n\r\n"), None);
        for (ar, forged) in [
            ("mx; dkim=none; spf=none smtp.mailfrom=a@example.test", true),
            ("mx; dkim=fail; spf=softfail", true),
            (
                "mx; dkim=none; spf=pass smtp.mailfrom=a@example.test",
                false,
            ),
            ("mx; dkim=pass header.d=example.test; spf=fail", false),
        ] {
            let mut v = Verdict::default();
            forged_local_sender(ar, &mut v);
            assert_eq!(v.score == 50, forged, "{ar}");
        }
    }

    #[test]
    fn honest_links_do_not_lie() {
        for html in [
            r#"<a href="https://www.bank.test/x">https://bank.test/</a>"#,
            r#"<a href='http://bank.test/'>www.bank.test</a>"#,
            r#"<a href=http://news.shop.test/u?id=1>click here</a>"#,
            r#"<a href="mailto:a@b.test">https://bank.test</a>"#,
            "<a href=\"https://evil.test/\">unterminated",
            "<a href",
        ] {
            assert!(!lying_link(html), "{html}");
        }
        assert!(lying_link(
            r#"<a class=x href = "https://evil.test/">visit <b>www.bank.test</b></a>"#
        ));
    }
}
