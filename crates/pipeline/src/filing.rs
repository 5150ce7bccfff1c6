//! Stage 5, filing: where each recipient's copy goes (the verdict's
//! mailbox, unless their Sieve script says otherwise), what flags it gets,
//! and the vacation replies a script asked for (RFC 5228, RFC 5230).

use std::collections::HashMap;

use store::{Account, InternalDate, NewMessage};

use crate::{Error, Pipeline, Recipient};

/// What a filter run knows besides the message and the account.
pub(crate) struct Filing<'a> {
    /// RCPT TO for incoming mail; the first recipient of outgoing mail.
    pub envelope_to: &'a str,
    pub envelope_from: &'a str,
    /// Where the message goes unless the script says otherwise: the spam
    /// verdict's mailbox, or Sent.
    pub default: &'a str,
    /// Flags every copy gets (sent mail is \Seen).
    pub flags: &'a [&'a str],
    pub spam: Option<(i64, i64)>,
    /// The environment's "phase" (RFC 6785): "during" delivery or "outgoing".
    pub phase: &'a str,
}

impl Filing<'_> {
    /// Flags every copy gets, then the script's.
    fn with_default(&self, flags: Vec<String>) -> Vec<String> {
        let mut all: Vec<String> = self.flags.iter().map(|f| f.to_string()).collect();
        all.extend(flags);
        all
    }

    /// The implicit or explicit keep: the default mailbox.
    fn keep(&self, account: &Account, flags: Vec<String>) -> Placement {
        Placement {
            account: account.clone(),
            mailbox: self.default.to_string(),
            flags: self.with_default(flags),
            create: false,
        }
    }
}

/// The scripts one recipient's mail runs through.
struct Scripts<'a> {
    /// The user's active script's name, for the log.
    name: String,
    /// The server's `[sieve] before` script.
    before: Option<&'a sieve::Script>,
    user: Option<sieve::Script>,
}

/// What a filter run decided for one recipient.
pub(crate) struct Filed {
    pub copies: Vec<Placement>,
    pub replies: Vec<Reply>,
    /// Redirects to addresses outside this server.
    pub forwards: Vec<String>,
    /// The script rejected the message, with this reason.
    pub rejected: Option<String>,
}

impl Filed {
    fn kept(keep: Placement) -> Filed {
        Filed {
            copies: vec![keep],
            replies: Vec::new(),
            forwards: Vec::new(),
            rejected: None,
        }
    }
}

/// A vacation auto-reply a script asked for.
pub(crate) struct Reply {
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

/// A copy's placement: whose, which mailbox, with what flags, as a
/// filter decided.
pub(crate) struct Placement {
    pub account: Account,
    pub mailbox: String,
    pub flags: Vec<String>,
    /// `fileinto :create`: make the mailbox if it is missing.
    pub create: bool,
}

impl Placement {
    /// Sieve's flags as the store keeps them: system flags, and keywords
    /// (those that are valid IMAP atoms; \Recent and unknown system flags
    /// are dropped).
    pub(crate) fn store_flags(&self) -> (store::Flags, Vec<String>) {
        let mut system = store::Flags::empty();
        let mut keywords: Vec<String> = Vec::new();
        for f in &self.flags {
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
}

impl Pipeline {
    /// Where one recipient's message goes: the spam verdict's mailbox,
    /// unless the user's active Sieve script says otherwise. A script that
    /// fails keeps the message (RFC 5228 2.10.6).
    pub(crate) async fn filing(
        &self,
        message: &[u8],
        account: &Account,
        facts: &Filing<'_>,
    ) -> Result<Filed, Error> {
        let Some(scripts) = self.scripts(account, facts.phase).await? else {
            return Ok(Filed::kept(facts.keep(account, Vec::new())));
        };
        let outcome = self.run_scripts(&scripts, message, account, facts).await?;
        if let Some(e) = &outcome.error {
            tracing::warn!(
                "sieve: {}'s script {:?} failed: {e}; kept",
                account.address,
                scripts.name
            );
        }
        self.carry_out(outcome.actions, message, account, facts)
            .await
    }

    /// The scripts that file `account`'s mail in `phase`: the server's
    /// (incoming mail only), then the user's active one. `None`: no script,
    /// so the implicit keep.
    async fn scripts(&self, account: &Account, phase: &str) -> Result<Option<Scripts<'_>>, Error> {
        let active = self.store.active_sieve_script(account.id).await?;
        let before = self.sieve_before.as_ref().filter(|_| phase == "during");
        let name = active.as_ref().map_or("", |(n, _)| n.as_str()).to_string();
        let user = match active.map(|(_, text)| sieve::Script::compile(&text)) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                tracing::warn!(
                    "sieve: {}'s script {name:?} does not compile ({e}); only the server's runs",
                    account.address
                );
                None
            }
        };
        if before.is_none() && user.is_none() {
            return Ok(None);
        }
        Ok(Some(Scripts { name, before, user }))
    }

    /// Runs the scripts on one message (RFC 5228 2.10: one outcome for all),
    /// with what they may ask about: the mailboxes, the environment
    /// (RFC 5183), scripts to include (RFC 6609).
    async fn run_scripts(
        &self,
        scripts: &Scripts<'_>,
        message: &[u8],
        account: &Account,
        facts: &Filing<'_>,
    ) -> Result<sieve::Outcome, Error> {
        let scripts: Vec<&sieve::Script> =
            scripts.before.into_iter().chain(&scripts.user).collect();
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
        Ok(outcome)
    }

