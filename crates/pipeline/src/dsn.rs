//! Delivery status notifications (RFC 3464): a multipart/report with a
//! text for people, the machine-readable delivery-status, and the original
//! message's header. Sent with the null sender (RFC 5321 4.5.5) and
//! `Auto-Submitted: auto-replied` (RFC 3834) so that nothing replies to it.

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::mime::{BodyPart, MimePart};

/// What the report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Given up on (RFC 3464 2.3.3 `failed`).
    Failed,
    /// Still trying (`delayed`), until `until` (Unix seconds).
    Delayed { until: i64 },
}

/// One recipient's line in the report.
pub struct Failure<'a> {
    pub recipient: &'a str,
    /// The last answer: a server's reply (`550 5.1.1 ...`) or our own words.
    pub answer: &'a str,
}

/// What a report is about.
pub struct Report<'a> {
    /// Our name (Reporting-MTA, the From: address's domain).
    pub hostname: &'a str,
    /// Who gets it: the original envelope sender.
    pub to: &'a str,
    pub action: Action,
    /// When the message entered the queue (Unix seconds).
    pub arrived: i64,
    pub failures: &'a [Failure<'a>],
    /// The original message; its header goes into the report.
    pub original: &'a [u8],
}

/// The report as a message, ready to deliver.
pub fn build(report: &Report<'_>) -> Vec<u8> {
    let (subject, human) = match report.action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to the recipients below. \
             This is final: it will not be tried again.",
        ),
        Action::Delayed { .. } => (
            "Delayed Mail (still being retried)",
            "Your message has not been delivered to the recipients below yet. \
             It is still being tried; you need not send it again. \
             You will hear again only if it fails for good.",
        ),
    };
    let mut text = format!(
        "This is the mail server at {}.\r\n\r\n{human}\r\n\r\n",
        report.hostname
    );
    for f in report.failures {
        text.push_str(&format!(
            "<{}>: {}\r\n",
            clean(f.recipient),
            clean(f.answer)
        ));
    }
    if let Action::Delayed { until } = report.action {
        text.push_str(&format!(
            "\r\nIt will be tried until {}.\r\n",
            Date::new(until).to_rfc822()
        ));
    }

    let mut status = format!(
        "Reporting-MTA: dns; {}\r\nArrival-Date: {}\r\n",
        report.hostname,
        Date::new(report.arrived).to_rfc822()
    );
    let now = Date::now().to_rfc822();
    for f in report.failures {
        let (action, default) = match report.action {
            Action::Failed => ("failed", "5.0.0"),
            Action::Delayed { .. } => ("delayed", "4.0.0"),
        };
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {}\r\n\
             Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {now}\r\n",
            clean(f.recipient),
            status_code(f.answer).unwrap_or(default),
            clean(f.answer),
        ));
        if let Action::Delayed { until } = report.action {
            status.push_str(&format!(
                "Will-Retry-Until: {}\r\n",
                Date::new(until).to_rfc822()
            ));
        }
    }
    let header = header_of(report.original);

    let parts = vec![
        MimePart::new(ContentType::new("text/plain"), BodyPart::Text(text.into())),
        MimePart::raw(BodyPart::Text(
            format!("Content-Type: message/delivery-status\r\n\r\n{status}").into(),
        )),
        MimePart::raw(BodyPart::Binary(
            [
                b"Content-Type: text/rfc822-headers\r\n\r\n".as_slice(),
                header,
            ]
            .concat()
            .into(),
        )),
    ];
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(parts),
    );
    let from = format!("MAILER-DAEMON@{}", report.hostname);
    MessageBuilder::new()
        .from(("Mail Delivery System", from.as_str()))
        .to(report.to)
        .subject(subject)
        .date(Date::now())
        .message_id(format!("{}.dsn@{}", crate::queue_id(), report.hostname))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .body(body)
        .write_to_vec()
        .unwrap_or_default()
}

/// The enhanced status code of a reply (`550 5.1.1 ...` gives 5.1.1).
fn status_code(answer: &str) -> Option<&str> {
    let code = answer.split_ascii_whitespace().nth(1)?;
    let parts: Vec<&str> = code.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(code)
}

/// Text from a remote server, safe inside a header or a line of ours.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(900)
        .collect()
}

/// The header of a message, up to and with its blank line.
fn header_of(raw: &[u8]) -> &[u8] {
    match memchr::memmem::find(raw, b"\r\n\r\n") {
        Some(i) => &raw[..i + 2],
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_parses_as_multipart_report() {
        let original = b"From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let raw = build(&Report {
            hostname: "mx.example.test",
            to: "a@example.test",
            action: Action::Failed,
            arrived: 1_700_000_000,
            failures: &[Failure {
                recipient: "b@remote.test",
                answer: "550 5.1.1 no such user",
            }],
            original,
        });
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Status: 5.1.1"));
        assert!(text.contains("Final-Recipient: rfc822; b@remote.test"));
        assert!(text.contains("Subject: hi"));
        assert!(text.contains("Auto-Submitted: auto-replied"));
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.parts.len(), 4);
    }

    #[test]
    fn status_codes_come_from_the_reply() {
        assert_eq!(status_code("550 5.1.1 no"), Some("5.1.1"));
        assert_eq!(status_code("550 no such user"), None);
        assert_eq!(status_code("451 4.7.1 later"), Some("4.7.1"));
    }
}
