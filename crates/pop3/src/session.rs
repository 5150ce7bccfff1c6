//! One POP3 session: the AUTHORIZATION and TRANSACTION states of RFC 1939,
//! and the UPDATE state at QUIT.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use door::conn::{Next, next_line};
use door::login::{self, Mechanism, SaslError, SaslWire};
use door::{LineReader, Stream};
use store::{Account, BlobHash, FlagChange, FlagOp, Flags, Mailbox, Pop3Delete, SpecialUse};
use tokio::sync::watch;

use crate::command::{self, Command, Number, State};
use crate::{HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_LINE, MaildropLock, Server};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One message of the snapshot taken at login.
struct Entry {
    uid: u32,
    size: u64,
    blob: BlobHash,
    deleted: bool,
}

/// The maildrop as this session sees it (fixed at login).
struct Maildrop {
    inbox: Mailbox,
    messages: Vec<Entry>,
    retrieved: HashSet<u32>,
    _lock: MaildropLock,
}

pub struct Session {
    server: Arc<Server>,
    peer: SocketAddr,
    io: Option<LineReader<Stream>>,
    /// Server shutdown, and once logged in, the account's removal.
    stop: door::Stop,
    out: Vec<u8>,
    tls: bool,
    /// USER given, PASS expected.
    user: Option<String>,
    account: Option<Account>,
    drop: Option<Maildrop>,
    quit: bool,
    /// When the connection opened: the login deadline counts from here.
    started: std::time::Instant,
}

impl Session {
    pub fn new(
        server: Arc<Server>,
        peer: SocketAddr,
        stream: Stream,
        shutdown: watch::Receiver<bool>,
    ) -> Session {
        let tls = stream.is_tls();
        Session {
            peer,
            io: Some(LineReader::with_deadline(
                stream,
                MAX_LINE,
                server.settings.deadlines.line,
            )),
            server,
            stop: door::Stop::new(shutdown),
            out: Vec::with_capacity(4096),
            tls,
            user: None,
            account: None,
            drop: None,
            quit: false,
            started: std::time::Instant::now(),
        }
    }

    fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> Result<(), Error> {
        Ok(door::conn::send_buffered(
            &mut self.io,
            &mut self.out,
            self.server.settings.deadlines.write,
        )
        .await?)
    }

    /// Plain-text passwords only over TLS, from loopback, or where the
    /// config allows them everywhere.
    fn login_allowed(&self) -> bool {
        login::plaintext_allowed(
            self.tls,
            self.peer.ip(),
            self.server.settings.plaintext_anywhere,
        )
    }

    pub async fn run(mut self) -> Result<(), Error> {
        self.say("+OK Satchel POP3 ready.");
        self.flush().await?;
        let mut line = Vec::new();
        while !self.quit {
            let deadlines = self.server.settings.deadlines;
            let (limit, login_due) =
                deadlines.wait_limit(IDLE_TIMEOUT, self.started, self.account.is_some());
            let io = self.io.as_mut().ok_or("no stream")?;
            match next_line(io, &mut line, limit, &mut self.stop).await? {
                Next::Line => self.command(&line).await?,
                Next::TooLong { .. } => self.say("-ERR Line too long."),
                Next::TooSlow => {
                    self.say("-ERR A line took too long to arrive; closing.");
                    self.flush().await?;
                    return Ok(());
                }
                Next::Idle if login_due => {
                    self.say(&format!(
                        "-ERR [AUTH] Log in within {} seconds of connecting; closing.",
                        deadlines.login.as_secs()
                    ));
                    self.flush().await?;
                    return Ok(());
                }
                Next::Stopped(why) => {
                    // Nothing is applied: the session never reached QUIT
                    // (RFC 1939 6).
                    self.say(match why {
                        door::Stopped::Server => "-ERR [SYS/TEMP] The server is shutting down.",
                        door::Stopped::AccountRemoved => {
                            "-ERR [SYS/PERM] This account was removed from the server."
                        }
                    });
                    self.flush().await?;
                    return Ok(());
                }
                Next::Idle => {
                    self.say("-ERR Autologout; idle for too long.");
                    self.flush().await?;
                    return Ok(());
                }
            }
            // PIPELINING (RFC 2449): answer a batch of commands at once.
            if self.io.as_ref().is_none_or(|io| io.pending() == 0) || self.out.len() > 64 * 1024 {
                self.flush().await?;
            }
        }
        self.flush().await
    }

