//! The one path every incoming message takes between arrival and mailbox,
//! whichever door it came through (SMTP, `satchel deliver`, later the
//! submission door and the webmail): recipients resolved, trace fields
//! added, sender authentication (SPF/DKIM/DMARC), a spam verdict, each
//! recipient's Sieve filing, then stored durably for all recipients at
//! once. Only after `deliver` returns may a door say yes.

mod auth;
mod model;
mod trainer;

pub use auth::{Authenticator, Facts};
pub use model::RESIDENT_FRESH;
pub use trainer::{run_trainer, teach_pending};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use store::{Account, AccountId, InternalDate, MailStore, NewMessage, SpamNote};

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

/// Where a message came from, for its trace fields (RFC 5321 4.4): every
/// message the pipeline stores gets a `Return-Path:` and a `Received:`.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The envelope sender (MAIL FROM), empty for the null sender.
    pub mail_from: String,
    pub origin: Origin,
}

/// The door a message came in by.
#[derive(Debug, Clone)]
pub enum Origin {
    /// An SMTP client on the network.
    Smtp {
        /// What the client said in EHLO/HELO.
        helo: String,
        peer: IpAddr,
        /// "ESMTP", "ESMTPS" (over TLS), "SMTP"; RFC 3848.
        protocol: &'static str,
    },
    /// Handed over on this machine (`satchel deliver`, run by an MTA as
    /// its delivery agent): no peer to check SPF or DNSBLs against.
    Local,
}

/// What a filter run knows besides the message and the account.
struct Filing<'a> {
    /// RCPT TO for incoming mail; the first recipient of outgoing mail.
    envelope_to: &'a str,
    envelope_from: &'a str,
    /// Where the message goes unless the script says otherwise: the spam
    /// verdict's mailbox, or Sent.
    default: &'a str,
    /// Flags every copy gets (sent mail is \Seen).
    flags: &'a [&'a str],
    spam: Option<(i64, i64)>,
    /// The environment's "phase" (RFC 6785): "during" delivery or "outgoing".
    phase: &'a str,
}

/// What a filter run decided for one recipient.
struct Filed {
    copies: Vec<Copy>,
    replies: Vec<Reply>,
    /// The script rejected the message, with this reason.
    rejected: Option<String>,
}

impl Filed {
    fn kept(keep: Copy) -> Filed {
        Filed {
            copies: vec![keep],
            replies: Vec::new(),
            rejected: None,
        }
    }
}

/// A vacation auto-reply a script asked for.
struct Reply {
    account: Account,
    to: String,
    days: u64,
    handle: String,
    raw: Vec<u8>,
}

/// A header text as an RFC 2047 encoded word when it is not ASCII.
fn encode_word(text: &str) -> String {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        clean
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean.as_bytes())
        )
    }
}

/// Where one copy of a message goes, as a filter decided.
struct Copy {
    account: Account,
    mailbox: String,
    flags: Vec<String>,
    create: bool,
}

/// Sieve's flags as the store keeps them: system flags, and keywords
/// (those that are valid IMAP atoms; \Recent and unknown system flags are
/// dropped).
fn store_flags(flags: &[String]) -> (store::Flags, Vec<String>) {
    let mut system = store::Flags::empty();
    let mut keywords: Vec<String> = Vec::new();
    for f in flags {
        if let Some(flag) = store::Flags::parse(f) {
            system.insert(flag);
        } else if !f.starts_with('\\')
            && f.len() <= 100
            && f.bytes()
                .all(|c| c.is_ascii_graphic() && !b"(){%*\"\\]".contains(&c))
            && !keywords.iter().any(|k| k.eq_ignore_ascii_case(f))
        {
            keywords.push(f.clone());
        }
    }
    (system, keywords)
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
    /// DNS blocklists asked about SMTP clients (needs the authenticator's
    /// resolver).
    dnsbl: Vec<String>,
    /// The server-wide script run before each user's own.
    sieve_before: Option<sieve::Script>,
    /// Scripts users may `include :global`, by name.
    sieve_global: HashMap<String, String>,
}

