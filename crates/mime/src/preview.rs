//! PREVIEW (RFC 8970): a short plain-text beginning of a message, made
//! once at delivery and kept with its cached views, so a client's message
//! list shows it without fetching any body.

/// Characters a preview holds at most (RFC 8970 3: no more than 256).
pub const MAX_PREVIEW: usize = 200;

/// The first text of the message's body (HTML made plain text, white
/// space collapsed, at most [`MAX_PREVIEW`] characters); None when it has
/// no text at all.
pub fn preview(raw: &[u8]) -> Option<String> {
    let message = crate::message::parse(raw)?;
    let text = message.body_text(0)?;
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars().filter(|c| !c.is_control()) {
            if chars == MAX_PREVIEW {
                return Some(out);
            }
            out.push(c);
            chars += 1;
        }
        if chars >= MAX_PREVIEW {
            break;
        }
    }
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_short_plain_text() {
        let plain = b"Subject: x\r\n\r\nHello   there,\r\n\r\nsee\tyou.\r\n";
        assert_eq!(preview(plain).as_deref(), Some("Hello there, see you."));
        let html =
            b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9 <b>menu</b></p>\r\n";
        assert_eq!(preview(html).as_deref(), Some("Café menu"));
        let long = format!("Subject: x\r\n\r\n{}\r\n", "word ".repeat(200));
        let p = preview(long.as_bytes()).unwrap_or_default();
        assert!(p.chars().count() <= MAX_PREVIEW && p.starts_with("word word"));
        assert_eq!(preview(b"Subject: x\r\n\r\n  \r\n"), None);
        let attachment_only = b"Content-Type: application/pdf\r\n\r\n%PDF\r\n";
        assert_eq!(preview(attachment_only), None);
    }
}
