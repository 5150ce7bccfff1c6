//! The outgoing leg: the stored copy of what a user sends (Sent, or where
//! their outgoing-phase script files it).

use store::Account;

use crate::filing::Filing;
use crate::storing::Form;
use mime::fields as header;

use crate::{Delivered, Error, Origin, Pipeline, Recipient, Trace};

impl Pipeline {
    /// Files the copy of a message a user sent (through the submission
    /// door or the webmail): into Sent, \Seen, unless their Sieve script,
    /// run with `environment "phase"` = "outgoing", files it elsewhere.
    /// Its recipients become the user's trusted correspondents.
    pub async fn outgoing(
        &self,
        account: &Account,
        raw: &[u8],
        recipients: &[String],
    ) -> Result<Vec<Delivered>, Error> {
        let to: Vec<String> = recipients
            .iter()
            .map(|r| r.to_lowercase())
            .filter(|r| !r.eq_ignore_ascii_case(&account.address))
            .collect();
        let facts = Filing {
            envelope_to: recipients.first().map_or("", String::as_str),
            envelope_from: &account.address,
            default: "Sent",
            flags: &["\\Seen"],
            spam: None,
            phase: "outgoing",
        };
        let copy = async {
            // Sent mail gets no auto-replies.
            let filed = self.filing(raw, account, &facts).await?;
            let placed = self
                .place(filed.copies.into_iter().map(|c| (c, 0)).collect())
                .await?;
            let analysis = mime::analyze(raw);
            self.store_placed(&placed, |_| Form {
                raw,
                analysis: &analysis,
                spam: None,
            })
            .await
        };
        // Independent writes: at once, so that they share a group commit.
        let (credited, copied) =
            tokio::join!(self.store.record_correspondents(account.id, &to), copy);
        credited?;
        copied
    }
}

pub use store::SENT_WINDOW_SECS;
pub use store::SentCopy;

/// A message a user sends, as the submission doors hand it over.
pub struct Submission<'a> {
    pub account: &'a Account,
    /// MAIL FROM: one of the account's addresses (the door checked).
    pub mail_from: &'a str,
    pub recipients: &'a [String],
    pub raw: &'a [u8],
    /// `Origin::Submission` with the client's name and address.
    pub origin: Origin,
    /// The server's rule; the account's own, when it has one, wins.
    pub sent_copy: SentCopy,
}

/// What became of a submitted message.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub qid: String,
    /// The Sent copy (none when the rule said not to keep one).
    pub sent: Vec<Delivered>,
    /// Copies for local recipients.
    pub local: Vec<Delivered>,
    /// Remote recipients, now in the queue.
    pub queued: Vec<String>,
}

impl Pipeline {
    /// The outgoing leg (design.md): `Date:` and `Message-ID:` added when
    /// missing; the Sent copy (with `Bcc:`) filed once; the copy that
    /// travels, without `Bcc:` and with our `Received:`, delivered to local
    /// recipients through the incoming pipeline and queued for remote ones.
    /// Only after this returns may the door say yes.
    pub async fn submit(&self, s: Submission<'_>) -> Result<Submitted, Error> {
        let qid = crate::queue_id();
        let prepared = self.complete_header(s.raw, &qid);
        let message_id = header::value(&prepared, "Message-ID");
        // What travels is our Received: in front of the prepared message
        // without Bcc:. The queue keeps the two apart, so that without a
        // Bcc: its copy shares the Sent copy's blob.
        let received = self.submission_received(&s.origin, &qid).into_bytes();
        let unblinded = header::without(&prepared, "Bcc");
        let mut travelling = received.clone();
        travelling.extend_from_slice(&unblinded);

        let mut local = Vec::new();
        let mut remote = Vec::new();
        for r in s.recipients {
            match self.recipient(r).await? {
                Recipient::Local(account) => local.push((r.clone(), account)),
                Recipient::NotLocal => remote.push(r.clone()),
                Recipient::Unknown => {
                    tracing::warn!("submission: {qid}: no local user {r}; left out")
                }
            }
        }
        // The Sent copy, the local copies and the queue entry are
        // independent: made at once, they share group commits (one fsync
        // instead of three). The door answers only after all three.
        let rule = s.account.sent_copy.unwrap_or(s.sent_copy);
        let sent = self.sent_copy(
            s.account,
            &prepared,
            s.recipients,
            message_id.as_deref(),
            rule,
        );
        let trace = Trace {
            mail_from: s.mail_from.to_string(),
            origin: s.origin.clone(),
        };
        let locals = async {
            if local.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            match self.deliver(&travelling, &local, &trace).await {
                // The local recipients' filters refuse it; the Sent copy
                // and the remote recipients stand, and the sender hears
                // of it in a DSN (the door has said yes for the others).
                Err(Error::Rejected(reason)) => {
                    tracing::info!("submission: {qid}: local recipients reject it: {reason}");
                    let refused: Vec<(String, String)> = local
                        .iter()
                        .map(|(r, _)| (r.clone(), reason.clone()))
                        .collect();
                    self.bounce_rejections(&trace, &travelling, &refused).await;
                    Ok((Vec::new(), refused))
                }
                other => other.map(|d| (d, Vec::new())),
            }
        };
        // The signatures are made while the Sent copy is being written;
        // the queue entry waits for it, to share its blob.
        let signing = async {
            if remote.is_empty() {
                return Ok(Vec::new());
            }
            // The door checked every From: address against the account.
            let author =
                spam::rules::from_domain(&travelling).or_else(|| domain_of(&s.account.address));
            self.dkim_fields(&qid, author.as_deref(), &travelling).await
        };
        let (sent, delivered, fields) = tokio::join!(sent, locals, signing);
        let (sent, (delivered, refused), fields) = (sent?, delivered?, fields?);
        if !remote.is_empty() {
            self.enqueue_signed(
                store::NewQueued {
                    qid: &qid,
                    sender: s.mail_from,
                    account: Some(s.account.id),
                    prefix: &received,
                    raw: &unblinded,
                    recipients: &remote,
                },
                fields,
            )
            .await?;
        }
        self.note_outgoing(crate::journal::Outgoing {
            raw: &prepared,
            trace: &trace,
            qid: &qid,
            sent: &sent,
            local: &delivered,
            queued: &remote,
            refused: &refused,
        })
        .await;
        Ok(Submitted {
            qid,
            sent,
            local: delivered,
            queued: remote,
        })
    }

