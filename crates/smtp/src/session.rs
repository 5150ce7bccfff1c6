//! One SMTP session (RFC 5321 3-4): greeting, EHLO, transactions of MAIL,
//! RCPT and DATA or BDAT, STARTTLS, with enhanced status codes (RFC 3463).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use door::conn::{Next, next_line};
use door::{LineReader, Stream};
use pipeline::{Origin, Recipient, Trace};
use smtp_proto::Request;
use store::Account;
use tokio::sync::watch;

use crate::data::DotDecoder;
use crate::{COMMAND_TIMEOUT, DATA_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_DATA_LINE, MAX_LINE, Server};

/// The reply when the store's disk is full (RFC 3463 4.3.1).
pub(crate) const NO_SPACE: &str = "452 4.3.1 Insufficient system storage: the server's disk is full; nothing was stored, try again later.";

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// A mail transaction in progress.
#[derive(Default)]
pub(crate) struct Transaction {
    pub(crate) from: Option<String>,
    recipients: Vec<(String, Account)>,
    /// Submission: every recipient, local or not.
    pub(crate) outbound: Vec<String>,
    /// BDAT chunks so far.
    chunks: Vec<u8>,
    /// Their share of the memory for messages in flight.
    held: Option<door::Held>,
    /// A chunk was dropped for want of that memory.
    busy: bool,
    /// A BDAT chunk went over the size limit: the rest is read and dropped.
    oversized: bool,
    /// A BDAT chunk was taken: DATA may not follow (RFC 3030 2).
    bdat: bool,
    /// When MAIL opened it: the whole transaction has until the deadline.
    started: Option<tokio::time::Instant>,
}

pub struct Session {
    pub(crate) server: Arc<Server>,
    pub(crate) peer: SocketAddr,
    io: Option<LineReader<Stream>>,
    /// Server shutdown, and once logged in, the account's removal.
    pub(crate) stop: door::Stop,
    out: Vec<u8>,
    pub(crate) tls: bool,
    pub(crate) helo: Option<String>,
    pub(crate) tx: Transaction,
    errors: usize,
    quit: bool,
    /// Submission: who logged in.
    pub(crate) user: Option<Account>,
}

impl Session {
    pub fn new(
        server: Arc<Server>,
        peer: SocketAddr,
        stream: Stream,
        shutdown: watch::Receiver<bool>,
    ) -> Session {
        let tls = stream.is_tls();
        let line_deadline = server.settings.deadlines.line;
        Session {
            server,
            peer,
            io: Some(LineReader::with_deadline(stream, MAX_LINE, line_deadline)),
            stop: door::Stop::new(shutdown),
            out: Vec::with_capacity(1024),
            tls,
            helo: None,
            tx: Transaction::default(),
            errors: 0,
            quit: false,
            user: None,
        }
    }

    pub(crate) fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// A reply that counts as an error; too many end the session.
    pub(crate) fn error(&mut self, line: &str) {
        self.reply(line);
        self.errors += 1;
        if self.errors >= self.server.settings.max_errors {
            self.reply("421 4.7.0 Too many errors; closing the connection.");
            self.quit = true;
        }
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        Ok(door::conn::send_buffered(&mut self.io, &mut self.out, COMMAND_TIMEOUT).await?)
    }

    pub(crate) fn io(&mut self) -> Result<&mut LineReader<Stream>, Error> {
        Ok(self.io.as_mut().ok_or("no stream")?)
    }