/// What the pipeline knows of a message besides its bytes, for its score.
#[derive(Debug, Clone, Default)]
pub struct SpamFacts<'a> {
    /// The `Authentication-Results:` value, for mail that came over SMTP.
    pub auth_results: Option<&'a str>,
    /// The envelope sender, matched against block lists too.
    pub mail_from: Option<&'a str>,
    /// The From domain is one of ours (the forged local sender check).
    pub local_from: bool,
    /// On how many configured DNS blocklists the client's address is.
    pub dnsbl_listed: usize,
}

/// Scores a message on Xeams' scale: additive, `>= possible_junk` is
/// Possible Junk, `>= junk` is Junk, negative for trusted senders.
#[async_trait::async_trait]
pub trait SpamScorer: Send + Sync {
    /// One verdict per account of `accounts`, each with that user's own
    /// model, lists and correspondents; with no accounts, one verdict: the
    /// server's view alone.
    async fn score(
        &self,
        message: &[u8],
        facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict>;
}

/// The server's scorer: the rules, the server's Bayes model added to each
/// user's own (trained by `satchel spam train` and by users moving mail in
/// and out of Junk), and what each user said of the sender.
pub struct StoreScorer {
    store: Arc<dyn MailStore>,
    models: model::ModelCache,
}

impl StoreScorer {
    /// For a message or two: the models are looked up token by token.
    pub fn new(store: Arc<dyn MailStore>) -> StoreScorer {
        StoreScorer {
            store,
            models: model::ModelCache::default(),
        }
    }

    /// For many messages (the server, a folder): holds the server's model
    /// in memory, loaded with the first message and kept up to date with
    /// training at most [`RESIDENT_FRESH`] late.
    pub fn resident(store: Arc<dyn MailStore>) -> StoreScorer {
        StoreScorer {
            store,
            models: model::ModelCache::resident(),
        }
    }

    /// The Bayes reason from the models of `scopes`, added together.
    async fn bayes(&self, scopes: &[i64], tokens: &[String], verdict: &mut spam::Verdict) {
        match self.models.counts(&*self.store, scopes, tokens).await {
            Ok((totals, counts)) => {
                if let Some((name, score)) =
                    spam::bayes::probability(totals, &counts).and_then(spam::bayes_reason)
                {
                    verdict.add(name, score);
                }
            }
            // Mail still flows, judged by the rules alone.
            Err(e) => tracing::warn!("spam: cannot read the Bayes model: {e}"),
        }
    }

