//! The one path every incoming message takes between arrival and mailbox,
//! whichever door it came through (SMTP, `satchel deliver`, later the
//! submission door and the webmail): recipients resolved, trace fields
//! added, a spam verdict and filters (seams the spam and Sieve work fills;
//! for now every message is kept in INBOX), then stored durably for all
//! recipients at once. Only after `deliver` returns may a door say yes.

mod auth;

pub use auth::{Authenticator, Facts};

use std::net::IpAddr;
use std::sync::Arc;

use store::{Account, InternalDate, MailStore, NewMessage};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("account {0} has no INBOX")]
    NoInbox(String),
}

/// What a recipient address is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account (directly, by alias or with a +detail).
    Local(Account),
    /// A local domain, but nobody by that name.
    Unknown,
    /// Not a domain this server receives for.
    NotLocal,
}

/// Where a message came from, for its trace fields (RFC 5321 4.4).
#[derive(Debug, Clone)]
pub struct Trace {
    /// The envelope sender (MAIL FROM), empty for the null sender.
    pub mail_from: String,
    /// What the client said in EHLO/HELO.
    pub helo: String,
    pub peer: IpAddr,
    /// "ESMTP", "ESMTPS" (over TLS), "SMTP"; RFC 3848.
    pub protocol: &'static str,
}

/// One recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub account: String,
    pub mailbox: String,
    pub uid: u32,
}

pub struct Pipeline {
    store: Arc<dyn MailStore>,
    hostname: String,
    domains: Vec<String>,
    /// SPF, DKIM and DMARC for mail that came over SMTP; without one, no
    /// `Authentication-Results:` is written.
    authenticator: Option<Authenticator>,
    scorer: Box<dyn SpamScorer>,
    thresholds: Thresholds,
}

/// Scores a message on Xeams' scale: additive, `>= possible_junk` is
/// Possible Junk, `>= junk` is Junk, negative for trusted senders.
#[async_trait::async_trait]
pub trait SpamScorer: Send + Sync {
    async fn score(&self, message: &[u8], auth_results: Option<&str>) -> spam::Verdict;
}

/// The server's scorer: the rules, and the Bayes model the store keeps
/// (trained by `satchel spam train` and by users moving mail in and out of
/// Junk).
pub struct StoreScorer {
    store: Arc<dyn MailStore>,
}

impl StoreScorer {
    pub fn new(store: Arc<dyn MailStore>) -> StoreScorer {
        StoreScorer { store }
    }
}

/// The server-wide Bayes model's scope in the store.
pub const SERVER_MODEL: i64 = 0;

#[async_trait::async_trait]
impl SpamScorer for StoreScorer {
    async fn score(&self, message: &[u8], auth_results: Option<&str>) -> spam::Verdict {
        let mut verdict = spam::Verdict::default();
        spam::rules::check(message, auth_results, &mut verdict);
        let tokens = spam::tokens::tokens(message);
        match self.store.bayes_counts(SERVER_MODEL, &tokens).await {
            Ok(((spam, ham), counts)) => {
                let totals = spam::bayes::Counts { spam, ham };
                let counts: Vec<spam::bayes::Counts> = counts
                    .into_iter()
                    .map(|(spam, ham)| spam::bayes::Counts { spam, ham })
                    .collect();
                if let Some((name, score)) =
                    spam::bayes::probability(totals, &counts).and_then(spam::bayes_reason)
                {
                    verdict.add(name, score);
                }
            }
            // Mail still flows, judged by the rules alone.
            Err(e) => tracing::warn!("spam: cannot read the Bayes model: {e}"),
        }
        verdict
    }
}

/// Scores nothing (every message 0: INBOX); for a pipeline without a store
/// model, such as tests of other parts.
pub struct Unscored;

#[async_trait::async_trait]
impl SpamScorer for Unscored {
    async fn score(&self, _message: &[u8], _auth_results: Option<&str>) -> spam::Verdict {
        spam::Verdict::default()
    }
}

/// Where scores file mail (contract `[spam]`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub possible_junk: i64,
    pub junk: i64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            possible_junk: 60,
            junk: 100,
        }
    }
}

impl Thresholds {
    /// The default mailbox for a score.
    pub fn mailbox(&self, score: i64) -> &'static str {
        if score >= self.junk {
            "Junk"
        } else if score >= self.possible_junk {
            "Possible Junk"
        } else {
            "INBOX"
        }
    }
}

impl Pipeline {
    /// `domains` are the local domains of the config; domains of existing
    /// accounts are local too, so a fresh install receives for its users.
    pub fn new(store: Arc<dyn MailStore>, hostname: &str, domains: &[String]) -> Pipeline {
        Pipeline {
            store,
            hostname: hostname.to_string(),
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            authenticator: None,
            scorer: Box::new(Unscored),
            thresholds: Thresholds::default(),
        }
    }

    /// Scores with `scorer` and files by `thresholds`.
    pub fn with_spam(mut self, scorer: Box<dyn SpamScorer>, thresholds: Thresholds) -> Pipeline {
        self.scorer = scorer;
        self.thresholds = thresholds;
        self
    }