    pub async fn run(mut self) -> Result<(), Error> {
        let host = self.server.pipeline.hostname().to_string();
        self.reply(&format!("220 {host} ESMTP Satchel"));
        self.flush().await?;
        let mut line = Vec::new();
        while !self.quit {
            let until_deadline = self.transaction_left();
            let limit = COMMAND_TIMEOUT.min(until_deadline);
            let io = self.io.as_mut().ok_or("no stream")?;
            match next_line(io, &mut line, limit, &mut self.stop).await? {
                Next::Line => self.command(&line).await?,
                Next::TooLong { .. } => self.error("500 5.5.2 Line too long."),
                Next::TooSlow => {
                    self.reply("421 4.4.2 A line took too long to arrive; closing the connection.");
                    self.flush().await?;
                    return Ok(());
                }
                Next::Idle if until_deadline < COMMAND_TIMEOUT => {
                    self.reply("421 4.4.2 The transaction took too long; closing the connection.");
                    self.flush().await?;
                    return Ok(());
                }
                Next::Stopped(why) => {
                    self.reply(match why {
                        door::Stopped::Server => {
                            "421 4.3.2 The server is shutting down; try again later."
                        }
                        door::Stopped::AccountRemoved => {
                            "421 4.7.0 This account was removed from the server; closing the connection."
                        }
                    });
                    self.flush().await?;
                    return Ok(());
                }
                Next::Idle => {
                    self.reply("421 4.4.2 Timeout; closing the connection.");
                    self.flush().await?;
                    return Ok(());
                }
            }
            // PIPELINING (RFC 2920): answer a group of commands at once.
            if self.io.as_ref().is_none_or(|io| io.pending() == 0) || self.quit {
                self.flush().await?;
            }
        }
        self.flush().await
    }