    /// What `account` said of the sender (From, or the envelope sender for
    /// a block).
    async fn standing(
        &self,
        account: AccountId,
        from: Option<&str>,
        mail_from: Option<&str>,
    ) -> Result<spam::personal::Standing, store::Error> {
        let lists = self.store.spam_lists(account).await?;
        let entries = lists.iter().map(|l| (l.pattern.as_str(), l.allow));
        let by_from = from.and_then(|f| spam::personal::listed(entries.clone(), f));
        let by_envelope = mail_from
            .filter(|m| !m.is_empty())
            .and_then(|m| spam::personal::listed(entries, m));
        // A block on either address holds; an allow needs the From.
        let listed = match (by_from, by_envelope) {
            (_, Some(false)) => Some(false),
            (f, _) => f,
        };
        let sent_to = match from {
            Some(f) => self.store.sent_to(account, f).await?,
            None => 0,
        };
        Ok(spam::personal::Standing { listed, sent_to })
    }
}

/// The server-wide Bayes model's scope in the store.
pub const SERVER_MODEL: i64 = 0;

#[async_trait::async_trait]
impl SpamScorer for StoreScorer {
    async fn score(
        &self,
        message: &[u8],
        facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict> {
        let mut shared = spam::Verdict::default();
        spam::rules::check(message, facts.auth_results, &mut shared);
        if facts.local_from
            && let Some(ar) = facts.auth_results
        {
            spam::rules::forged_local_sender(ar, &mut shared);
        }
        spam::rules::dnsbl(facts.dnsbl_listed, &mut shared);
        let tokens = spam::tokens::tokens(message);
        if accounts.is_empty() {
            self.bayes(&[SERVER_MODEL], &tokens, &mut shared).await;
            return vec![shared];
        }
        let from = spam::rules::from_address(message);
        let mut out = Vec::with_capacity(accounts.len());
        for &account in accounts {
            let mut verdict = shared.clone();
            self.bayes(&[SERVER_MODEL, account], &tokens, &mut verdict)
                .await;
            match self
                .standing(account, from.as_deref(), facts.mail_from)
                .await
            {
                Ok(standing) => spam::personal::check(&standing, facts.auth_results, &mut verdict),
                Err(e) => tracing::warn!("spam: cannot read account {account}'s lists: {e}"),
            }
            out.push(verdict);
        }
        out
    }
}

/// Scores nothing (every message 0: INBOX); for a pipeline without a store
/// model, such as tests of other parts.
pub struct Unscored;

#[async_trait::async_trait]
impl SpamScorer for Unscored {
    async fn score(
        &self,
        _message: &[u8],
        _facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict> {
        vec![spam::Verdict::default(); accounts.len().max(1)]
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
            dnsbl: Vec::new(),
            sieve_before: None,
            sieve_global: HashMap::new(),
        }
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
    /// authenticator's resolver, so only with one).
    pub fn with_dnsbl(mut self, zones: &[String]) -> Pipeline {
        self.dnsbl = zones.to_vec();
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

    /// Stores `raw` for each recipient's account (once each, however often
    /// it was named; `recipients` pairs the RCPT address with its account),
    /// with trace fields in front. Each recipient gets their own spam
    /// verdict (their model, lists and correspondents) and their own Sieve
    /// script's filing; recipients with the same verdict share one blob.
    /// All or nothing: one transaction.
    pub async fn deliver(
        &self,
        raw: &[u8],
        recipients: &[(String, Account)],
        trace: &Trace,
    ) -> Result<Vec<Delivered>, Error> {
        // Each account once, with the address it was first named by.
        let mut unique: Vec<(&str, &Account)> = Vec::new();
        for (rcpt, a) in recipients {
            if !unique.iter().any(|(_, u)| u.id == a.id) {
                unique.push((rcpt, a));
            }
        }
        let ids: Vec<AccountId> = unique.iter().map(|(_, a)| a.id).collect();
        let accounts: Vec<&Account> = unique.iter().map(|(_, a)| *a).collect();
        let local_from = match spam::rules::from_domain(raw) {
            Some(domain) => self.is_local_domain(&domain).await?,
            None => false,
        };
        // Fields in front of the message, and what the scorer learns.
        let mut prefix = self.trace_fields(trace, &accounts).into_bytes();
        let mut auth_results = None;
        let mut dnsbl_listed = 0;
        if let (Some(auth), Origin::Smtp { helo, peer, .. }) = (&self.authenticator, &trace.origin)
        {
            let facts = Facts {
                peer: *peer,
                helo,
                mail_from: &trace.mail_from,
                hostname: &self.hostname,
            };
            // Checked on the message as it came, before our fields.
            let field = auth.check(raw, &facts).await;
            prefix.extend_from_slice(field.as_bytes());
            auth_results = Some(field);
            dnsbl_listed = auth.dnsbl(*peer, &self.dnsbl).await;
        }
        let facts = SpamFacts {
            auth_results: auth_results.as_deref(),
            mail_from: Some(&trace.mail_from),
            local_from,
            dnsbl_listed,
        };
        let verdicts = self.scorer.score(raw, &facts, &ids).await;
        if verdicts.len() != unique.len() {
            return Err(Error::Scorer(verdicts.len(), unique.len()));
        }
        // One stored form per distinct set of spam fields.
        let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
        let mut body_of = Vec::with_capacity(unique.len());
        for v in &verdicts {
            let fields = v.header_fields(self.thresholds.junk);
            let i = match bodies.iter().position(|(f, _)| *f == fields) {
                Some(i) => i,
                None => {
                    let bytes = [prefix.as_slice(), fields.as_bytes(), raw].concat();
                    bodies.push((fields, bytes));
                    bodies.len() - 1
                }
            };
            body_of.push(i);
        }
        let analyses: Vec<mime::Analysis> = bodies.iter().map(|(_, b)| mime::analyze(b)).collect();
        // The verdict names each recipient's mailbox; their Sieve script
        // may file it elsewhere, flag it, or add copies.
        let mail_from = trace.mail_from.as_str();
        // Each stored copy: its mailbox, what the filter said, whose verdict.
        let mut placed: Vec<(store::Mailbox, Copy, usize)> = Vec::new();
        let mut replies: Vec<Reply> = Vec::new();
        let mut rejections: Vec<(String, String)> = Vec::new();
        let mut accepted = false;
        let mut filings: Vec<(Copy, usize)> = Vec::new();
        for (i, ((rcpt, a), v)) in unique.iter().zip(&verdicts).enumerate() {
            let body = &bodies[body_of[i]].1;
            let default = self.thresholds.mailbox(v.score);
            let facts = Filing {
                envelope_to: rcpt,
                envelope_from: mail_from,
                default,
                flags: &[],
                spam: Some((v.score, self.thresholds.junk)),
                phase: "during",
            };
            let mut filed = self.filing(body, a, &facts).await?;
            replies.append(&mut filed.replies);
            match filed.rejected {
                Some(reason) => rejections.push((a.address.clone(), reason)),
                None => accepted = true,
            }
            filings.extend(filed.copies.into_iter().map(|c| (c, i)));
        }
        // Every recipient's filter refuses it: refuse it, store nothing
        // (not even a mailbox a script would have created).
        if !accepted && let Some((_, reason)) = rejections.first() {
            return Err(Error::Rejected(reason.clone()));
        }
        for (copy, i) in filings {
            let target = self.target(&copy).await?;
            // One copy per mailbox, whatever the script said.
            if !placed
                .iter()
                .any(|(m, c, _)| c.account.id == copy.account.id && m.id == target.id)
            {
                placed.push((target, copy, i));
            }
        }
        for (who, reason) in &rejections {
            tracing::warn!(
                "sieve: {who} rejects a message ({reason:?}) that others accept; a bounce cannot be sent yet, so it is kept"
            );
        }
        let now = InternalDate::now();
        let copies = placed
            .iter()
            .map(|(m, copy, i)| {
                let b = &body_of[*i];
                let (flags, keywords) = store_flags(&copy.flags);
                (
                    m.id,
                    NewMessage {
                        raw: &bodies[*b].1,
                        size: analyses[*b].size,
                        flags,
                        keywords,
                        internal_date: now,
                        cache: store::MessageCache::new(
                            analyses[*b].envelope.clone(),
                            analyses[*b].bodystructure.clone(),
                        ),
                        spam: Some(SpamNote {
                            score: verdicts[*i].score,
                            reasons: verdicts[*i].reasons_text(),
                        }),
                    },
                )
            })
            .collect();
        let stored = self.store.append_copies(copies).await?;
        // Auto-replies go only once the message is stored.
        for reply in replies {
            if let Err(e) = self.send_reply(reply).await {
                tracing::warn!("sieve: vacation reply not sent: {e}");
            }
        }
        Ok(stored
            .iter()
            .zip(&placed)
            .map(|(s, (m, copy, _))| Delivered {
                account: copy.account.address.clone(),
                mailbox: m.name.clone(),
                uid: s.uid,
            })
            .collect())
    }

    /// Where one recipient's message goes: the spam verdict's mailbox,
    /// unless the user's active Sieve script says otherwise. A script that
    /// fails keeps the message (RFC 5228 2.10.6); what this server cannot
    /// do yet (redirect or reject to the outside: there is no outbound
    /// queue) keeps it too, with a warning.
    async fn filing(
        &self,
        message: &[u8],
        account: &Account,
        facts: &Filing<'_>,
    ) -> Result<Filed, Error> {
        let with_default = |flags: Vec<String>| {
            let mut all: Vec<String> = facts.flags.iter().map(|f| f.to_string()).collect();
            all.extend(flags);
            all
        };
        let keep = |flags: Vec<String>| Copy {
            account: account.clone(),
            mailbox: facts.default.to_string(),
            flags: with_default(flags),
            create: false,
        };
        let active = self.store.active_sieve_script(account.id).await?;
        // The server's script is for incoming mail only.
        let before = self
            .sieve_before
            .as_ref()
            .filter(|_| facts.phase == "during");
        if active.is_none() && before.is_none() {
            return Ok(Filed::kept(keep(Vec::new())));
        }
        let name = active.as_ref().map_or("", |(n, _)| n.as_str()).to_string();
        let user = match active
            .as_ref()
            .map(|(_, text)| sieve::Script::compile(text))
        {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                tracing::warn!(
                    "sieve: {}'s script {name:?} does not compile ({e}); only the server's runs",
                    account.address
                );
                if before.is_none() {
                    return Ok(Filed::kept(keep(Vec::new())));
                }
                None
            }
        };
        let scripts: Vec<&sieve::Script> = before.into_iter().chain(user.iter()).collect();
        // Scripts that include others get the user's scripts read first
        // (the run itself does no I/O).
        let mut personal: HashMap<String, String> = HashMap::new();
        if scripts
            .iter()
            .any(|s| s.requires().iter().any(|r| r == "include"))
        {
            for s in self.store.sieve_scripts(account.id).await? {
                if let Some(text) = self.store.sieve_script(account.id, &s.name).await? {
                    personal.insert(s.name, text);
                }
            }
        }
        let names: Vec<String> = self
            .store
            .list_mailboxes(account.id)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect();
        // Run without an await in between: the context is not Send.
        let outcome = {
            let exists = |n: &str| {
                names
                    .iter()
                    .any(|m| m == n || (m == "INBOX" && n.eq_ignore_ascii_case("INBOX")))
            };
            let version = env!("CARGO_PKG_VERSION");
            let environment = [
                (
                    "domain",
                    self.hostname
                        .split_once('.')
                        .map_or(self.hostname.as_str(), |(_, d)| d),
                ),
                ("host", self.hostname.as_str()),
                ("name", "Satchel"),
                ("phase", facts.phase),
                ("version", version),
            ];
            let include = |location: sieve::Location, name: &str| {
                let text = match location {
                    sieve::Location::Personal => personal.get(name),
                    sieve::Location::Global => self.sieve_global.get(name),
                }?;
                Some(sieve::Script::compile(text).map_err(|e| e.to_string()))
            };
            let context = sieve::Context {
                envelope_from: facts.envelope_from,
                envelope_to: facts.envelope_to,
                mailbox_exists: &exists,
                spam: facts.spam,
                environment: &environment,
                now: time::OffsetDateTime::now_utc().unix_timestamp(),
                zone: 0,
                include: &include,
            };
            sieve::Script::run_all(&scripts, &sieve::Message::new(message), &context)
        };
        if let Some(e) = &outcome.error {
            tracing::warn!(
                "sieve: {}'s script {name:?} failed: {e}; kept",
                account.address
            );
        }
        let mut out = Vec::new();
        let mut replies = Vec::new();
        let mut rejected = None;
        let mut kept = false;
        let outgoing = facts.phase == "outgoing";
        for action in outcome.actions {
            // What a user sends is filed, never dropped, forwarded or
            // answered: a script written for incoming mail must not
            // discard or redirect the Sent copies.
            if outgoing
                && !matches!(
                    action,
                    sieve::Action::Keep { .. } | sieve::Action::FileInto { .. }
                )
            {
                if !kept {
                    kept = true;
                    out.push(keep(Vec::new()));
                }
                continue;
            }
            match action {
                sieve::Action::Keep { flags } => {
                    kept = true;
                    out.push(keep(flags));
                }
                sieve::Action::FileInto {
                    mailbox,
                    flags,
                    create,
                } => out.push(Copy {
                    account: account.clone(),
                    mailbox,
                    flags: with_default(flags),
                    create,
                }),
                sieve::Action::Discard => {}
                sieve::Action::Redirect { address } => match self.recipient(&address).await? {
                    Recipient::Local(other) if other.id != account.id => out.push(Copy {
                        account: other,
                        mailbox: "INBOX".to_string(),
                        flags: Vec::new(),
                        create: false,
                    }),
                    // To oneself: a keep.
                    Recipient::Local(_) => {
                        kept = true;
                        out.push(keep(Vec::new()));
                    }
                    _ => {
                        tracing::warn!(
                            "sieve: {} redirects to {address}, outside this server, which it cannot send to yet; kept",
                            account.address
                        );
                        if !kept {
                            kept = true;
                            out.push(keep(Vec::new()));
                        }
                    }
                },
                // Refused at the SMTP level when every recipient refuses
                // (the caller decides); otherwise kept, as a bounce
                // cannot be sent yet.
                sieve::Action::Reject { reason, .. } => {
                    rejected = Some(reason);
                    if !kept {
                        kept = true;
                        out.push(keep(Vec::new()));
                    }
                }
                sieve::Action::Vacation {
                    to,
                    days,
                    subject,
                    from,
                    mime,
                    handle,
                    reason,
                } => {
                    let raw = self.vacation_reply(
                        message,
                        from.as_deref().unwrap_or(&account.address),
                        &to,
                        subject.as_deref(),
                        &reason,
                        mime,
                    );
                    replies.push(Reply {
                        account: account.clone(),
                        to,
                        days,
                        handle,
                        raw,
                    });
                }
            }
        }
        Ok(Filed {
            copies: out,
            replies,
            rejected,
        })
    }

    /// An auto-reply (RFC 5230 5, RFC 3834): to the sender, about the
    /// original, marked Auto-Submitted so that it draws no reply itself.
    fn vacation_reply(
        &self,
        original: &[u8],
        from: &str,
        to: &str,
        subject: Option<&str>,
        reason: &str,
        mime: bool,
    ) -> Vec<u8> {
        let header = mime::header::Header::parse(original, 0, original.len());
        let field = |name: &str| {
            header
                .get(original, name)
                .map(|v| String::from_utf8_lossy(&v).trim().to_string())
        };
        let subject = match subject {
            Some(s) => encode_word(s),
            None => format!("Auto: {}", field("subject").unwrap_or_default()),
        };
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        // Addresses as header text: nothing that could end the line.
        let clean = |a: &str| -> String {
            a.chars()
                .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
                .collect()
        };
        // :from may be a whole mailbox ("Alice" <alice@example.com>).
        let from = if from.contains('<') {
            from.chars().filter(|c| !c.is_control()).collect()
        } else {
            format!("<{}>", clean(from))
        };
        let to = clean(to);
        let mut out = format!(
            "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: <{}.vacation@{}>\r\nAuto-Submitted: auto-replied (vacation)\r\n",
            now.unix_timestamp_nanos(),
            self.hostname
        );
        if let Some(id) = field("message-id") {
            let references = field("references").map_or(id.clone(), |r| format!("{r} {id}"));
            out.push_str(&format!(
                "In-Reply-To: {id}\r\nReferences: {references}\r\n"
            ));
        }
        out.push_str("MIME-Version: 1.0\r\n");
        if mime {
            // The reason is a MIME entity: its own header, then its body.
            out.push_str(reason);
        } else {
            out.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
            out.push_str(reason);
        }
        if !out.ends_with("\r\n") {
            out.push_str("\r\n");
        }
        out.into_bytes()
    }

    /// Sends a vacation reply, once per sender and handle within its
    /// days. Only to local senders for now: there is no outbound queue.
    async fn send_reply(&self, reply: Reply) -> Result<(), Error> {
        let Recipient::Local(target) = self.recipient(&reply.to).await? else {
            tracing::warn!(
                "sieve: {}'s vacation reply to {}, outside this server, cannot be sent yet",
                reply.account.address,
                reply.to
            );
            return Ok(());
        };
        // Where it goes is known before the reply is noted as sent.
        let inbox = self.inbox(&target).await?;
        if !self
            .store
            .vacation_due(reply.account.id, &reply.handle, &reply.to, reply.days)
            .await?
        {
            return Ok(());
        }
        let analysis = mime::analyze(&reply.raw);
        self.store
            .append(
                inbox.id,
                NewMessage {
                    raw: &reply.raw,
                    size: analysis.size,
                    flags: store::Flags::empty(),
                    keywords: Vec::new(),
                    internal_date: InternalDate::now(),
                    cache: store::MessageCache::new(analysis.envelope, analysis.bodystructure),
                    spam: None,
                },
            )
            .await?;
        Ok(())
    }

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
        self.store.record_correspondents(account.id, &to).await?;
        let facts = Filing {
            envelope_to: recipients.first().map_or("", String::as_str),
            envelope_from: &account.address,
            default: "Sent",
            flags: &["\\Seen"],
            spam: None,
            phase: "outgoing",
        };
        let analysis = mime::analyze(raw);
        let mut placed: Vec<(store::Mailbox, Copy)> = Vec::new();
        // Sent mail gets no auto-replies.
        let filed = self.filing(raw, account, &facts).await?;
        for copy in filed.copies {
            let target = self.target(&copy).await?;
            if !placed
                .iter()
                .any(|(m, c)| c.account.id == copy.account.id && m.id == target.id)
            {
                placed.push((target, copy));
            }
        }
        let now = InternalDate::now();
        let copies = placed
            .iter()
            .map(|(m, copy)| {
                let (flags, keywords) = store_flags(&copy.flags);
                (
                    m.id,
                    NewMessage {
                        raw,
                        size: analysis.size,
                        flags,
                        keywords,
                        internal_date: now,
                        cache: store::MessageCache::new(
                            analysis.envelope.clone(),
                            analysis.bodystructure.clone(),
                        ),
                        spam: None,
                    },
                )
            })
            .collect();
        let stored = self.store.append_copies(copies).await?;
        Ok(stored
            .iter()
            .zip(&placed)
            .map(|(s, (m, copy))| Delivered {
                account: copy.account.address.clone(),
                mailbox: m.name.clone(),
                uid: s.uid,
            })
            .collect())
    }

