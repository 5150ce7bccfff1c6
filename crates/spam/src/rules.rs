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
    let Some(msg) = mime::message::parse(raw) else {
        verdict.add("UNPARSABLE", 30);
        return;
    };
    if msg.header_raw("Date").is_none() {
        verdict.add("MISSING_DATE", 10);
    } else if msg.date().is_none() {
        verdict.add("BAD_DATE", 25);
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
    let hidden = msg
        .parts
        .iter()
        .map(|p| match &p.body {
            PartType::Html(h) => hidden_letters(h),
            _ => 0,
        })
        .sum::<usize>();
    if hidden >= HIDDEN_LETTERS {
        verdict.add("HTML_HIDDEN_TEXT", 30);
    }
    let executable = msg.attachments().any(|a| {
        a.attachment_name()
            .map(|n| n.to_ascii_lowercase())
            .is_some_and(|n| EXECUTABLE.iter().any(|e| n.ends_with(e)))
    });
    if executable {
        verdict.add("EXECUTABLE_ATTACHMENT", 60);
    }
    // Accountable bulk mail (newsletters, receipts) offers a one-click
    // unsubscribe (RFC 8058) and is signed by the domain its From names;
    // spam seldom signs as the domain it claims.
    let from_domain = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()));
    if let (Some(ar), Some(domain)) = (auth_results, from_domain)
        && one_click_unsubscribe(&msg)
        && signed_as(ar, &domain)
    {
        verdict.add("SIGNED_NEWSLETTER", -20);
    }
}

/// An https List-Unsubscribe with `List-Unsubscribe=One-Click` (RFC 8058 3.1).
fn one_click_unsubscribe(msg: &mail_parser::Message<'_>) -> bool {
    let text = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default()
    };
    text("List-Unsubscribe").contains("<https://")
        && text("List-Unsubscribe-Post").contains("list-unsubscribe=one-click")
}

/// Whether a DKIM signature that passed was made by `domain` or a domain
/// it belongs to (relaxed alignment, as DMARC has it), going by the
/// pipeline's `Authentication-Results:`.
fn signed_as(auth_results: &str, domain: &str) -> bool {
    auth_results
        .to_ascii_lowercase()
        .split(';')
        .filter(|clause| clause.trim_start().starts_with("dkim=pass"))
        .filter_map(|clause| {
            // mail-auth writes header.d=, or header.i= (an identity in the
            // domain) when the signature has one.
            let value = match clause.split_once("header.d=") {
                Some((_, rest)) => rest,
                None => clause.split_once("header.i=")?.1,
            };
            let value = value.split_whitespace().next()?.trim_matches('"');
            let domain = value.rsplit_once('@').map_or(value, |(_, d)| d);
            Some(domain.trim_end_matches('.').to_string())
        })
        .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
}

/// The domain of the From address, lower case.
pub fn from_domain(raw: &[u8]) -> Option<String> {
    let address = from_address(raw)?;
    let (_, domain) = address.rsplit_once('@')?;
    Some(domain.to_string())
}

/// The From address, lower case (the first, if there are several).
pub fn from_address(raw: &[u8]) -> Option<String> {
    let msg = MessageParser::default().parse_headers(raw)?;
    let address = msg.from()?.first()?.address()?;
    address
        .contains('@')
        .then(|| address.trim().trim_end_matches('.').to_lowercase())
}

/// For mail whose connecting address is on `listed` of the DNS blocklists
/// the admin configured (the pipeline asks them). One listing makes a
/// message doubtful; a second, or Bayes agreeing, junks it.
pub fn dnsbl(listed: usize, verdict: &mut Verdict) {
    if listed > 0 {
        verdict.add("RCVD_IN_DNSBL", 60);
    }
    if listed > 1 {
        verdict.add("RCVD_IN_DNSBL_MULTI", 30);
    }
}

/// Hidden letters from this many on: more than a newsletter's hidden
/// preheader line (under 150), what text meant for the filter and not the
/// reader (Bayes poison) takes.
const HIDDEN_LETTERS: usize = 300;
/// Elements open at once that are followed; deeper ones count as shown.
const MAX_OPEN: usize = 256;

/// Letters of text an HTML part hides from its reader: inside elements
/// styled `display:none`, `visibility:hidden`, `font-size:0` or
/// `opacity:0`, or `<font size=0>`.
fn hidden_letters(html: &str) -> usize {
    // ASCII only, so byte positions in `lower` are those in `html`.
    let lower = html.to_ascii_lowercase();
    let mut open: Vec<(&str, bool)> = Vec::new();
    let mut hidden_depth = 0usize;
    let mut letters = 0;
    let mut at = 0;
    while at < lower.len() {
        let Some(lt) = lower[at..].find('<').map(|i| at + i) else {
            if hidden_depth > 0 {
                letters += count_letters(&html[at..]);
            }
            break;
        };
        if hidden_depth > 0 {
            letters += count_letters(&html[at..lt]);
        }
        let Some(gt) = lower[lt..].find('>').map(|i| lt + i) else {
            break;
        };
        let tag = &lower[lt + 1..gt];
        at = gt + 1;
        if let Some(name) = tag.strip_prefix('/') {
            let name = tag_name(name);
            // Close the nearest element of that name and all inside it
            // (a missing end tag must not hide the rest of the page).
            if let Some(i) = open.iter().rposition(|(n, _)| *n == name) {
                hidden_depth -= open[i..].iter().filter(|(_, h)| *h).count();
                open.truncate(i);
            }
            continue;
        }
        let name = tag_name(tag);
        if name.is_empty()
            || tag.ends_with('/')
            || matches!(
                name,
                "br" | "img" | "hr" | "meta" | "link" | "input" | "col" | "area" | "base" | "wbr"
            )
            || name.starts_with('!')
        {
            continue;
        }
        if matches!(name, "script" | "style") {
            // Not shown and not text: skip to its end.
            let end = format!("</{name}");
            at = lower[at..].find(&end).map_or(lower.len(), |i| at + i);
            continue;
        }
        if open.len() == MAX_OPEN {
            continue;
        }
        let hides = hides(tag);
        hidden_depth += hides as usize;
        open.push((name, hides));
    }
    letters
}

