//! The junk report: one message in the user's INBOX listing what arrived
//! in Junk and Possible Junk since the last report (sender, subject, score,
//! top reasons), each with a release link, in a text part a POP3 client
//! shows (one `Release: URL` line per message) and an HTML part. Nothing
//! is sent when nothing arrived.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_parser::MessageParser;
use store::{Account, InternalDate, MailStore, MessageCache, NewMessage};

use crate::{Links, is_quarantine};

/// What a report says and links to.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// The webmail as users reach it, without a trailing slash
    /// (`https://mail.example.test`): the links start with it.
    pub base_url: String,
    /// Days a release link works.
    pub link_days: i64,
    /// Days Junk and Possible Junk keep mail, told in the report.
    pub retention_days: u32,
}

impl Default for ReportSettings {
    fn default() -> ReportSettings {
        ReportSettings {
            base_url: "http://localhost:8080".into(),
            link_days: 14,
            retention_days: 30,
        }
    }
}

/// The most messages one report lists; the rest are in the webmail.
const MAX_ENTRIES: usize = 200;
/// Reasons shown per message.
const TOP_REASONS: usize = 3;
/// Days in which a POP3 login makes an account a POP3 user.
const POP3_RECENT_DAYS: i64 = 30;

/// Whether `account` gets reports: its own choice, or by default when it
/// logged in over POP3 in the last 30 days and never over IMAP or the web
/// (its mail client never shows it Junk).
pub fn wants_report(account: &Account, logins: &[(String, i64)], now: i64) -> bool {
    if let Some(on) = account.junk_report {
        return on;
    }
    let pop3 = logins
        .iter()
        .any(|(door, at)| door == "pop3" && *at >= now - POP3_RECENT_DAYS * 86_400);
    let elsewhere = logins
        .iter()
        .any(|(door, _)| door == "imap" || door == "http");
    pop3 && !elsewhere
}

/// One held message.
struct Entry {
    from: String,
    subject: String,
    score: Option<i64>,
    reasons: String,
    link: String,
}

/// Puts the report of what arrived since the last one into the account's
/// INBOX and notes that it covered up to `now`: the number of messages it
/// lists, or `None` (and nothing sent) when nothing arrived.
pub async fn send(
    store: &dyn MailStore,
    links: &Links,
    settings: &ReportSettings,
    account: &Account,
    now: i64,
) -> Result<Option<usize>, store::Error> {
    let mut sections: Vec<(String, store::MailboxId, Vec<Entry>, usize)> = Vec::new();
    let expires = now + settings.link_days * 86_400;
    let mut listed = 0;
    for mailbox in store.list_mailboxes(account.id).await? {
        if !is_quarantine(&mailbox) {
            continue;
        }
        let mut arrived: Vec<store::MessageMeta> = store
            .messages(mailbox.id)
            .await?
            .into_iter()
            .filter(|m| {
                m.internal_date.unix > account.junk_report_at && m.internal_date.unix <= now
            })
            .collect();
        arrived.sort_by_key(|m| m.internal_date.unix);
        let total = arrived.len();
        let mut entries = Vec::new();
        for meta in arrived.into_iter().take(MAX_ENTRIES.saturating_sub(listed)) {
            let raw = store.read_blob(&meta.blob).await?;
            let (from, subject) = sender_and_subject(&raw);
            let note = store.spam_note(mailbox.id, meta.uid).await?;
            let token = links.make(
                account.id,
                mailbox.id,
                mailbox.uidvalidity,
                meta.uid,
                expires,
            );
            entries.push(Entry {
                from,
                subject,
                score: note.as_ref().map(|n| n.score),
                reasons: note
                    .map(|n| {
                        n.reasons
                            .split_whitespace()
                            .take(TOP_REASONS)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
                link: format!("{}/junk/release?t={token}", settings.base_url),
            });
        }
        listed += entries.len();
        if total > 0 {
            sections.push((mailbox.name.clone(), mailbox.id, entries, total));
        }
    }
    let total: usize = sections.iter().map(|s| s.3).sum();
    if total == 0 {
        return Ok(None);
    }
    let raw = compose(account, settings, &sections, total, now);
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await?
        .ok_or_else(|| store::Error::NoMailbox("INBOX".into()))?;
    let analysis = mime::analyze(&raw);
    store
        .append(
            inbox.id,
            NewMessage {
                raw: &raw,
                size: analysis.size,
                flags: store::Flags::empty(),
                keywords: Vec::new(),
                internal_date: InternalDate::now(),
                cache: MessageCache::from(&analysis),
                spam: None,
            },
        )
        .await?;
    store.junk_report_sent(account.id, now).await?;
    tracing::info!(
        "junk report: sent to {} listing {total} messages",
        account.address
    );
    Ok(Some(total))
}

fn compose(
    account: &Account,
    settings: &ReportSettings,
    sections: &[(String, store::MailboxId, Vec<Entry>, usize)],
    total: usize,
    now: i64,
) -> Vec<u8> {
    let domain = account
        .address
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let since = if account.junk_report_at > 0 {
        " since the last report"
    } else {
        ""
    };
    let mut text = format!(
        "These {total} message{} arrived in Junk or Possible Junk{}. Your mail program may not\n\
         show these mailboxes: if one of them is mail you wanted, open its Release link and it\n\
         moves to your INBOX (and the filter learns from it). Mail stays in Junk and Possible\n\
         Junk for {} days, then it is deleted. Release links work for {} days, once each.\n",
        plural(total),
        since,
        settings.retention_days,
        settings.link_days,
    );
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p>These {total} message{} \
         arrived in Junk or Possible Junk{}. If one of them is mail you wanted, release it: it \
         moves to your INBOX and the filter learns from it. Mail stays there for {} days, then \
         it is deleted; release links work for {} days, once each.</p>",
        plural(total),
        since,
        settings.retention_days,
        settings.link_days,
    );
    for (name, id, entries, count) in sections {
        let review = format!("{}/mail/{}", settings.base_url, id.0);
        text.push_str(&format!("\n{name} ({count})\n"));
        html.push_str(&format!(
            "<h3>{} ({count})</h3><table cellpadding=\"4\" style=\"border-collapse:collapse\">\
             <tr><th align=\"left\">From</th><th align=\"left\">Subject</th><th align=\"left\">Score</th><th></th></tr>",
            escape(name)
        ));
        for e in entries {
            let score = e.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            text.push_str(&format!(
                "\nFrom: {}\nSubject: {}\nScore: {score}{}\nRelease: {}\n",
                e.from,
                e.subject,
                if e.reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", e.reasons)
                },
                e.link
            ));
            html.push_str(&format!(
                "<tr style=\"border-top:1px solid #ddd\"><td>{}</td><td>{}</td><td>{score} <small>{}</small></td>\
                 <td><a href=\"{}\">Release to INBOX</a></td></tr>",
                escape(&e.from),
                escape(&e.subject),
                escape(&e.reasons),
                escape(&e.link)
            ));
        }
        if entries.len() < *count {
            text.push_str(&format!(
                "\n({} more: see the webmail)\n",
                count - entries.len()
            ));
        }
        text.push_str(&format!("\nReview {name} in the webmail: {review}\n"));
        html.push_str(&format!(
            "</table><p><a href=\"{}\">Review {} in the webmail</a></p>",
            escape(&review),
            escape(name)
        ));
    }
    html.push_str("</body></html>");
    MessageBuilder::new()
        .from(Address::new_address(
            Some("Junk report"),
            format!("postmaster@{domain}"),
        ))
        .to(account.address.clone())
        .subject(format!(
            "Junk report: {total} message{} held for you",
            plural(total)
        ))
        .date(Date::new(now))
        .message_id(format!("junk-report.{}.{now}@{domain}", account.id.0))
        // An automatic message (RFC 3834 5): no vacation reply answers it.
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(text)
        .html_body(html)
        .write_to_vec()
        .unwrap_or_default()
}