    /// Puts a message for remote recipients into the queue, DKIM-signed
    /// as `sign_as` (a local domain; `None`: the server's first domain),
    /// and wakes the relay: the one way out for submissions, redirects,
    /// auto-replies and bounces. Only a submission, whose `From:` the door
    /// checked against the account, signs as its `From:` domain (DMARC
    /// alignment, RFC 7489 3.1.1); anything else signs as the account's
    /// or the server's domain, so that a forged `From:` in forwarded mail
    /// never gets our signature. A key that cannot sign is logged and the
    /// message goes unsigned rather than not at all; a store that cannot
    /// answer fails the call.
    pub async fn queue_remote(
        &self,
        message: store::NewQueued<'_>,
        sign_as: Option<&str>,
    ) -> Result<(), Error> {
        let fields = if message.prefix.is_empty() {
            self.dkim_fields(message.qid, sign_as, message.raw).await?
        } else {
            let whole = [message.prefix, message.raw].concat();
            self.dkim_fields(message.qid, sign_as, &whole).await?
        };
        self.enqueue_signed(message, fields).await
    }

    /// The DKIM-Signature fields for `raw` as `sign_as` would send it;
    /// none when no key can sign (logged: the message goes unsigned
    /// rather than not at all).
    async fn dkim_fields(
        &self,
        qid: &str,
        sign_as: Option<&str>,
        raw: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let domain = sign_as
            .map(|d| d.to_ascii_lowercase())
            .or_else(|| self.domains.first().cloned());
        let Some(domain) = domain else {
            return Ok(Vec::new());
        };
        match self.dkim.sign(&domain, raw).await {
            Ok(fields) => Ok(fields.into_bytes()),
            Err(crate::dkim::DkimError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::error!("dkim: {qid}: sent unsigned: {e}");
                Ok(Vec::new())
            }
        }
    }

    /// Queues `message` with `fields` (the signatures of its prefix and
    /// body) in front, and wakes the relay.
    async fn enqueue_signed(
        &self,
        message: store::NewQueued<'_>,
        fields: Vec<u8>,
    ) -> Result<(), Error> {
        let mut prefix = fields;
        prefix.extend_from_slice(message.prefix);
        self.store
            .enqueue(store::NewQueued {
                prefix: &prefix,
                ..message
            })
            .await?;
        self.queued.notify_one();
        Ok(())
    }

    /// The Sent copy, by the account's rule; noted by Message-ID, so that
    /// a client's own APPEND of it (or a retried submission) is not a
    /// second copy.
    async fn sent_copy(
        &self,
        account: &Account,
        raw: &[u8],
        recipients: &[String],
        message_id: Option<&str>,
        rule: SentCopy,
    ) -> Result<Vec<Delivered>, Error> {
        if rule == SentCopy::Never {
            return Ok(Vec::new());
        }
        if rule == SentCopy::UnlessAppended
            && let Some(id) = message_id
            && self
                .store
                .sent_copy(account.id, id, store::unix_now() - SENT_WINDOW_SECS)
                .await?
                .is_some()
        {
            return Ok(Vec::new());
        }
        let sent = self.outgoing(account, raw, recipients).await?;
        if let (Some(id), Some(first)) = (message_id, sent.first())
            && let Some(mailbox) = self.store.mailbox(account.id, &first.mailbox).await?
        {
            self.store
                .note_sent(account.id, id, mailbox.id, first.uid)
                .await?;
        }
        Ok(sent)
    }

    /// `Date:` and `Message-ID:` in front when the client left them out
    /// (RFC 6409 8.2, 8.3).
    fn complete_header(&self, raw: &[u8], qid: &str) -> Vec<u8> {
        let mut front = String::new();
        if !header::has(raw, "Date") {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc2822)
                .unwrap_or_default();
            front.push_str(&format!("Date: {now}\r\n"));
        }
        if !header::has(raw, "Message-ID") {
            front.push_str(&format!(
                "Message-ID: <{}@{}>\r\n",
                qid.to_lowercase(),
                self.hostname
            ));
        }
        let mut out = front.into_bytes();
        out.extend_from_slice(raw);
        out
    }

    /// The `Received:` of a submission (RFC 5321 4.4, RFC 3848 ESMTPSA).
    fn submission_received(&self, origin: &Origin, qid: &str) -> String {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let from = self.received_source(origin);
        format!("Received: {from} id {qid};\r\n\t{now}\r\n")
    }
}

/// The domain of an address.
pub(crate) fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
}
