//! The one path every incoming message takes between arrival and mailbox,
//! whichever door it came through (SMTP, `satchel deliver`, later the
//! submission door and the webmail): recipients resolved, trace fields
//! added, sender authentication (SPF/DKIM/DMARC), a spam verdict, each
//! recipient's Sieve filing, then stored durably for all recipients at
//! once. Only after `deliver` returns may a door say yes.

mod bounces;
pub mod dkim;
mod dns;
pub mod dsn;
mod filing;
mod journal;
mod model;
mod outgoing;
mod recipients;
mod scoring;
mod sender_checks;
mod storing;
mod trace;
mod trainer;

pub use bounces::MAX_HOPS;
pub use dns::{Dns, LookupError, Published};
pub use model::RESIDENT_FRESH;
pub use outgoing::{SentCopy, Submission, Submitted};
pub use recipients::Recipient;
pub use scoring::{SERVER_MODEL, SpamFacts, SpamScorer, StoreScorer, Thresholds, Unscored};
pub use sender_checks::{SenderChecks, SenderFacts};
pub use trace::{Origin, Trace};
pub use trainer::{run_trainer, teach_pending};

use std::collections::HashMap;
use std::sync::Arc;

use store::{Account, AccountId, MailStore};

use filing::Filing;
use storing::StoredForms;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("account {0} has no INBOX")]
    NoInbox(String),
    /// The recipients' filters refused the message (Sieve reject).
    #[error("the recipient's filter rejects the message: {0}")]
    Rejected(String),
    #[error("the spam scorer gave {0} verdicts for {1} recipients")]
    Scorer(usize, usize),
}

/// One recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub account: String,
    pub mailbox: String,
    pub uid: u32,
    /// The copy's spam score (none for what a user sent).
    pub score: Option<i64>,
}

pub struct Pipeline {
    store: Arc<dyn MailStore>,
    hostname: String,
    domains: Vec<String>,
    /// SPF, DKIM and DMARC for mail that came over SMTP; without one, no
    /// `Authentication-Results:` is written.
    sender_checks: Option<SenderChecks>,
    scorer: Box<dyn SpamScorer>,
    thresholds: Thresholds,
    /// DNS blocklists asked about SMTP clients (needs the sender checks'
    /// resolver).
    dnsbl: Vec<String>,
    /// The server-wide script run before each user's own.
    sieve_before: Option<sieve::Script>,
    /// Scripts users may `include :global`, by name.
    sieve_global: HashMap<String, String>,
    /// Woken whenever this process queues outbound mail.
    queued: Arc<tokio::sync::Notify>,
    /// Signs what goes into the queue.
    dkim: dkim::Signer,
    /// The account that receives postmaster@ each local domain.
    postmaster: Option<String>,
}

impl Pipeline {
    /// `domains` are the local domains of the config; domains of existing
    /// accounts are local too, so a fresh install receives for its users.
    pub fn new(store: Arc<dyn MailStore>, hostname: &str, domains: &[String]) -> Pipeline {
        Pipeline {
            hostname: hostname.to_string(),
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            sender_checks: None,
            scorer: Box::new(Unscored),
            thresholds: Thresholds::default(),
            dnsbl: Vec::new(),
            sieve_before: None,
            sieve_global: HashMap::new(),
            queued: Arc::new(tokio::sync::Notify::new()),
            dkim: dkim::Signer::new(store.clone()),
            postmaster: None,
            store,
        }
    }