    /// Checks SPF, DKIM and DMARC of mail that arrives over SMTP.
    pub fn with_authenticator(mut self, authenticator: Authenticator) -> Pipeline {
        self.authenticator = Some(authenticator);
        self
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Resolves a recipient: the address or an alias, or with a `+detail`
    /// in the local part, the address without it.
    pub async fn recipient(&self, address: &str) -> Result<Recipient, Error> {
        if let Some(account) = self.store.account(address).await? {
            return Ok(Recipient::Local(account));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Ok(Recipient::Unknown);
        };
        if let Some((base, _detail)) = local.split_once('+')
            && let Some(account) = self.store.account(&format!("{base}@{domain}")).await?
        {
            return Ok(Recipient::Local(account));
        }
        let domain = domain.to_ascii_lowercase();
        let local_domain = self.is_local_domain(&domain).await?;
        Ok(if local_domain {
            Recipient::Unknown
        } else {
            Recipient::NotLocal
        })
    }

    /// Stores `raw` for each account (once each, however often it was
    /// named), with trace fields in front when `trace` is given. All or
    /// nothing: one transaction, one blob.
    pub async fn deliver(
        &self,
        raw: &[u8],
        accounts: &[Account],
        trace: Option<&Trace>,
    ) -> Result<Vec<Delivered>, Error> {
        let mut unique: Vec<&Account> = Vec::new();
        for a in accounts {
            if !unique.iter().any(|u| u.id == a.id) {
                unique.push(a);
            }
        }
        let (message, verdict) = match trace {
            Some(t) => {
                let mut m = self.trace_fields(t, &unique).into_bytes();
                let mut auth_results = None;
                if let Some(auth) = &self.authenticator {
                    let facts = Facts {
                        peer: t.peer,
                        helo: &t.helo,
                        mail_from: &t.mail_from,
                        hostname: &self.hostname,
                    };
                    // Checked on the message as it came, before our fields.
                    let field = auth.check(raw, &facts).await;
                    m.extend_from_slice(field.as_bytes());
                    auth_results = Some(field);
                }
                let mut verdict = self.scorer.score(raw, auth_results.as_deref()).await;
                if let Some(ar) = &auth_results
                    && let Some(domain) = spam::rules::from_domain(raw)
                    && self.is_local_domain(&domain).await?
                {
                    spam::rules::forged_local_sender(ar, &mut verdict);
                }
                m.extend_from_slice(verdict.header_fields(self.thresholds.junk).as_bytes());
                m.extend_from_slice(raw);
                (m, verdict)
            }
            // `satchel deliver` stores the bytes as given: no fields added.
            None => (raw.to_vec(), self.scorer.score(raw, None).await),
        };
        // The spam verdict names a mailbox per recipient; the user's filters
        // may send it elsewhere (their own issue: for now they keep it).
        let score = verdict.score;
        let mut inboxes = Vec::with_capacity(unique.len());
        for a in &unique {
            let name = self.thresholds.mailbox(score);
            let target = match self.store.mailbox(a.id, name).await? {
                Some(m) => m,
                // A user who deleted Junk still gets the mail, in INBOX.
                None => self
                    .store
                    .mailbox(a.id, "INBOX")
                    .await?
                    .ok_or_else(|| Error::NoInbox(a.address.clone()))?,
            };
            inboxes.push(target);
        }
        let analysis = mime::analyze(&message);
        let ids: Vec<_> = inboxes.iter().map(|m| m.id).collect();
        let stored = self
            .store
            .append_to_many(
                &ids,
                NewMessage {
                    raw: &message,
                    size: analysis.size,
                    flags: store::Flags::empty(),
                    keywords: Vec::new(),
                    internal_date: InternalDate::now(),
                    cache: analysis.cache,
                },
            )
            .await?;
        Ok(stored
            .iter()
            .zip(&unique)
            .zip(&inboxes)
            .map(|((s, a), m)| Delivered {
                account: a.address.clone(),
                mailbox: m.name.clone(),
                uid: s.uid,
            })
            .collect())
    }

    /// `Return-Path:` and `Received:` (RFC 5321 4.4).
    /// A domain of the config, or of an account or alias in the store.
    async fn is_local_domain(&self, domain: &str) -> Result<bool, Error> {
        Ok(self.domains.iter().any(|d| d == domain) || self.store.has_domain(domain).await?)
    }

    fn trace_fields(&self, t: &Trace, recipients: &[&Account]) -> String {
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let helo: String = t
            .helo
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let sender: String = t.mail_from.chars().filter(|c| !c.is_control()).collect();
        let mut received = format!(
            "Return-Path: <{sender}>\r\nReceived: from {helo} ([{}])\r\n\tby {} (Satchel) with {}",
            t.peer, self.hostname, t.protocol
        );
        if let [only] = recipients {
            // RFC 5321 4.4: "for" only with one recipient, not to disclose others.
            received.push_str(&format!("\r\n\tfor <{}>", only.address));
        }
        received.push_str(&format!("; {date}\r\n"));
        received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_file_by_score() {
        let t = Thresholds::default();
        assert_eq!(t.mailbox(-20), "INBOX");
        assert_eq!(t.mailbox(59), "INBOX");
        assert_eq!(t.mailbox(60), "Possible Junk");
        assert_eq!(t.mailbox(99), "Possible Junk");
        assert_eq!(t.mailbox(100), "Junk");
    }
}