    /// The mailbox a copy goes to: created when the script asked for it
    /// (`fileinto :create`); a missing one means INBOX (RFC 5228 4.1).
    async fn target(&self, copy: &Copy) -> Result<store::Mailbox, Error> {
        let account = &copy.account;
        match self.store.mailbox(account.id, &copy.mailbox).await {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            // A name no mailbox can have ("Tags/" from a script's
            // variables): the message still arrives, in INBOX.
            Err(store::Error::InvalidMailboxName(name, why)) => {
                tracing::warn!(
                    "sieve: {} files into {name:?}, which is not a mailbox name ({why}); filed into INBOX",
                    account.address
                );
                return self.inbox(account).await;
            }
            Err(e) => return Err(e.into()),
        }
        if copy.create {
            match self
                .store
                .create_mailbox(account.id, &copy.mailbox, None)
                .await
            {
                Ok(m) => return Ok(m),
                // Created meanwhile by another delivery.
                Err(store::Error::MailboxExists(_)) => {
                    if let Some(m) = self.store.mailbox(account.id, &copy.mailbox).await? {
                        return Ok(m);
                    }
                }
                Err(e) => tracing::warn!(
                    "sieve: cannot create {:?} for {}: {e}",
                    copy.mailbox,
                    account.address
                ),
            }
        } else if copy.mailbox != "Junk" && copy.mailbox != "Possible Junk" {
            tracing::warn!(
                "sieve: {} has no mailbox {:?}; filed into INBOX",
                account.address,
                copy.mailbox
            );
        }
        // A user who deleted Junk still gets the mail, in INBOX.
        self.inbox(account).await
    }

