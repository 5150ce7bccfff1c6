//! The message trace's entries (design.md, "message trace"): what the
//! pipeline did with each message, kept in the store for the admin's
//! trace page. Written after the message is stored and the client's yes
//! is due; a failure to write one is logged and never fails the mail.

use mail_parser::MessageParser;
use store::{Account, TraceEntry, TraceRecipient};

use crate::{Delivered, Origin, Pipeline, Trace};

/// What the admin searches a message by, from its header.
pub(crate) fn header_facts(raw: &[u8]) -> (String, String) {
    let header = &raw[..mime::header_len(raw)];
    let Some(m) = MessageParser::default().parse_headers(header) else {
        return (String::new(), String::new());
    };
    let one_line = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect::<String>()
    };
    (
        one_line(m.message_id().unwrap_or_default()),
        one_line(m.subject().unwrap_or_default()),
    )
}

fn door_and_client(origin: &Origin) -> (String, String) {
    match origin {
        Origin::Smtp { helo, peer, .. } => ("smtp".into(), format!("{helo} [{peer}]")),
        Origin::Local => ("deliver".into(), String::new()),
        Origin::Internal => ("server".into(), String::new()),
        Origin::Submission {
            helo,
            peer,
            protocol,
        } => {
            let door = if *protocol == "HTTP" {
                "http"
            } else {
                "submission"
            };
            (door.into(), format!("{helo} [{peer}]"))
        }
    }
}

/// Mail for local accounts: each recipient's verdict and where its copies
/// went, or why none did.
pub(crate) struct Incoming<'a> {
    pub raw: &'a [u8],
    pub trace: &'a Trace,
    pub auth: Option<&'a str>,
    pub recipients: &'a [(&'a str, &'a Account)],
    pub verdicts: &'a [spam::Verdict],
    pub delivered: &'a [Delivered],
    pub rejections: &'a [(String, String)],
    pub forwards: &'a [(Account, String)],
}

/// Mail a user sent: the Sent copy, the local copies, and what was
/// queued (whose remote answers the queue adds by its ID).
pub(crate) struct Outgoing<'a> {
    pub raw: &'a [u8],
    pub trace: &'a Trace,
    pub qid: &'a str,
    pub sent: &'a [Delivered],
    pub local: &'a [Delivered],
    pub queued: &'a [String],
    pub refused: &'a [(String, String)],
}

impl Pipeline {
    pub(crate) async fn note_incoming(&self, n: Incoming<'_>) {
        let mut recipients = Vec::new();
        for ((rcpt, account), verdict) in n.recipients.iter().zip(n.verdicts) {
            let mailboxes: Vec<String> = n
                .delivered
                .iter()
                .filter(|d| d.account == account.address)
                .map(|d| d.mailbox.clone())
                .collect();
            let rejected = n.rejections.iter().find(|(r, _)| r == rcpt);
            let forwarded: Vec<&str> = n
                .forwards
                .iter()
                .filter(|(a, _)| a.id == account.id)
                .map(|(_, to)| to.as_str())
                .collect();
            let (outcome, note) = match (rejected, mailboxes.is_empty(), forwarded.is_empty()) {
                (Some((_, why)), _, _) => ("rejected", why.clone()),
                (None, false, true) => ("delivered", String::new()),
                (None, false, false) => (
                    "delivered",
                    format!("also forwarded to {}", forwarded.join(", ")),
                ),
                (None, true, false) => (
                    "forwarded",
                    format!("forwarded to {}", forwarded.join(", ")),
                ),
                (None, true, true) => ("discarded", "a filter discarded it".into()),
            };
            recipients.push(TraceRecipient {
                rcpt: rcpt.to_string(),
                account: account.address.clone(),
                mailboxes,
                score: Some(verdict.score),
                reasons: verdict.reasons_text(),
                outcome: outcome.into(),
                note,
            });
        }
        self.note(
            n.raw,
            n.trace,
            "in",
            n.auth.unwrap_or_default(),
            "",
            recipients,
        )
        .await;
    }

    pub(crate) async fn note_outgoing(&self, n: Outgoing<'_>) {
        let mut recipients: Vec<TraceRecipient> = n
            .sent
            .iter()
            .map(|d| TraceRecipient {
                rcpt: String::new(),
                account: d.account.clone(),
                mailboxes: vec![d.mailbox.clone()],
                outcome: "sent-copy".into(),
                ..TraceRecipient::default()
            })
            .collect();
        let mut local: Vec<TraceRecipient> = Vec::new();
        for d in n.local {
            match local.iter_mut().find(|r| r.account == d.account) {
                Some(r) => r.mailboxes.push(d.mailbox.clone()),
                None => local.push(TraceRecipient {
                    rcpt: d.account.clone(),
                    account: d.account.clone(),
                    mailboxes: vec![d.mailbox.clone()],
                    score: d.score,
                    outcome: "delivered".into(),
                    ..TraceRecipient::default()
                }),
            }
        }
        recipients.extend(local);
        recipients.extend(n.refused.iter().map(|(rcpt, why)| TraceRecipient {
            rcpt: rcpt.clone(),
            outcome: "rejected".into(),
            note: why.clone(),
            ..TraceRecipient::default()
        }));
        recipients.extend(n.queued.iter().map(|rcpt| TraceRecipient {
            rcpt: rcpt.clone(),
            outcome: "queued".into(),
            ..TraceRecipient::default()
        }));
        let qid = if n.queued.is_empty() { "" } else { n.qid };
        self.note(n.raw, n.trace, "out", "", qid, recipients).await;
    }

    async fn note(
        &self,
        raw: &[u8],
        trace: &Trace,
        direction: &str,
        auth: &str,
        qid: &str,
        recipients: Vec<TraceRecipient>,
    ) {
        let (message_id, subject) = header_facts(raw);
        let (door, client) = door_and_client(&trace.origin);
        let entry = TraceEntry {
            at: store::unix_now(),
            direction: direction.into(),
            door,
            client,
            mail_from: trace.mail_from.clone(),
            message_id,
            subject,
            auth: auth
                .trim()
                .trim_start_matches("Authentication-Results:")
                .trim()
                .to_string(),
            qid: qid.into(),
            recipients,
            answers: Vec::new(),
        };
        if let Err(e) = self.store.record_trace(&entry).await {
            tracing::warn!("trace: cannot keep the entry of {}: {e}", entry.message_id);
        }
    }
}