    /// Carries out a run's actions for one recipient: the placements of
    /// its copies, its vacation replies, a reject. What a user sends is
    /// filed, never dropped, forwarded or answered.
    async fn carry_out(
        &self,
        actions: Vec<sieve::Action>,
        message: &[u8],
        account: &Account,
        facts: &Filing<'_>,
    ) -> Result<Filed, Error> {
        let keep = |flags: Vec<String>| facts.keep(account, flags);
        let with_default = |flags: Vec<String>| facts.with_default(flags);
        let mut out = Vec::new();
        let mut replies = Vec::new();
        let mut forwards = Vec::new();
        let mut rejected = None;
        let mut kept = false;
        let outgoing = facts.phase == "outgoing";
        for action in actions {
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
                } => out.push(Placement {
                    account: account.clone(),
                    mailbox,
                    flags: with_default(flags),
                    create,
                }),
                sieve::Action::Discard => {}
                sieve::Action::Redirect { address } => match self.recipient(&address).await? {
                    Recipient::Local(other) if other.id != account.id => out.push(Placement {
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
                    Recipient::NotLocal => forwards.push(address),
                    // A local domain, nobody by that name: kept, so nothing
                    // is lost to a typo in a script.
                    Recipient::Unknown => {
                        tracing::warn!(
                            "sieve: {} redirects to {address}, which does not exist here; kept",
                            account.address
                        );
                        if !kept {
                            kept = true;
                            out.push(keep(Vec::new()));
                        }
                    }
                },
                // Refused at the SMTP level when every recipient refuses,
                // else bounced to the sender (the caller decides): no copy.
                sieve::Action::Reject { reason, .. } => rejected = Some(reason),
                sieve::Action::Vacation {
                    to,
                    days,
                    subject,
                    from,
                    mime,
                    handle,
                    reason,
                } => {
                    // RFC 5230 4.3: `:from` must be one of the user's own
                    // addresses; another is ignored (a script must not
                    // answer as someone else).
                    let from = match from {
                        Some(f) if self.answers_as(account, &f).await? => f,
                        Some(f) => {
                            tracing::warn!(
                                "sieve: {}'s vacation :from {f:?} is not one of its addresses; its own is used",
                                account.address
                            );
                            account.address.clone()
                        }
                        None => account.address.clone(),
                    };
                    let raw =
                        self.vacation_reply(message, &from, &to, subject.as_deref(), &reason, mime);
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
            forwards,
            rejected,
        })
    }

    /// Whether `from` (an address, or a mailbox like `"Name" <a@b>`) is one
    /// of the account's own addresses.
    async fn answers_as(&self, account: &Account, from: &str) -> Result<bool, Error> {
        let address = match (from.rfind('<'), from.rfind('>')) {
            (Some(a), Some(b)) if a < b => &from[a + 1..b],
            _ => from,
        };
        Ok(matches!(
            self.recipient(address.trim()).await?,
            Recipient::Local(a) if a.id == account.id
        ))
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

    /// Sends the vacation replies a delivery's scripts asked for, once it
    /// is stored; a reply that cannot go is logged, never an error.
    pub(crate) async fn send_replies(&self, replies: Vec<Reply>) {
        for reply in replies {
            if let Err(e) = self.send_reply(reply).await {
                tracing::warn!("sieve: vacation reply not sent: {e}");
            }
        }
    }

    /// Sends a vacation reply, once per sender and handle within its
    /// days: into a local sender's INBOX, or through the queue from the
    /// null sender (RFC 3834 3.3, so that it draws no bounce loop).
    async fn send_reply(&self, reply: Reply) -> Result<(), Error> {
        let target = match self.recipient(&reply.to).await? {
            Recipient::Local(target) => target,
            Recipient::Unknown => return Ok(()),
            Recipient::NotLocal => {
                if self
                    .store
                    .vacation_due(reply.account.id, &reply.handle, &reply.to, reply.days)
                    .await?
                {
                    let qid = crate::queue_id();
                    let domain = crate::outgoing::domain_of(&reply.account.address);
                    self.queue_remote(
                        store::NewQueued {
                            qid: &qid,
                            prefix: b"",
                            sender: "",
                            account: Some(reply.account.id),
                            raw: &reply.raw,
                            recipients: std::slice::from_ref(&reply.to),
                        },
                        domain.as_deref(),
                    )
                    .await?;
                }
                return Ok(());
            }
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
                    cache: store::MessageCache::from(&analysis),
                    spam: None,
                },
            )
            .await?;
        Ok(())
    }

    /// The mailbox a copy goes to: created when the script asked for it
    /// (`fileinto :create`); a missing one means INBOX (RFC 5228 4.1).
    pub(crate) async fn target(&self, copy: &Placement) -> Result<store::Mailbox, Error> {
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

    pub(crate) async fn inbox(&self, account: &Account) -> Result<store::Mailbox, Error> {
        self.store
            .mailbox(account.id, "INBOX")
            .await?
            .ok_or_else(|| Error::NoInbox(account.address.clone()))
    }
}