    async fn inbox(&self, account: &Account) -> Result<store::Mailbox, Error> {
        self.store
            .mailbox(account.id, "INBOX")
            .await?
            .ok_or_else(|| Error::NoInbox(account.address.clone()))
    }

    /// A domain of the config, or of an account or alias in the store.
    async fn is_local_domain(&self, domain: &str) -> Result<bool, Error> {
        Ok(self.domains.iter().any(|d| d == domain) || self.store.has_domain(domain).await?)
    }

    /// `Return-Path:` and `Received:` (RFC 5321 4.4), the fields every
    /// stored message starts with.
    fn trace_fields(&self, t: &Trace, recipients: &[&Account]) -> String {
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let sender: String = t.mail_from.chars().filter(|c| !c.is_control()).collect();
        let mut received = format!("Return-Path: <{sender}>\r\nReceived: ");
        match &t.origin {
            Origin::Smtp {
                helo,
                peer,
                protocol,
            } => {
                let helo: String = helo
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(255)
                    .collect();
                received.push_str(&format!(
                    "from {helo} ([{peer}])\r\n\tby {} (Satchel) with {protocol}",
                    self.hostname
                ));
            }
            // As MTAs stamp mail picked up on their own machine: no "from".
            Origin::Local => received.push_str(&format!(
                "by {} (Satchel, from satchel deliver) with local",
                self.hostname
            )),
        }
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