    async fn command(&mut self, line: &[u8]) -> Result<(), Error> {
        let command = command::parse(line);
        let in_transaction = self.drop.is_some();
        match (command.state(), in_transaction) {
            (State::Transaction, false) => {
                self.say("-ERR Log in first.");
                return Ok(());
            }
            (State::Authorization, true) => {
                self.say("-ERR Already logged in.");
                return Ok(());
            }
            _ => {}
        }
        match command {
            Command::Capa => self.capa(),
            Command::Quit => self.quit_command().await?,
            Command::Noop => self.say("+OK"),
            Command::Utf8 => self.say("+OK UTF-8 is on."),
            Command::Stls => return self.stls().await,
            Command::User(name) => self.user(&name),
            Command::Pass(password) => self.pass(&password).await?,
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial).await?,
            Command::Apop => self.say("-ERR APOP is not supported; use USER/PASS or AUTH."),
            Command::Stat => self.stat(),
            Command::List(n) => self.list(n),
            Command::Uidl(n) => self.uidl(n),
            Command::Retr(n) => self.retr(n, None).await?,
            Command::Top(n, Some(lines)) => self.retr(n, Some(lines)).await?,
            Command::Top(_, None) => {
                self.say("-ERR TOP takes a message number and a number of lines.")
            }
            Command::Dele(n) => self.dele(n),
            Command::Rset => self.rset(),
            Command::Empty => self.say("-ERR Empty command."),
            Command::Unknown(name) => self.say(&format!("-ERR Unknown command {name}.")),
        }
        Ok(())
    }

    fn capa(&mut self) {
        let mut caps = vec![
            "+OK Capability list follows",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "LOGIN-DELAY 0",
            "UTF8",
        ];
        if self.drop.is_none() {
            if !self.tls && self.server.tls.is_some() {
                caps.push("STLS");
            }
            if self.login_allowed() {
                caps.push("USER");
                caps.push("SASL PLAIN LOGIN");
            }
        }
        caps.push("IMPLEMENTATION Satchel");
        caps.push(".");
        for c in caps {
            self.say(c);
        }
    }

    async fn stls(&mut self) -> Result<(), Error> {
        let Some(config) = self.server.tls.clone().filter(|_| !self.tls) else {
            self.say("-ERR STLS is not available now.");
            return Ok(());
        };
        self.say("+OK Begin TLS negotiation now.");
        self.flush().await?;
        // Anything sent in plain text after STLS is dropped.
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
        self.user = None;
        Ok(())
    }

    fn user(&mut self, arg: &str) {
        if !self.login_allowed() {
            self.say("-ERR [AUTH] Plain-text login needs TLS: use STLS or the POP3S port.");
            return;
        }
        if arg.is_empty() {
            self.say("-ERR USER needs a name.");
            return;
        }
        self.user = Some(arg.to_string());
        self.say("+OK Send the password.");
    }

    async fn pass(&mut self, arg: &str) -> Result<(), Error> {
        let Some(user) = self.user.take() else {
            self.say("-ERR Send USER first.");
            return Ok(());
        };
        self.login(&user, arg).await
    }

    async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Result<(), Error> {
        let Some(mechanism) = mechanism.map(|m| m.to_ascii_uppercase()) else {
            // No mechanism: list them, as clients probing for SASL expect.
            self.say("+OK");
            self.say("PLAIN");
            self.say("LOGIN");
            self.say(".");
            return Ok(());
        };
        if !self.login_allowed() {
            self.say("-ERR [AUTH] Authentication needs TLS: use STLS or the POP3S port.");
            return Ok(());
        }
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes()) else {
            self.say(&format!(
                "-ERR Unsupported mechanism {mechanism}; use PLAIN or LOGIN."
            ));
            return Ok(());
        };
        let initial = initial.map(String::into_bytes);
        match login::exchange(self, mechanism, initial.as_deref()).await? {
            Ok(c) => self.login(&c.user, &c.password).await,
            Err(SaslError::Malformed) => self.failed().await,
            Err(e) => {
                self.say(&format!("-ERR {e}"));
                Ok(())
            }
        }
    }

    async fn failed(&mut self) -> Result<(), Error> {
        login::failed(&*self.server.store, &self.server.throttle, self.peer.ip()).await;
        self.say("-ERR [AUTH] Authentication failed.");
        Ok(())
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let store = self.server.store.clone();
        let checked = login::check_password(
            &*store,
            &self.server.throttle,
            "pop3",
            self.peer.ip(),
            user,
            password,
        )
        .await?;
        let Some(account) = checked else {
            self.say("-ERR [AUTH] Authentication failed.");
            return Ok(());
        };
        let Some(lock) = self.server.lock_maildrop(account.id).await? else {
            self.say("-ERR [IN-USE] Another POP3 session has this mailbox open.");
            return Ok(());
        };
        let Some(inbox) = store.mailbox(account.id, "INBOX").await? else {
            self.say("-ERR [SYS/PERM] The account has no INBOX.");
            return Ok(());
        };
        // The snapshot: numbers and sizes stay put for the whole session.
        // A fresh list on this thread, not the store's collected in place
        // (see imap::View::open: it would pin a reader thread's arena).
        let stored = store.messages(inbox.id).await?;
        let mut messages = Vec::with_capacity(stored.len());
        messages.extend(
            stored
                .into_iter()
                .filter(|m| !m.flags.contains(Flags::POP3_HIDDEN))
                .map(|m| Entry {
                    uid: m.uid,
                    size: m.size,
                    blob: m.blob,
                    deleted: false,
                }),
        );
        let count = messages.len();
        self.drop = Some(Maildrop {
            inbox,
            messages,
            retrieved: HashSet::new(),
            _lock: lock,
        });
        self.stop
            .logged_in(&self.server.settings.sessions, account.id);
        self.account = Some(account);
        self.say(&format!("+OK Logged in; {count} messages."));
        Ok(())
    }

    /// The message a number names: 1-based, not deleted.
    fn message(&mut self, n: Number) -> Option<(usize, u32, u64, BlobHash)> {
        let Some(n) = n else {
            self.say("-ERR A message number is needed.");
            return None;
        };
        let found = self
            .drop
            .as_ref()
            .and_then(|d| d.messages.get(n - 1))
            .map(|e| (e.deleted, e.uid, e.size, e.blob.clone()));
        match found {
            Some((false, uid, size, blob)) => Some((n, uid, size, blob)),
            Some((true, ..)) => {
                self.say(&format!("-ERR Message {n} is deleted."));
                None
            }
            None => {
                self.say(&format!("-ERR No message {n}."));
                None
            }
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.drop
            .iter()
            .flat_map(|d| d.messages.iter().enumerate())
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    fn stat(&mut self) {
        let (n, size) = self
            .live()
            .fold((0, 0), |(n, s), (_, e)| (n + 1, s + e.size));
        self.say(&format!("+OK {n} {size}"));
    }

    fn list(&mut self, one: Option<Number>) {
        if let Some(n) = one {
            if let Some((n, _, size, _)) = self.message(n) {
                self.say(&format!("+OK {n} {size}"));
            }
            return;
        }
        let lines: Vec<String> = self
            .live()
            .map(|(n, e)| format!("{n} {}", e.size))
            .collect();
        self.say(&format!("+OK {} messages", lines.len()));
        for l in lines {
            self.say(&l);
        }
        self.say(".");
    }

    /// UIDL: UID and UIDVALIDITY in fixed-width hex, as Dovecot's
    /// `%08Xu%08Xv`, so it never changes and matches every session.
    fn uidl_of(&self, uid: u32) -> String {
        let validity = self.drop.as_ref().map_or(0, |d| d.inbox.uidvalidity);
        format!("{uid:08X}{validity:08X}")
    }

    fn uidl(&mut self, one: Option<Number>) {
        if let Some(n) = one {
            if let Some((n, uid, ..)) = self.message(n) {
                let id = self.uidl_of(uid);
                self.say(&format!("+OK {n} {id}"));
            }
            return;
        }
        let lines: Vec<String> = self
            .live()
            .map(|(n, e)| format!("{n} {}", self.uidl_of(e.uid)))
            .collect();
        self.say("+OK Unique IDs follow");
        for l in lines {
            self.say(&l);
        }
        self.say(".");
    }

    /// RETR, or TOP with `lines`: the message dot-stuffed, ending in
    /// CRLF.CRLF whatever its last line was.
    async fn retr(&mut self, n: Number, lines: Option<usize>) -> Result<(), Error> {
        let Some((_, uid, size, blob)) = self.message(n) else {
            return Ok(());
        };
        let raw = match self.server.store.read_blob(&blob).await {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!("pop3: cannot read message {uid}: {e}");
                self.say("-ERR [SYS/TEMP] The message cannot be read now; it may have been deleted meanwhile.");
                return Ok(());
            }
        };
        let served = mime::served(&raw);
        let body = match lines {
            None => &served[..],
            Some(n) => top_of(&served, n),
        };
        self.say(&format!("+OK {size} octets"));
        stuff(&mut self.out, body);
        self.say(".");
        if lines.is_none()
            && let Some(d) = self.drop.as_mut()
        {
            d.retrieved.insert(uid);
        }
        Ok(())
    }

    fn dele(&mut self, n: Number) {
        let Some((n, ..)) = self.message(n) else {
            return;
        };
        if let Some(e) = self.drop.as_mut().and_then(|d| d.messages.get_mut(n - 1)) {
            e.deleted = true;
        }
        self.say(&format!("+OK Message {n} deleted."));
    }

    fn rset(&mut self) {
        if let Some(d) = self.drop.as_mut() {
            for e in &mut d.messages {
                e.deleted = false;
            }
        }
        let n = self.live().count();
        self.say(&format!("+OK {n} messages."));
    }

    /// QUIT: in the transaction state, the UPDATE state applies what the
    /// session did (RFC 1939 6); a connection that just drops applies nothing.
    async fn quit_command(&mut self) -> Result<(), Error> {
        self.quit = true;
        let Some(d) = self.drop.take() else {
            self.say("+OK Bye.");
            return Ok(());
        };
        let store = self.server.store.clone();
        let deleted: Vec<u32> = d
            .messages
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect();
        let seen: Vec<u32> = d
            .messages
            .iter()
            .filter(|e| !e.deleted && d.retrieved.contains(&e.uid))
            .map(|e| e.uid)
            .collect();
        let applied = async {
            if self.server.settings.mark_seen && !seen.is_empty() {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: Flags::SEEN,
                    keywords: vec![],
                };
                store.store_flags(d.inbox.id, &seen, &change, None).await?;
            }
            if deleted.is_empty() {
                return Ok(0);
            }
            let mode = self
                .account
                .as_ref()
                .and_then(|a| a.pop3_delete)
                .unwrap_or(self.server.settings.delete);
            // What really went: a message another session expunged meanwhile
            // is not counted.
            let gone = match mode {
                Pop3Delete::Expunge => store.expunge(d.inbox.id, &deleted, false).await?.uids.len(),
                Pop3Delete::Hide => hide(&*store, d.inbox.id, &deleted).await?,
                Pop3Delete::Trash => {
                    let account = d.inbox.account_id;
                    let trash = store
                        .list_mailboxes(account)
                        .await?
                        .into_iter()
                        .find(|m| m.special_use == Some(SpecialUse::Trash));
                    match trash {
                        Some(t) => store
                            .move_messages(d.inbox.id, &deleted, t.id)
                            .await?
                            .pairs
                            .len(),
                        // No Trash any more: keep the mail rather than lose it.
                        None => hide(&*store, d.inbox.id, &deleted).await?,
                    }
                }
            };
            Ok::<usize, store::Error>(gone)
        }
        .await;
        match applied {
            Ok(gone) => self.say(&format!("+OK Bye; {gone} messages deleted.")),
            Err(e) => {
                tracing::error!("pop3: QUIT could not apply its changes: {e}");
                self.say("-ERR [SYS/TEMP] Some deletions could not be applied; they stay in the mailbox.");
            }
        }
        Ok(())
    }
}