fn tag_name(tag: &str) -> &str {
    let end = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '/')
        .unwrap_or(tag.len());
    &tag[..end]
}

/// Whether a (lower case) start tag's attributes hide its content.
fn hides(tag: &str) -> bool {
    let squeezed: String = tag
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '"' && *c != '\'')
        .collect();
    ["display:none", "visibility:hidden", "opacity:0;"]
        .iter()
        .any(|s| squeezed.contains(s))
        || squeezed.ends_with("opacity:0")
        || squeezed.match_indices("font-size:0").any(|(i, m)| {
            !squeezed[i + m.len()..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
        })
        || (tag.starts_with("font") && squeezed.contains("size=0"))
}

fn count_letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphabetic()).count()
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
        let shown = crate::tokens::urls(&text).chain(text.split_whitespace().filter_map(|w| {
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
        assert_eq!(
            reasons(GOOD, Some("mx; spf=softfail; dkim=none")),
            vec!["SPF_SOFTFAIL"]
        );
        let no_at = b"From: Bob <bob>\r\nSubject: x\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nx";
        assert_eq!(reasons(no_at, None), vec!["MALFORMED_FROM"]);
        assert_eq!(reasons(b"", None), vec!["UNPARSABLE"]);
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
    fn hidden_text() {
        let poison = "tomato basil harvest ".repeat(20);
        for style in [
            r#"<div style="display: none">"#,
            r#"<span style='visibility:hidden'>"#,
            r#"<p style="color:#000; font-size:0px">"#,
            r#"<div style="opacity:0">"#,
            "<font size=0>",
        ] {
            let html = format!("<p>Buy now</p>{style}{poison}</div></span></p></font><p>end</p>");
            assert!(hidden_letters(&html) >= 300, "{style}");
        }
        // A preheader, scripts, styles and shown text are not hidden text.
        let shown = format!(
            "<div style=\"display:none;max-height:0\">Your March newsletter is here</div>\
             <style>.x{{display:none}}</style><script>var a='{poison}'</script>\
             <p style=\"font-size:0.9em\">{poison}</p><br/><img src=x>{poison}"
        );
        assert!(hidden_letters(&shown) < 50, "{}", hidden_letters(&shown));
        // A hidden element left open ends where its parent ends.
        let unclosed = format!("<td><div style=\"display:none\">x</td>{poison}");
        assert!(hidden_letters(&unclosed) < 5);
        let raw = format!(
            "From: x@y.test\r\nSubject: s\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m@y>\r\n\
             Content-Type: text/html\r\n\r\n<p>Cheap meds</p><div style=\"display:none\">{poison}</div>"
        );
        assert_eq!(
            reasons(raw.as_bytes(), None),
            vec!["HTML_ONLY", "HTML_HIDDEN_TEXT"]
        );
        // Hostile shapes cost a pass, not a square.
        let deep = "<div style=display:none>".repeat(100_000) + &"</div>".repeat(100_000);
        assert_eq!(hidden_letters(&deep), 0);
    }

    #[test]
    fn dnsbl_listings() {
        for (listed, want) in [(0, 0), (1, 60), (2, 90), (3, 90)] {
            let mut v = Verdict::default();
            dnsbl(listed, &mut v);
            assert_eq!(v.score, want);
        }
        assert_eq!(
            from_address(b"From: \"Bob\" <Bob@Example.NET>\r\n\r\n").as_deref(),
            Some("bob@example.net")
        );
        assert_eq!(from_address(b"From: undisclosed\r\n\r\n"), None);
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

    #[test]
    fn a_signed_newsletter_with_one_click_unsubscribe() {
        let news = b"From: News <news@mail.shop.test>\r\nSubject: Offers\r\n\
Date: Tue, 02 Jan 2024 10:00:00 +0000\r\nMessage-ID: <n1@shop.test>\r\n\
List-Unsubscribe: <https://shop.test/u/1>, <mailto:u@shop.test>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nThis week only.\r\n";
        let score = |ar: &str| {
            let mut v = Verdict::default();
            check(news, Some(ar), &mut v);
            v.reasons.iter().any(|r| r.name == "SIGNED_NEWSLETTER")
        };
        assert!(score(
            "mx; dkim=pass header.d=shop.test header.s=s1; spf=pass"
        ));
        assert!(score("mx; dkim=pass header.d=mail.shop.test"));
        assert!(score(
            "mx;\r\n\tdkim=pass header.i=\"@shop.test\" header.s=s1"
        ));
        // Signed by someone else, or not signed: nothing to vouch for it.
        assert!(!score("mx; dkim=pass header.d=bulkmailer.test"));
        assert!(!score("mx; dkim=fail header.d=shop.test"));
        assert!(!score("mx; dkim=pass header.d=ashop.test"));
        // Signed, but no one-click unsubscribe.
        let mut v = Verdict::default();
        check(GOOD, Some("mx; dkim=pass header.d=example.net"), &mut v);
        assert!(!v.reasons.iter().any(|r| r.name == "SIGNED_NEWSLETTER"));
    }
}