/// `Name <address>` (or what there is) and the subject of a message.
pub(crate) fn sender_and_subject(raw: &[u8]) -> (String, String) {
    let header = &raw[..mime::header_len(raw)];
    let Some(m) = MessageParser::default().parse_headers(header) else {
        return (String::new(), "(no subject)".into());
    };
    let from = m
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    // One line each: a folded or hostile field must not add lines (the
    // text part's `Release:` lines are what scripts look for).
    let one_line = |s: &str| {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
    };
    (
        one_line(&from),
        one_line(m.subject().unwrap_or("(no subject)")),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::AccountId;

    fn account(report: Option<bool>) -> Account {
        Account {
            id: AccountId(1),
            address: "pop@example.test".into(),
            is_admin: false,
            quota_bytes: 0,
            quota_messages: 0,
            pop3_delete: None,
            sent_copy: None,
            junk_report: report,
            junk_report_at: 0,
            referral: None,
        }
    }

    #[test]
    fn pop3_only_users_get_it_by_default() {
        let now = 1_800_000_000;
        let pop3 = vec![("pop3".to_string(), now - 86_400)];
        assert!(wants_report(&account(None), &pop3, now));
        let old = vec![("pop3".to_string(), now - 40 * 86_400)];
        assert!(!wants_report(&account(None), &old, now));
        let both = vec![
            ("pop3".to_string(), now),
            ("imap".to_string(), now - 300 * 86_400),
        ];
        assert!(!wants_report(&account(None), &both, now));
        // Sending through submission does not show Junk either.
        let sends = vec![("pop3".to_string(), now), ("submission".to_string(), now)];
        assert!(wants_report(&account(None), &sends, now));
        assert!(wants_report(&account(Some(true)), &[], now));
        assert!(!wants_report(&account(Some(false)), &pop3, now));
    }

    #[test]
    fn a_hostile_subject_cannot_add_a_line() {
        let raw = b"From: x@y.test\r\nSubject: =?utf-8?q?Hi=0ARelease:_http://evil?=\r\n\r\nbody";
        let (_, subject) = sender_and_subject(raw);
        assert!(!subject.contains('\n'), "{subject:?}");
    }
}
