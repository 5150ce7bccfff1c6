//! The submission mode of the SMTP door (RFC 6409; RFC 8314 on implicit
//! TLS): AUTH PLAIN and LOGIN (RFC 4954) through the door kit's login,
//! then mail from the user's own addresses only, to anyone; what they send
//! takes the pipeline's outgoing leg.

use door::login::{self, Mechanism, SaslError, SaslWire};
use pipeline::{Origin, Recipient, Submission};
use store::Account;

use crate::session::{Error, Session};
use crate::{HANDSHAKE_TIMEOUT, Submit};

impl Session {
    pub(crate) fn submit(&self) -> Option<&Submit> {
        self.server.submit.as_ref()
    }

    /// Whether AUTH may be offered now: after TLS, or from loopback, or
    /// anywhere when the config says so.
    pub(crate) fn auth_allowed(&self) -> bool {
        self.submit().is_some_and(|s| {
            login::plaintext_allowed(self.tls, self.peer.ip(), s.plaintext_anywhere)
        })
    }

    /// AUTH (RFC 4954 4).
    pub(crate) async fn auth(&mut self, mechanism: u64, initial: &str) -> Result<(), Error> {
        if self.submit().is_none() {
            self.error("503 5.5.1 No AUTH here: this door only receives mail for local users.");
            return Ok(());
        }
        if self.user.is_some() {
            self.error("503 5.5.1 Already authenticated.");
            return Ok(());
        }
        if self.tx.from.is_some() {
            self.error("503 5.5.1 AUTH is not allowed during a mail transaction.");
            return Ok(());
        }
        if !self.auth_allowed() {
            self.error("538 5.7.11 Encryption required: say STARTTLS first.");
            return Ok(());
        }
        let mechanism = match mechanism {
            smtp_proto::AUTH_PLAIN => Mechanism::Plain,
            smtp_proto::AUTH_LOGIN => Mechanism::Login,
            _ => {
                self.error("504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN.");
                return Ok(());
            }
        };
        // RFC 4954 4: "=" is an empty initial response; none means none.
        let initial = (!initial.is_empty()).then(|| initial.as_bytes().to_vec());
        match login::exchange(self, mechanism, initial.as_deref()).await? {
            Ok(c) => self.login(&c.user, &c.password).await?,
            Err(SaslError::Malformed) => {
                let submit = self.submit().ok_or("no submission")?;
                login::failed(&*submit.store, &submit.throttle, self.peer.ip()).await;
                self.error("535 5.7.8 Authentication credentials invalid.");
            }
            Err(SaslError::Cancelled) => self.error("501 5.0.0 Authentication cancelled."),
            Err(e) => self.error(&format!("501 5.5.2 {e}")),
        }
        Ok(())
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let submit = self.submit().ok_or("no submission")?;
        let checked = login::check_password(
            &*submit.store,
            &submit.throttle,
            "submission",
            self.peer.ip(),
            user,
            password,
        )
        .await;
        match checked {
            Ok(Some(account)) => {
                let sessions = submit.sessions.clone();
                self.stop.logged_in(&sessions, account.id);
                self.user = Some(account);
                self.reply("235 2.7.0 Authentication successful.");
            }
            Ok(None) => self.error("535 5.7.8 Authentication credentials invalid."),
            Err(e) => {
                tracing::error!("submission: cannot check a password: {e}");
                self.reply("454 4.7.0 Temporary authentication failure; try again later.");
            }
        }
        Ok(())
    }

    /// MAIL in submission: only after AUTH, and only from one of the
    /// user's own addresses (RFC 6409 6.1).
    pub(crate) async fn submission_sender(&mut self, from: &str) -> Option<Account> {
        let Some(account) = self.user.clone() else {
            self.error("530 5.7.0 Authentication required: log in with AUTH first.");
            return None;
        };
        if let Err(over) = self.submit()?.hourly.take(account.id) {
            tracing::warn!(
                "submission: {} is at its limit of {} messages an hour (from {}); refused for {} s",
                account.address,
                over.max,
                self.peer.ip(),
                over.retry_in.as_secs()
            );
            self.reply(&format!(
                "452 4.7.0 You have sent {} messages in the last hour, the most this server allows; try again in {} minutes.",
                over.max,
                over.retry_in.as_secs().div_ceil(60)
            ));
            return None;
        }
        match self.may_send_as(&account, from).await {
            Ok(true) => Some(account),
            Ok(false) => {
                tracing::warn!(
                    "submission: {} tried to send as <{from}> from {}",
                    account.address,
                    self.peer.ip()
                );
                self.error(&format!(
                    "550 5.7.1 You may not send as <{}>: use one of your own addresses.",
                    printable(from)
                ));
                None
            }
            Err(e) => {
                tracing::error!("submission: cannot look up {from}: {e}");
                self.reply("451 4.3.0 Temporary failure; try again later.");
                None
            }
        }
    }

