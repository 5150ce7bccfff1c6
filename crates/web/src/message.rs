//! What the pages show of a message: its header summary for a list row,
//! and for the message page its text, or its HTML made safe.
//!
//! Mail is parsed through [`mime::message::parse`], which cuts nesting at
//! the depth every other walk of a message stops at (issue: one message of
//! 3,000 nested parts must not take the server down).

use std::collections::HashSet;

use mail_parser::{Address, Message, MimeHeaders};

/// A message list row's fields.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub from: String,
    pub subject: String,
    pub date: String,
    /// The `Date:` field in Unix seconds, when it parses.
    pub unix: Option<i64>,
}

/// The message page's fields.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    pub summary: Summary,
    /// The first `From:` address, lower case: what the sender lists match.
    pub sender: Option<String>,
    pub to: String,
    pub cc: String,
    /// The text part, when there is one.
    pub text: Option<String>,
    /// Whether an HTML part is shown instead (in its own frame).
    pub html: bool,
    /// Remote images that part has, which the frame leaves out unless asked.
    pub remote_images: usize,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub size: usize,
    /// Shown as a preview (a raster image type browsers render safely).
    pub image: bool,
}

/// An attachment's bytes as the user downloads them.
pub struct Download {
    pub name: String,
    /// The part's own type when it is a safe image type, otherwise
    /// `application/octet-stream`: an HTML or SVG attachment must never
    /// be rendered on this site's origin.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Raster image types a browser shows without running anything.
const SAFE_IMAGES: [(&str, &str); 4] = [
    ("png", "image/png"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
];

/// The list row of a message's header section.
pub fn summary(raw: &[u8]) -> Summary {
    let header = &raw[..mime::header_len(raw)];
    match mime::message::parse(header) {
        Some(m) => summary_of(&m),
        None => Summary::default(),
    }
}

/// The message page's view.
pub fn shown(raw: &[u8]) -> Shown {
    let Some(m) = mime::message::parse(raw) else {
        return Shown {
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            ..Shown::default()
        };
    };
    let text = m
        .text_part(0)
        .filter(|p| !p.is_text_html())
        .and_then(|_| m.body_text(0))
        .map(|t| t.into_owned());
    let html = text.is_none() && m.html_body_count() > 0;
    let remote_images = match m.body_html(0) {
        Some(h) if html => clean(&h, false).blocked_images,
        _ => 0,
    };
    let attachments = m
        .attachments()
        .map(|a| Attachment {
            name: attachment_name(a),
            size: a.len(),
            image: safe_image(a).is_some(),
        })
        .collect();
    Shown {
        summary: summary_of(&m),
        sender: m
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_lowercase),
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        text: text.or_else(|| (!html).then(String::new)),
        html,
        remote_images,
        attachments,
    }
}

/// A message's HTML, cleaned for its frame.
pub struct CleanHtml {
    pub html: String,
    /// Remote images left out (all of them, unless asked for).
    pub blocked_images: usize,
}

/// The message's HTML part cleaned for the frame: no script, no event
/// handler, no form, no style sheet, no link other than http(s) and mailto
/// (opening outside the frame). Remote images only with `images` (they
/// tell the sender the mail was read); the frame's policy blocks any left
/// too.
pub fn safe_html(raw: &[u8], images: bool) -> CleanHtml {
    let html = mime::message::parse(raw).and_then(|m| m.body_html(0).map(|h| h.into_owned()));
    match html {
        Some(html) => clean(&html, images),
        None => CleanHtml {
            html: String::new(),
            blocked_images: 0,
        },
    }
}

fn clean(html: &str, images: bool) -> CleanHtml {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    let blocked = Arc::new(AtomicUsize::new(0));
    let count = blocked.clone();
    let html = ammonia::Builder::default()
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                let remote = value.starts_with("http://") || value.starts_with("https://");
                if remote && images {
                    return Some(value.into());
                }
                if remote {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                return None;
            }
            Some(value.into())
        })
        .clean(html)
        .to_string();
    CleanHtml {
        html,
        blocked_images: blocked.load(Ordering::Relaxed),
    }
}

/// Attachment `n` (from 0, in the order [`shown`] lists them), decoded.
pub fn attachment(raw: &[u8], n: usize) -> Option<Download> {
    let m = mime::message::parse(raw)?;
    let part = m.attachments().nth(n)?;
    Some(Download {
        name: attachment_name(part),
        content_type: safe_image(part).unwrap_or("application/octet-stream"),
        bytes: part.contents().to_vec(),
    })
}