    async fn command(&mut self, line: &[u8]) -> Result<(), Error> {
        let request = match crate::command::parse(line) {
            Ok(r) => r,
            Err(reply) => {
                self.error(&reply);
                return Ok(());
            }
        };
        match request {
            Request::Ehlo { host } => self.ehlo(&host, true),
            Request::Helo { host } => self.ehlo(&host, false),
            Request::Lhlo { .. } => self.error("500 5.5.1 This is not an LMTP server."),
            Request::StartTls => return self.starttls().await,
            Request::Mail { from } => self.mail(&from.address, from.size as u64).await,
            // smtp-proto reads `<Postmaster>` (no domain, RFC 5321 4.1.1.3)
            // as an empty address.
            Request::Rcpt { to }
                if to.address.is_empty() && crate::command::is_bare_postmaster(line) =>
            {
                self.rcpt("postmaster").await?
            }
            Request::Rcpt { to } => self.rcpt(&to.address).await?,
            Request::Data => return self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.tx = Transaction::default();
                self.reply("250 2.0.0 Reset.");
            }
            Request::Noop { .. } => self.reply("250 2.0.0 OK."),
            Request::Quit => {
                self.reply("221 2.0.0 Bye.");
                self.quit = true;
            }
            Request::Vrfy { .. } => {
                self.reply("252 2.1.5 Cannot verify; send the message and see.")
            }
            Request::Help { .. } => self.reply("214 2.0.0 See RFC 5321."),
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, &initial_response).await,
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.error("502 5.5.1 Command not implemented."),
        }
        Ok(())
    }

    fn ehlo(&mut self, host: &str, extended: bool) {
        self.helo = Some(host.to_string());
        self.tx = Transaction::default();
        let name = self.server.pipeline.hostname().to_string();
        if !extended {
            self.reply(&format!("250 {name}"));
            return;
        }
        let mut lines = vec![
            format!("{name} greets {host}"),
            "PIPELINING".into(),
            format!("SIZE {}", self.server.settings.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if !self.tls && self.server.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        // RFC 4954 4: no mechanism offered where a password would go in
        // the clear (RFC 8314 for the rest).
        if self.auth_allowed() && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{l}"));
        }
    }

    async fn starttls(&mut self) -> Result<(), Error> {
        let Some(config) = self.server.tls.clone().filter(|_| !self.tls) else {
            self.error("454 4.7.0 TLS is not available now.");
            return Ok(());
        };
        self.reply("220 2.0.0 Ready to start TLS.");
        self.flush().await?;
        // RFC 3207 4.2: forget everything, including what was pipelined.
        let io = self.io.take().ok_or("no stream")?;
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, io.into_inner().into_tls(config))
            .await
            .map_err(|_| "TLS handshake timed out")??;
        self.io = Some(LineReader::with_deadline(
            stream,
            MAX_LINE,
            self.server.settings.deadlines.line,
        ));
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.tx = Transaction::default();
        Ok(())
    }

    async fn mail(&mut self, from: &str, size: u64) {
        if self.helo.is_none() {
            self.error("503 5.5.1 Say EHLO first.");
            return;
        }
        if self.tx.from.is_some() {
            self.error("503 5.5.1 A transaction is already open; RSET first.");
            return;
        }
        let max = self.server.settings.max_message_size;
        if size > max {
            self.error(&format!("552 5.3.4 Messages are limited to {max} bytes."));
            return;
        }
        if self.submit().is_some() && self.submission_sender(from).await.is_none() {
            return;
        }
        // A size announced (RFC 1870) is taken from the budget for
        // messages in flight now, so a sender is turned away before it
        // sends a byte rather than halfway through.
        if size > 0 {
            let mut held = self.server.settings.in_flight.hold();
            if !held.grow_to(size) {
                self.reply(crate::data::BUSY);
                return;
            }
            self.tx.held = Some(held);
        }
        self.tx.from = Some(from.to_string());
        self.tx.started = Some(tokio::time::Instant::now());
        self.reply("250 2.1.0 Sender OK.");
    }

    async fn rcpt(&mut self, to: &str) -> Result<(), Error> {
        if to.is_empty() {
            self.error("501 5.1.3 Invalid recipient address: an address is needed.");
            return Ok(());
        }
        if self.tx.from.is_none() {
            self.error("503 5.5.1 MAIL first.");
            return Ok(());
        }
        if self.submit().is_some() {
            return self.submission_recipient(to).await;
        }
        if self.tx.recipients.len() >= self.server.settings.max_recipients {
            self.reply("452 4.5.3 Too many recipients; send the rest in another transaction.");
            return Ok(());
        }
        match self.server.pipeline.recipient(to).await {
            Ok(Recipient::Local(account)) => {
                match self.server.pipeline.over_quota(&account).await {
                    // Temporary (RFC 3463 X.2.2, "mailbox full"): the sender
                    // retries for days while the owner makes room, and no mail
                    // is bounced for a state that passes.
                    Ok(Some(why)) => {
                        tracing::info!("smtp: {to} is over quota: {why}");
                        self.reply(&format!(
                            "452 4.2.2 The mailbox of {to} is full; try again later."
                        ));
                    }
                    Ok(None) => {
                        self.tx.recipients.push((to.to_string(), account));
                        self.reply("250 2.1.5 Recipient OK.");
                    }
                    Err(e) => {
                        tracing::error!("smtp: cannot check the quota of {to}: {e}");
                        self.reply("451 4.3.0 Temporary failure; try again later.");
                    }
                }
            }
            Ok(Recipient::Unknown) => self.error(&format!("550 5.1.1 No mailbox {to} here.")),
            Ok(Recipient::NotLocal) => self.error(
                "554 5.7.1 Relay access denied: this server only receives for its own domains.",
            ),
            Err(e) => {
                tracing::error!("smtp: cannot look up {to}: {e}");
                self.reply("451 4.3.0 Temporary failure; try again later.");
            }
        }
        Ok(())
    }

    fn ready_for_data(&mut self) -> bool {
        if self.tx.from.is_none() {
            self.error("503 5.5.1 MAIL first.");
            return false;
        }
        if self.tx.recipients.is_empty() && self.tx.outbound.is_empty() {
            self.error("554 5.5.1 No valid recipients.");
            return false;
        }
        true
    }

    /// What is left of the open transaction's deadline (all of it when
    /// none is open).
    fn transaction_left(&self) -> Duration {
        let deadline = self.server.settings.deadlines.transaction;
        self.tx
            .started
            .map_or(deadline, |t| deadline.saturating_sub(t.elapsed()))
    }

    async fn data(&mut self) -> Result<(), Error> {
        if !self.ready_for_data() {
            return Ok(());
        }
        // RFC 3030 2: a transaction started with BDAT goes on with BDAT.
        if self.tx.bdat {
            self.tx = Transaction::default();
            self.error("503 5.5.1 DATA after BDAT; the transaction is cancelled, start again.");
            return Ok(());
        }
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>");
        self.flush().await?;
        let max = self.server.settings.max_message_size as usize;
        let mut body = DotDecoder::new(max, MAX_DATA_LINE);
        let budget = self.server.settings.in_flight.clone();
        let mut held = self.tx.held.take().unwrap_or_else(|| budget.hold());
        let left = self.transaction_left();
        let io = self.io()?;
        // A body trickled a byte at a time still ends by the transaction's
        // deadline (and no read waits longer than DATA_TIMEOUT).
        let deadline = tokio::time::Instant::now() + left;
        while !body.is_done() {
            let until = deadline.min(tokio::time::Instant::now() + DATA_TIMEOUT);
            let chunk = match tokio::time::timeout_at(until, io.fill()).await {
                Err(_) => {
                    self.reply(
                        "421 4.4.2 The message took too long to arrive; closing the connection.",
                    );
                    self.flush().await?;
                    self.quit = true;
                    return Ok(());
                }
                Ok(r) => r?,
            };
            let used = body.feed(chunk);
            io.consume(used);
            if !held.grow_to(body.len() as u64) {
                body.refuse(crate::data::Problem::Busy);
                // Given back at once: when many messages arrive together
                // and the budget is short, each refusal lets another
                // finish, so some always do.
                held = budget.hold();
            }
        }
        match body.finish() {
            // Held until the message is stored.
            Ok(message) => self.finish(message).await,
            Err(problem) => {
                self.tx = Transaction::default();
                self.error(&problem.reply(max, MAX_DATA_LINE));
            }
        }
        Ok(())
    }

    async fn bdat(&mut self, size: usize, last: bool) -> Result<(), Error> {
        // RFC 3030: the chunk is read whatever happens, to stay in step.
        let max = self.server.settings.max_message_size as usize;
        let ready = self.tx.from.is_some()
            && !(self.tx.recipients.is_empty() && self.tx.outbound.is_empty());
        let fits = !self.tx.oversized && self.tx.chunks.len().saturating_add(size) <= max;
        // Only a transaction that can take the chunk holds memory for it.
        let room = ready && fits && !self.tx.busy && {
            let budget = &self.server.settings.in_flight;
            let held = self.tx.held.get_or_insert_with(|| budget.hold());
            held.grow_to(self.tx.chunks.len().saturating_add(size) as u64)
        };
        if ready && fits && !room {
            self.tx.busy = true;
            self.tx.held = None;
        }
        if ready && room {
            let mut chunks = std::mem::take(&mut self.tx.chunks);
            let limit = DATA_TIMEOUT.min(self.transaction_left());
            let io = self.io()?;
            tokio::time::timeout(limit, io.exact(size, &mut chunks))
                .await
                .map_err(|_| "BDAT timed out")??;
            self.tx.chunks = chunks;
        } else {
            let io = self.io()?;
            tokio::time::timeout(DATA_TIMEOUT, io.skip(size as u64))
                .await
                .map_err(|_| "BDAT timed out")??;
            if ready {
                self.tx.oversized = true;
            }
        }
        if !ready {
            self.ready_for_data();
            return Ok(());
        }
        self.tx.bdat = true;
        if !last {
            if self.tx.oversized {
                self.error(&format!("552 5.3.4 Messages are limited to {max} bytes."));
            } else if self.tx.busy {
                self.reply(crate::data::BUSY);
            } else {
                self.reply(&format!("250 2.0.0 {size} octets received."));
            }
            return Ok(());
        }
        if self.tx.oversized {
            self.tx = Transaction::default();
            self.error(&format!("552 5.3.4 Messages are limited to {max} bytes."));
            return Ok(());
        }
        if self.tx.busy {
            self.tx = Transaction::default();
            self.reply(crate::data::BUSY);
            return Ok(());
        }
        let message = std::mem::take(&mut self.tx.chunks);
        // Held until the message is stored.
        let _held = self.tx.held.take();
        if let Err(problem) = crate::data::check_bdat(&message) {
            self.tx = Transaction::default();
            self.error(&problem.reply(max, MAX_DATA_LINE));
            return Ok(());
        }
        self.finish(message).await;
        Ok(())
    }

    /// Delivers the transaction's message; the reply is sent only after it
    /// is durable for every recipient.
    async fn finish(&mut self, message: Vec<u8>) {
        let tx = std::mem::take(&mut self.tx);
        if message.is_empty() {
            self.error("554 5.6.0 Empty message.");
            return;
        }
        // RFC 5321 6.3: a message that has been through this many hops is
        // looping; refusing it ends the loop (Postfix uses the same 50).
        let hops = mime::fields::count(&message, "Received");
        if hops > pipeline::MAX_HOPS {
            tracing::warn!(
                "smtp: refused a message from {} with {hops} Received fields (a mail loop)",
                self.peer.ip()
            );
            self.error(&format!(
                "554 5.4.6 Mail loop: the message has passed {hops} servers already."
            ));
            return;
        }
        if self.submit().is_some() {
            let from = tx.from.unwrap_or_default();
            return self.submission_finish(message, from, tx.outbound).await;
        }
        let trace = Trace {
            mail_from: tx.from.unwrap_or_default(),
            origin: Origin::Smtp {
                helo: self.helo.clone().unwrap_or_default(),
                peer: self.peer.ip(),
                protocol: if self.tls { "ESMTPS" } else { "ESMTP" },
            },
        };
        match self
            .server
            .pipeline
            .deliver(&message, &tx.recipients, &trace)
            .await
        {
            Ok(done) => {
                // The sender learns an opaque id, never where the mail went
                // (mailboxes, UIDs); the log ties the id to the copies.
                let id = pipeline::queue_id();
                let copies: Vec<String> = done
                    .iter()
                    .map(|d| match d.score {
                        Some(score) => {
                            format!("{} {} {} score={score}", d.account, d.mailbox, d.uid)
                        }
                        None => format!("{} {} {}", d.account, d.mailbox, d.uid),
                    })
                    .collect();
                tracing::info!(
                    "smtp: {id} from <{}> via {}: {}",
                    trace.mail_from,
                    self.peer.ip(),
                    copies.join(", ")
                );
                self.reply(&format!("250 2.0.0 Ok: queued as {id}"));
            }
            Err(pipeline::Error::Store(store::Error::TooLarge)) => {
                self.error("552 5.3.4 Message too big.");
            }
            // This message would pass a recipient's quota; nothing was
            // stored for anyone, and the sender tries again later.
            // RFC 3463 4.3.1: the server's disk, not the mailbox, is full;
            // nothing was stored and the sender's queue tries again.
            Err(pipeline::Error::Store(e @ store::Error::NoSpace(_))) => {
                tracing::error!("smtp: a message was refused: {e}");
                self.reply(NO_SPACE);
            }
            Err(pipeline::Error::Store(store::Error::OverQuota(who, why))) => {
                tracing::info!("smtp: {who} is over quota: {why}");
                self.reply(&format!(
                    "452 4.2.2 The mailbox of {who} is full; try again later."
                ));
            }
            // RFC 5429 2.1: a Sieve reject, refused while the sender listens.
            Err(pipeline::Error::Rejected(reason)) => {
                let reason: String = reason
                    .split(['\r', '\n'])
                    .filter(|l| !l.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .filter(|c| !c.is_control())
                    // Reply text is ASCII (RFC 5321 4.2).
                    .map(|c| if c.is_ascii() { c } else { '?' })
                    .take(400)
                    .collect();
                let reason = if reason.trim().is_empty() {
                    "The recipient's filter rejects this message.".to_string()
                } else {
                    reason
                };
                self.reply(&format!("550 5.7.1 {reason}"));
            }
            Err(e) => {
                tracing::error!("smtp: delivery failed: {e}");
                self.reply("451 4.3.0 The message could not be stored; try again later.");
            }
        }
    }
}