    /// An address the account may send as: its own, with a +detail, an
    /// alias of it, or its domain's catch-all when that is the account.
    async fn may_send_as(&self, account: &Account, address: &str) -> Result<bool, pipeline::Error> {
        if address.is_empty() {
            return Ok(false);
        }
        Ok(matches!(
            self.server.pipeline.recipient(address).await?,
            Recipient::Local(a) if a.id == account.id
        ))
    }

    /// RCPT in submission: anyone, except a local address nobody has.
    pub(crate) async fn submission_recipient(&mut self, to: &str) -> Result<(), Error> {
        if self.tx.outbound.len() >= self.server.settings.max_recipients {
            self.reply("452 4.5.3 Too many recipients; send the rest in another message.");
            return Ok(());
        }
        match self.server.pipeline.recipient(to).await {
            Ok(Recipient::Unknown) => {
                self.error(&format!("550 5.1.1 No mailbox {} here.", printable(to)))
            }
            Ok(_) => {
                if !self.tx.outbound.iter().any(|r| r.eq_ignore_ascii_case(to)) {
                    self.tx.outbound.push(to.to_string());
                }
                self.reply("250 2.1.5 Recipient OK.");
            }
            Err(e) => {
                tracing::error!("submission: cannot look up {to}: {e}");
                self.reply("451 4.3.0 Temporary failure; try again later.");
            }
        }
        Ok(())
    }

    /// The end of DATA in submission: the From: field checked like MAIL
    /// FROM, then the outgoing leg; the reply only once all is durable.
    pub(crate) async fn submission_finish(
        &mut self,
        message: Vec<u8>,
        from: String,
        outbound: Vec<String>,
    ) {
        let Some(account) = self.user.clone() else {
            self.error("530 5.7.0 Authentication required: log in with AUTH first.");
            return;
        };
        let authors = mime::fields::from_addresses(&message);
        if authors.is_empty() {
            self.error("550 5.6.0 The message has no From: field with an address.");
            return;
        }
        for author in &authors {
            match self.may_send_as(&account, author).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        "submission: {} tried to send From: <{author}>",
                        account.address
                    );
                    self.error(&format!(
                        "550 5.7.1 You may not send From: <{}>: use one of your own addresses.",
                        printable(author)
                    ));
                    return;
                }
                Err(e) => {
                    tracing::error!("submission: cannot look up {author}: {e}");
                    self.reply("451 4.3.0 Temporary failure; try again later.");
                    return;
                }
            }
        }
        let Some(submit) = self.submit() else { return };
        let submission = Submission {
            account: &account,
            mail_from: &from,
            recipients: &outbound,
            raw: &message,
            origin: Origin::Submission {
                helo: self.helo.clone().unwrap_or_default(),
                peer: self.peer.ip(),
                protocol: if self.tls { "ESMTPSA" } else { "ESMTPA" },
            },
            sent_copy: submit.sent_copy,
        };
        match self.server.pipeline.submit(submission).await {
            Ok(done) => {
                let sent: Vec<String> = done
                    .sent
                    .iter()
                    .map(|d| format!("{} {}", d.mailbox, d.uid))
                    .collect();
                let local: Vec<String> = done
                    .local
                    .iter()
                    .map(|d| format!("{} {} {}", d.account, d.mailbox, d.uid))
                    .collect();
                tracing::info!(
                    "submission: {} from <{from}> by {} via {}: sent copy [{}], local [{}], queued [{}]",
                    done.qid,
                    account.address,
                    self.peer.ip(),
                    sent.join(", "),
                    local.join(", "),
                    done.queued.join(", ")
                );
                self.reply(&format!("250 2.0.0 Ok: queued as {}", done.qid));
            }
            Err(pipeline::Error::Store(store::Error::TooLarge)) => {
                self.error("552 5.3.4 Message too big.");
            }
            Err(pipeline::Error::Store(e @ store::Error::NoSpace(_))) => {
                tracing::error!("submission: a message was refused: {e}");
                self.reply(crate::session::NO_SPACE);
            }
            Err(pipeline::Error::Store(store::Error::OverQuota(who, why))) => {
                tracing::info!("submission: {who} is over quota: {why}");
                self.reply(&format!(
                    "452 4.2.2 The mailbox of {who} is full (the Sent copy or a local copy cannot be kept); delete some mail and try again."
                ));
            }
            Err(e) => {
                tracing::error!(
                    "submission: {} could not send a message: {e}",
                    account.address
                );
                self.reply("451 4.3.0 The message could not be stored; try again later.");
            }
        }
    }
}

impl SaslWire for Session {
    async fn challenge(&mut self, challenge: &str) -> std::io::Result<Vec<u8>> {
        self.reply(&format!("334 {challenge}"));
        self.flush().await.map_err(std::io::Error::other)?;
        let io = self.io().map_err(std::io::Error::other)?;
        login::answer_line(io, HANDSHAKE_TIMEOUT).await
    }
}

/// An address as it may appear in a reply: printable ASCII, not too long.
fn printable(address: &str) -> String {
    address
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(200)
        .collect()
}