pub(crate) fn attachment_name(part: &mail_parser::MessagePart<'_>) -> String {
    part.attachment_name()
        .unwrap_or("(unnamed attachment)")
        .to_string()
}

fn safe_image(part: &mail_parser::MessagePart<'_>) -> Option<&'static str> {
    let ct = part.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("image") {
        return None;
    }
    let sub = ct.subtype()?;
    SAFE_IMAGES
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(sub))
        .map(|(_, t)| *t)
}

fn summary_of(m: &Message<'_>) -> Summary {
    Summary {
        from: addresses(m.from()),
        subject: m.subject().unwrap_or("(no subject)").to_string(),
        date: m.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        unix: m.date().map(|d| d.to_timestamp()),
    }
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    a.iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_loses_everything_active() {
        let dirty = r#"<p>Hello</p><script>alert(1)</script>
            <img src="http://x.test/a.png" onerror="alert(2)">
            <a href="javascript:alert(3)">j</a><a href="data:text/html,x">d</a>
            <a href="https://ok.test/">ok</a>
            <form action="http://x.test/"><input type=submit></form>
            <meta http-equiv="refresh" content="0;url=http://x.test/">
            <svg><a><set attributeName="href" to="javascript:alert(4)"/></a></svg>
            <style>@import url(http://x.test/s.css)</style><base href="http://x.test/">"#;
        let out = clean(dirty, false).html;
        for bad in [
            "script",
            "onerror",
            "javascript:",
            "data:",
            "<form",
            "<meta",
            "<svg",
            "<set",
            "@import",
            "<base",
            "x.test",
        ] {
            assert!(!out.contains(bad), "{bad} left in {out}");
        }
        assert!(out.contains("Hello"));
        assert!(out.contains(r#"href="https://ok.test/""#), "{out}");
        assert!(out.contains(r#"target="_blank""#), "{out}");
    }

    #[test]
    fn remote_images_only_when_asked_and_counted_when_not() {
        let html = r#"<p>x</p><img src="https://t.example/a.png"><img src="http://t.example/b.png"><img src="cid:c">"#;
        let blocked = clean(html, false);
        assert_eq!(blocked.blocked_images, 2);
        assert!(!blocked.html.contains("t.example"), "{}", blocked.html);
        let shown = clean(html, true);
        assert_eq!(shown.blocked_images, 0);
        assert!(
            shown.html.contains(r#"src="https://t.example/a.png""#),
            "{}",
            shown.html
        );
        assert!(!shown.html.contains("cid:"), "{}", shown.html);
    }

    #[test]
    fn a_text_message_shows_its_text_and_header() {
        let raw = b"From: Ann <ann@example.test>\r\nTo: bo@example.test\r\nSubject: Hi\r\n\r\nbody line\r\n";
        let s = shown(raw);
        assert_eq!(s.summary.from, "Ann <ann@example.test>");
        assert_eq!(s.summary.subject, "Hi");
        assert_eq!(s.to, "bo@example.test");
        assert_eq!(s.text.as_deref(), Some("body line\r\n"));
        assert!(!s.html);
    }

    #[test]
    fn attachments_are_listed_and_served_decoded_and_never_as_html() {
        let raw = b"Subject: A\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n<script>x</script>\r\n\
--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=dot.png\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n\
--b--\r\n";
        let s = shown(raw);
        let names: Vec<_> = s
            .attachments
            .iter()
            .map(|a| (a.name.as_str(), a.image))
            .collect();
        assert_eq!(names, [("page.html", false), ("dot.png", true)]);
        let html = attachment(raw, 0).unwrap();
        assert_eq!(html.content_type, "application/octet-stream");
        let png = attachment(raw, 1).unwrap();
        assert_eq!(
            (png.content_type, png.bytes.as_slice()),
            ("image/png", &b"hello"[..])
        );
        assert!(attachment(raw, 2).is_none());
    }

    #[test]
    fn html_only_mail_goes_to_the_frame() {
        let raw = b"Subject: H\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n";
        let s = shown(raw);
        assert!(s.html);
        assert!(s.text.is_none());
        assert!(safe_html(raw, false).html.contains("<p>x</p>"));
    }
}