/// Hides messages from POP3 (the `hide` delete mode); how many it hid.
async fn hide(
    store: &dyn store::MailStore,
    inbox: store::MailboxId,
    uids: &[u32],
) -> Result<usize, store::Error> {
    let change = FlagChange {
        op: FlagOp::Add,
        flags: Flags::POP3_HIDDEN,
        keywords: vec![],
    };
    Ok(store
        .store_flags(inbox, uids, &change, None)
        .await?
        .updated
        .len())
}

/// The header, the empty line and the first `n` lines of the body.
fn top_of(msg: &[u8], n: usize) -> &[u8] {
    let header_end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(msg.len());
    let mut end = header_end;
    for _ in 0..n {
        if end >= msg.len() {
            break;
        }
        end = msg[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| end + i + 1)
            .unwrap_or(msg.len());
    }
    &msg[..end]
}

/// Appends `msg` dot-stuffed (RFC 1939 3), ending with CRLF.
fn stuff(out: &mut Vec<u8>, msg: &[u8]) {
    let mut at_line_start = true;
    for &b in msg {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !msg.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// SASL challenges as RFC 5034 4 frames them: `+ base64`, answered by one
/// line.
impl SaslWire for Session {
    async fn challenge(&mut self, challenge: &str) -> std::io::Result<Vec<u8>> {
        self.say(&format!("+ {challenge}"));
        self.flush().await.map_err(std::io::Error::other)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stream"))?;
        door::login::answer_line(io, HANDSHAKE_TIMEOUT).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_and_top() {
        let mut out = Vec::new();
        stuff(&mut out, b"Subject: x\r\n\r\n.dot\r\n..two\r\nend");
        assert_eq!(out, b"Subject: x\r\n\r\n..dot\r\n...two\r\nend\r\n");
        let msg = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top_of(msg, 0), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(top_of(msg, 2), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(top_of(msg, 99), msg);
        assert_eq!(top_of(b"no body", 3), b"no body");
    }
}