    /// Notified whenever this pipeline queues outbound mail: the relay
    /// waits on it.
    pub fn queue_wake(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    /// Scores with `scorer` and files by `thresholds`.
    pub fn with_spam(mut self, scorer: Box<dyn SpamScorer>, thresholds: Thresholds) -> Pipeline {
        self.scorer = scorer;
        self.thresholds = thresholds;
        self
    }

    /// Runs `before` ahead of every user's own script, and lets scripts
    /// `include :global` the `global` ones.
    pub fn with_sieve(
        mut self,
        before: Option<sieve::Script>,
        global: HashMap<String, String>,
    ) -> Pipeline {
        self.sieve_before = before;
        self.sieve_global = global;
        self
    }

    /// Asks these DNS blocklists about every SMTP client (through the
    /// sender checks' resolver, so only with one).
    pub fn with_dnsbl(mut self, zones: &[String]) -> Pipeline {
        self.dnsbl = zones.to_vec();
        self
    }

    /// Delivers postmaster@ every local domain to this account (else to
    /// the oldest admin account).
    pub fn with_postmaster(mut self, account: Option<String>) -> Pipeline {
        self.postmaster = account;
        self
    }

    /// Checks SPF, DKIM and DMARC of mail that arrives over SMTP.
    pub fn with_sender_checks(mut self, checks: SenderChecks) -> Pipeline {
        self.sender_checks = Some(checks);
        self
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Stores `raw` for each recipient's account (once each, however often
    /// it was named; `recipients` pairs the RCPT address with its account,
    /// as stage 1 resolved it), the stages of design.md in order. Each
    /// recipient gets their own spam verdict (their model, lists and
    /// correspondents) and their own Sieve script's filing; recipients with
    /// the same verdict share one blob. All or nothing: one transaction.
    pub async fn deliver(
        &self,
        raw: &[u8],
        recipients: &[(String, Account)],
        trace: &Trace,
    ) -> Result<Vec<Delivered>, Error> {
        let unique = each_account_once(recipients);
        let accounts: Vec<&Account> = unique.iter().map(|(_, a)| *a).collect();
        // 2. Trace fields; 3. what the sender checks found, written after.
        let mut prefix = self.trace_fields(trace, &accounts).into_bytes();
        let sender = self.check_sender(raw, trace).await;
        if let Some(field) = &sender.auth_results {
            prefix.extend_from_slice(field.as_bytes());
        }
        // 4. One verdict per account, and one stored form per distinct set
        // of spam fields.
        let verdicts = self.verdicts(raw, trace, &sender, &accounts).await?;
        // X-Spam-Status says Yes for what is filed as Junk or Possible Junk.
        let forms = StoredForms::new(&prefix, raw, &verdicts, self.thresholds.possible_junk);
        // 5. Each recipient's filing, of the form their verdict gave.
        let mut copies = Vec::new();
        let mut replies = Vec::new();
        let mut rejections: Vec<(String, String)> = Vec::new();
        let mut forwards: Vec<(Account, String)> = Vec::new();
        let mut accepted = false;
        for (i, ((rcpt, account), verdict)) in unique.iter().zip(&verdicts).enumerate() {
            let facts = Filing {
                envelope_to: rcpt,
                envelope_from: &trace.mail_from,
                default: self.thresholds.mailbox(verdict.score),
                flags: &[],
                spam: Some((verdict.score, self.thresholds.junk)),
                phase: "during",
            };
            let filed = self.filing(forms.bytes(i), account, &facts).await?;
            replies.extend(filed.replies);
            match filed.rejected {
                Some(reason) => rejections.push((rcpt.to_string(), reason)),
                None => accepted = true,
            }
            forwards.extend(filed.forwards.into_iter().map(|f| ((*account).clone(), f)));
            copies.extend(filed.copies.into_iter().map(|c| (c, i)));
        }
        // Every recipient's filter refuses it: refuse it, store nothing
        // (not even a mailbox a script would have created).
        if !accepted && let Some((_, reason)) = rejections.first() {
            return Err(Error::Rejected(reason.clone()));
        }
        // 6. Forwards queued, then the copies stored for everyone at once:
        // a failure of either means no yes, and the sender's retry. In this
        // order a retry can repeat a forward, never a stored copy; and a
        // forward that can never be queued (too big once signed) fails
        // before anything is stored. Then the notices, which may be lost
        // but never stand in for the mail.
        self.forward(trace, &[prefix.as_slice(), raw].concat(), &forwards)
            .await?;
        let placed = self.place(copies).await?;
        let delivered = self
            .store_placed(&placed, |i| forms.form(i, &verdicts[i]))
            .await?;
        // The server page's deliveries per hour and verdict: one per
        // recipient account, by what its score said.
        for v in &verdicts {
            stats::global().delivered(self.thresholds.verdict(v.score));
        }
        // What a user sends is traced once, by the outgoing leg.
        if !matches!(trace.origin, Origin::Submission { .. }) {
            self.note_incoming(journal::Incoming {
                raw,
                trace,
                auth: sender.auth_results.as_deref(),
                recipients: &unique,
                verdicts: &verdicts,
                delivered: &delivered,
                rejections: &rejections,
                forwards: &forwards,
            })
            .await;
        }
        self.bounce_rejections(trace, raw, &rejections).await;
        self.send_replies(replies).await;
        Ok(delivered)
    }

    /// Why `account` takes no more mail (its quota is used up), if so;
    /// accounts without a quota cost nothing.
    pub async fn over_quota(&self, account: &Account) -> Result<Option<String>, Error> {
        if account.quota_bytes <= 0 && account.quota_messages <= 0 {
            return Ok(None);
        }
        Ok(self.store.usage(account.id).await?.full())
    }

    /// Stage 3, for mail from the network: SPF, DKIM and DMARC (on the
    /// message as it came, before our fields) and the DNS blocklists.
    async fn check_sender(&self, raw: &[u8], trace: &Trace) -> SenderFindings {
        let (Some(checks), Origin::Smtp { helo, peer, .. }) = (&self.sender_checks, &trace.origin)
        else {
            return SenderFindings::default();
        };
        let facts = SenderFacts {
            peer: *peer,
            helo,
            mail_from: &trace.mail_from,
            hostname: &self.hostname,
        };
        SenderFindings {
            auth_results: Some(checks.check(raw, &facts).await),
            dnsbl_listed: checks.dnsbl(*peer, &self.dnsbl).await,
        }
    }

    /// Stage 4: one verdict per account, in their order.
    async fn verdicts(
        &self,
        raw: &[u8],
        trace: &Trace,
        sender: &SenderFindings,
        accounts: &[&Account],
    ) -> Result<Vec<spam::Verdict>, Error> {
        let ids: Vec<AccountId> = accounts.iter().map(|a| a.id).collect();
        let verdicts = self.score_with(raw, trace, sender, &ids).await?;
        if verdicts.len() != accounts.len() {
            return Err(Error::Scorer(verdicts.len(), accounts.len()));
        }
        Ok(verdicts)
    }

    /// The verdicts a message would get if it came as `trace` says, stored
    /// nowhere (`satchel spam score --ip`): the sender checks, blocklists
    /// and scorer of delivery itself. With no accounts, the server's view.
    pub async fn score(
        &self,
        raw: &[u8],
        trace: &Trace,
        accounts: &[AccountId],
    ) -> Result<Vec<spam::Verdict>, Error> {
        let sender = self.check_sender(raw, trace).await;
        self.score_with(raw, trace, &sender, accounts).await
    }

    async fn score_with(
        &self,
        raw: &[u8],
        trace: &Trace,
        sender: &SenderFindings,
        accounts: &[AccountId],
    ) -> Result<Vec<spam::Verdict>, Error> {
        let local_from = match spam::rules::from_domain(raw) {
            Some(domain) => self.is_local_domain(&domain).await?,
            None => false,
        };
        let facts = SpamFacts {
            auth_results: sender.auth_results.as_deref(),
            mail_from: Some(&trace.mail_from),
            local_from,
            dnsbl_listed: sender.dnsbl_listed,
        };
        Ok(self.scorer.score(raw, &facts, accounts).await)
    }
}

/// An id for one accepted message, for replies, the queue and the log:
/// unique in this process and across restarts (time in microseconds, then
/// a counter), and saying nothing about mailboxes or UIDs.
pub fn queue_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("{:011X}{:05X}", micros & 0xFFF_FFFF_FFFF, n & 0xF_FFFF)
}

/// Each account once, with the address it was first named by.
fn each_account_once(recipients: &[(String, Account)]) -> Vec<(&str, &Account)> {
    let mut unique: Vec<(&str, &Account)> = Vec::new();
    for (rcpt, a) in recipients {
        if !unique.iter().any(|(_, u)| u.id == a.id) {
            unique.push((rcpt, a));
        }
    }
    unique
}

/// What stage 3 found out about the sender.
#[derive(Default)]
struct SenderFindings {
    /// The `Authentication-Results:` field, with its CRLF.
    auth_results: Option<String>,
    dnsbl_listed: usize,
}
