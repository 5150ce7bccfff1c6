//! One IMAP session: reading commands (literals included), the states of
//! RFC 9051 3, and every command's answer.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use door::conn::{Wait, wait};
use door::login::{self, Mechanism, SaslError, SaslWire};
use door::{ConnectionGuard, LineError, LineReader, Stream};
use imap_proto::frame::{command_name, literal_at_end};
use imap_proto::response;
use imap_proto::*;
use store::{
    Account, FlagChange, FlagOp, Flags, InternalDate, MAX_MESSAGE_SIZE, Mailbox, NewMessage,
    SpecialUse,
};
use tokio::sync::{broadcast, watch};

use crate::fetch::{self, Loaded};
use crate::view::{Entry, View};
use crate::{
    AUTH_TIMEOUT, HANDSHAKE_TIMEOUT, IDLE_KEEPALIVE, MAX_LINE, MAX_SMALL_LITERAL, PREAUTH_TIMEOUT,
    Server, WRITE_TIMEOUT, list, search,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Session {
    server: Arc<Server>,
    peer: SocketAddr,
    io: Option<LineReader<Stream>>,
    shutdown: watch::Receiver<bool>,
    out: Vec<u8>,
    account: Option<Account>,
    _user_slot: Option<ConnectionGuard>,
    selected: Option<View>,
    feed: Option<broadcast::Receiver<store::Change>>,
    /// ENABLE IMAP4rev2: ESEARCH answers, UTF-8 names, no \Recent.
    rev2: bool,
    /// SEARCHRES result (RFC 5182), as UIDs.
    saved: Option<Vec<u32>>,
    tls: bool,
    logout: bool,
}

/// The tagged answer of a command.
struct Done {
    status: &'static str,
    code: Option<String>,
    text: String,
}

fn ok(text: impl Into<String>) -> Done {
    Done {
        status: "OK",
        code: None,
        text: text.into(),
    }
}
fn ok_code(code: impl Into<String>, text: impl Into<String>) -> Done {
    Done {
        status: "OK",
        code: Some(code.into()),
        text: text.into(),
    }
}
fn no(text: impl Into<String>) -> Done {
    Done {
        status: "NO",
        code: None,
        text: text.into(),
    }
}
fn no_code(code: impl Into<String>, text: impl Into<String>) -> Done {
    Done {
        status: "NO",
        code: Some(code.into()),
        text: text.into(),
    }
}
fn bad(text: impl Into<String>) -> Done {
    Done {
        status: "BAD",
        code: None,
        text: text.into(),
    }
}

/// A store error as the client should see it.
fn store_failure(e: store::Error) -> Done {
    use store::Error as E;
    match e {
        E::NoMailbox(name) => no_code("NONEXISTENT", format!("No mailbox {name}.")),
        E::MailboxExists(name) => {
            no_code("ALREADYEXISTS", format!("Mailbox {name} exists already."))
        }
        E::InvalidMailboxName(name, why) => {
            no_code("CANNOT", format!("Invalid mailbox name {name:?}: {why}."))
        }
        E::InboxUndeletable => no_code("CANNOT", "INBOX cannot be deleted."),
        E::RenameIntoItself => no_code("CANNOT", "A mailbox cannot be moved under itself."),
        E::TooLarge => no_code(
            "TOOBIG",
            format!("Messages are limited to {MAX_MESSAGE_SIZE} bytes."),
        ),
        E::EmptyMessage => no("An empty message cannot be stored."),
        other => {
            tracing::error!("imap: store failure: {other}");
            no_code(
                "SERVERBUG",
                "Internal error; the administrator can find it in the server log.",
            )
        }
    }
}

/// What a command allows to be told about other sessions' changes when it
/// completes (RFC 9051 7.5.1: no EXPUNGE during FETCH, STORE and SEARCH).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Updates {
    None,
    NoExpunge,
    All,
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
            tls,
            server,
            peer,
            io: Some(LineReader::new(stream, MAX_LINE)),
            shutdown,
            // Grows with the first answers; an idle session keeps little.
            out: Vec::new(),
            account: None,
            _user_slot: None,
            selected: None,
            feed: None,
            rev2: false,
            saved: None,
            logout: false,
        }
    }

    /// The stream; absent only after a failed STARTTLS, which ends the session.
    fn io(&mut self) -> Result<&mut LineReader<Stream>, Error> {
        Ok(self
            .io
            .as_mut()
            .ok_or("the connection has no stream after a failed STARTTLS")?)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        write_out(&mut self.io, &mut self.out).await?;
        // A big answer's buffer does not stay with the session for its
        // lifetime: thousands of idle sessions add up.
        door::conn::trim(&mut self.out);
        Ok(())
    }

    fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub async fn run(mut self) -> Result<(), Error> {
        let caps = self.capabilities();
        self.line(&format!("* OK [CAPABILITY {caps}] Satchel ready."));
        self.flush().await?;
        let mut line = Vec::new();
        let mut shutdown = self.shutdown.clone();
        while !self.logout {
            let timeout = if self.account.is_some() {
                AUTH_TIMEOUT
            } else {
                PREAUTH_TIMEOUT
            };
            let read = match wait(self.read_command(&mut line), timeout, &mut shutdown).await {
                Wait::Ready(r) => r,
                Wait::ShuttingDown => {
                    self.line("* BYE [UNAVAILABLE] The server is shutting down.");
                    self.flush().await?;
                    return Ok(());
                }
                Wait::Idle => {
                    self.line("* BYE Autologout; idle for too long.");
                    self.flush().await?;
                    return Ok(());
                }
            };
            let command = match read {
                Err(e) => return Err(e),
                Ok(None) => continue,
                Ok(Some(buf)) => buf,
            };
            match parse_command(&command) {
                Ok(cmd) => self.dispatch(cmd).await?,
                Err(e) => {
                    let tag = e.tag.clone().unwrap_or_else(|| "*".into());
                    self.line(&format!("{tag} BAD {}", e.message));
                }
            }
            self.flush().await?;
        }
        Ok(())
    }

    /// Reads one command with its literals. `None` when the command was
    /// answered already (a line too long, a literal refused).
    async fn read_command(&mut self, line: &mut Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        if let Some(done) = self.read_line(line, None).await? {
            return Ok(done);
        }
        if line.is_empty() {
            return Ok(None);
        }
        let tag = tag_of(line);
        let name = command_name(line);
        // Only a logged-in APPEND may send message-sized literals; anything
        // else (and anyone not logged in) gets small ones, in total too.
        let append = name == "APPEND" && self.account.is_some();
        let literal_limit = if append {
            MAX_MESSAGE_SIZE
        } else {
            MAX_SMALL_LITERAL
        };
        let mut command = line.clone();
        let mut literal_total: u64 = 0;
        while let Some(lit) = literal_at_end(line) {
            literal_total = literal_total.saturating_add(lit.size);
            if literal_total > literal_limit {
                let what = format!(
                    "[TOOBIG] Literal of {} bytes is over the limit of {literal_limit} bytes.",
                    lit.size
                );
                if lit.non_sync {
                    // The client sends it anyway; don't read gigabytes to stay in step.
                    self.line(&format!("* BYE {what}"));
                    self.flush().await?;
                    self.logout = true;
                    return Ok(None);
                }
                let status = if append { "NO" } else { "BAD" };
                self.line(&format!("{tag} {status} {what}"));
                self.flush().await?;
                return Ok(None);
            }
            if !lit.non_sync {
                self.line("+ Ready for literal data");
                self.flush().await?;
            }
            command.extend_from_slice(b"\r\n");
            self.io()?.exact(lit.size as usize, &mut command).await?;
            if let Some(done) = self.read_line(line, Some(&tag)).await? {
                return Ok(done);
            }
            if command.len() - literal_total as usize + line.len() > MAX_LINE {
                self.line(&format!(
                    "{tag} BAD [TOOBIG] Command longer than {MAX_LINE} bytes."
                ));
                self.flush().await?;
                return Ok(None);
            }
            command.extend_from_slice(line);
        }
        Ok(Some(command))
    }

    /// One line of a command; `Some(None)` when it was too long and has
    /// been answered (tagged, with `tag` or the tag the line started with).
    async fn read_line(
        &mut self,
        line: &mut Vec<u8>,
        tag: Option<&str>,
    ) -> Result<Option<Option<Vec<u8>>>, Error> {
        match self.io()?.line(line).await {
            Ok(()) => Ok(None),
            Err(LineError::TooLong { max, head }) => {
                let tag = tag.map(str::to_string).unwrap_or_else(|| tag_of(&head));
                self.line(&format!(
                    "{tag} BAD [TOOBIG] Command line longer than {max} bytes."
                ));
                self.flush().await?;
                Ok(Some(None))
            }
            Err(e) => Err(e.into()),
        }
    }
}

// Commands.
impl Session {
    /// Plaintext logins are allowed over TLS, from loopback, or everywhere
    /// when the config says so.
    fn login_allowed(&self) -> bool {
        login::plaintext_allowed(
            self.tls,
            self.peer.ip(),
            self.server.settings.plaintext_anywhere,
        )
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "IMAP4rev2"];
        if self.account.is_none() {
            if !self.tls && self.server.tls.is_some() {
                caps.push("STARTTLS");
            }
            if self.login_allowed() {
                caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.extend([
            "SASL-IR",
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "MULTIAPPEND",
            "BINARY",
        ]);
        let mut s = caps.join(" ");
        s.push_str(&format!(" APPENDLIMIT={MAX_MESSAGE_SIZE}"));
        s
    }

    async fn dispatch(&mut self, cmd: Command) -> Result<(), Error> {
        let tag = cmd.tag.clone();
        let authenticated = self.account.is_some();
        let selected = self.selected.is_some();
        use CommandBody as C;
        let needs_auth = !matches!(
            cmd.body,
            C::Capability
                | C::Noop
                | C::Logout
                | C::StartTls
                | C::Authenticate { .. }
                | C::Login { .. }
                | C::Id(_)
        );
        let needs_selected = matches!(
            cmd.body,
            C::Check
                | C::Close
                | C::Unselect
                | C::Expunge { .. }
                | C::Search { .. }
                | C::Fetch { .. }
                | C::Store { .. }
                | C::Copy { .. }
                | C::Move { .. }
        );
        let (done, updates) = if needs_auth && !authenticated {
            (bad("Log in first."), Updates::None)
        } else if needs_selected && !selected {
            (bad("Select a mailbox first."), Updates::None)
        } else {
            match cmd.body {
                C::Capability => {
                    let caps = self.capabilities();
                    self.line(&format!("* CAPABILITY {caps}"));
                    (ok("CAPABILITY completed."), Updates::All)
                }
                C::Noop => (ok("NOOP completed."), Updates::All),
                C::Check => (ok("CHECK completed."), Updates::All),
                C::Logout => {
                    self.line("* BYE Logging out.");
                    self.logout = true;
                    (ok("LOGOUT completed."), Updates::None)
                }
                C::StartTls => return self.starttls(&tag).await,
                C::Login { user, password } => (self.login(&user, &password).await?, Updates::None),
                C::Authenticate { mechanism, initial } => {
                    (self.authenticate(&mechanism, initial).await?, Updates::None)
                }
                C::Id(_) => {
                    self.line(&format!(
                        "* ID (\"name\" \"Satchel\" \"version\" \"{}\")",
                        env!("CARGO_PKG_VERSION")
                    ));
                    (ok("ID completed."), Updates::All)
                }
                C::Enable(_) if selected => (bad("ENABLE comes before SELECT."), Updates::None),
                C::Enable(caps) => (self.enable(&caps), Updates::None),
                C::Namespace => {
                    self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                    (ok("NAMESPACE completed."), Updates::All)
                }
                C::Select {
                    condstore: true, ..
                }
                | C::Fetch {
                    changed_since: Some(_),
                    ..
                }
                | C::Store {
                    unchanged_since: Some(_),
                    ..
                } => (
                    bad("CONDSTORE is not offered by this server."),
                    Updates::None,
                ),
                C::Select {
                    mailbox, read_only, ..
                } => (self.select(&mailbox, read_only).await?, Updates::None),
                C::Create {
                    mailbox,
                    special_use,
                } => (self.create(&mailbox, &special_use).await, Updates::All),
                C::Delete(mailbox) => (self.delete(&mailbox).await, Updates::All),
                C::Rename { from, to } => (self.rename(&from, &to).await, Updates::All),
                C::Subscribe(mailbox) => (self.subscribe(&mailbox, true).await, Updates::All),
                C::Unsubscribe(mailbox) => (self.subscribe(&mailbox, false).await, Updates::All),
                C::List(l) => (self.list(&l).await, Updates::All),
                C::Status { mailbox, items } => (self.status(&mailbox, &items).await, Updates::All),
                C::Append { mailbox, messages } => {
                    (self.append(&mailbox, messages).await, Updates::All)
                }
                C::Idle => return self.idle(&tag).await,
                C::Close => (self.close(true).await, Updates::None),
                C::Unselect => (self.close(false).await, Updates::None),
                C::Expunge { uids } => (self.expunge(uids.as_ref()).await?, Updates::All),
                C::Search {
                    uid,
                    charset,
                    ret,
                    key,
                } => {
                    let done = self
                        .search(&tag, uid, charset.as_deref(), ret.as_deref(), &key)
                        .await;
                    (
                        done,
                        if uid {
                            Updates::All
                        } else {
                            Updates::NoExpunge
                        },
                    )
                }
                C::Fetch {
                    uid, set, items, ..
                } => {
                    let done = self.fetch(uid, &set, &items).await?;
                    (
                        done,
                        if uid {
                            Updates::All
                        } else {
                            Updates::NoExpunge
                        },
                    )
                }
                C::Store {
                    uid,
                    set,
                    mode,
                    silent,
                    flags,
                    unchanged_since,
                } => {
                    let done = self
                        .store(uid, &set, mode, silent, &flags, unchanged_since)
                        .await;
                    (
                        done,
                        if uid {
                            Updates::All
                        } else {
                            Updates::NoExpunge
                        },
                    )
                }
                C::Copy { uid, set, mailbox } => {
                    (self.copy(uid, &set, &mailbox, false).await, Updates::All)
                }
                C::Move { uid, set, mailbox } => {
                    (self.copy(uid, &set, &mailbox, true).await, Updates::All)
                }
            }
        };
        if updates != Updates::None {
            self.send_updates(updates == Updates::All).await?;
        }
        let code = done.code.map(|c| format!("[{c}] ")).unwrap_or_default();
        self.line(&format!("{tag} {} {code}{}", done.status, done.text));
        Ok(())
    }

    /// Catches up with other sessions' changes to the selected mailbox and
    /// tells the client what it may be told now.
    async fn send_updates(&mut self, expunges_allowed: bool) -> Result<(), Error> {
        let Some(feed) = self.feed.as_mut() else {
            return Ok(());
        };
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        let id = view.mailbox.id;
        // Only look again when something changed in this mailbox.
        let mut changed = false;
        loop {
            match feed.try_recv() {
                Ok(c) => changed |= c.mailbox_id == id,
                Err(broadcast::error::TryRecvError::Lagged(_)) => changed = true,
                Err(_) => break,
            }
        }
        let pending = !view.pending_expunge.is_empty();
        if !(changed || pending && expunges_allowed) {
            return Ok(());
        }
        self.catch_up(expunges_allowed).await
    }

    async fn catch_up(&mut self, expunges_allowed: bool) -> Result<(), Error> {
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let Some(view) = self.selected.as_mut() else {
            return Ok(());
        };
        let updates = match view.catch_up(store.as_ref()).await {
            Ok(u) => u,
            Err(store::Error::NoMailbox(_)) => {
                self.line("* BYE [NONEXISTENT] The selected mailbox was deleted.");
                self.logout = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        if expunges_allowed {
            for seq in view.take_expunges() {
                out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
            }
        }
        if updates.new_messages > 0 {
            out.extend_from_slice(format!("* {} EXISTS\r\n", view.exists()).as_bytes());
            if !rev2 && updates.new_messages > 0 {
                out.extend_from_slice(format!("* {} RECENT\r\n", view.recent.len()).as_bytes());
            }
        }
        for uid in updates.flags {
            // Looked up after the expunges above, so the number is current.
            if let Some(i) = view.index_of(uid) {
                let m = &view.messages[i];
                out.extend_from_slice(format!("* {} FETCH (UID {} FLAGS ", i + 1, uid).as_bytes());
                response::flag_list(
                    &mut out,
                    fetch::flags(m, !rev2 && view.recent.contains(&uid)),
                );
                out.extend_from_slice(b")\r\n");
            }
        }
        self.out.extend_from_slice(&out);
        Ok(())
    }

    async fn starttls(&mut self, tag: &str) -> Result<(), Error> {
        let Some(config) = self
            .server
            .tls
            .clone()
            .filter(|_| !self.tls && self.account.is_none())
        else {
            self.line(&format!("{tag} BAD STARTTLS is not available now."));
            return Ok(());
        };
        self.line(&format!("{tag} OK Begin TLS negotiation now."));
        self.flush().await?;
        // Anything the client pipelined after STARTTLS is dropped (it came
        // in plain text); the handshake starts on a clean stream.
        let io = self.io.take().ok_or("no stream")?;
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, io.into_inner().into_tls(config))
            .await
            .map_err(|_| "TLS handshake timed out")??;
        self.io = Some(LineReader::new(stream, MAX_LINE));
        self.tls = true;
        Ok(())
    }

    async fn login(&mut self, user: &[u8], password: &[u8]) -> Result<Done, Error> {
        if self.account.is_some() {
            return Ok(bad("Already logged in."));
        }
        if !self.login_allowed() {
            return Ok(no_code(
                "PRIVACYREQUIRED",
                "Plain-text login needs TLS: use STARTTLS or the IMAPS port.",
            ));
        }
        self.check_password(user, password).await
    }

    async fn check_password(&mut self, user: &[u8], password: &[u8]) -> Result<Done, Error> {
        let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
        else {
            return Ok(self.login_failed().await);
        };
        let server = self.server.clone();
        let checked = login::check_password(
            &*server.store,
            &server.throttle,
            self.peer.ip(),
            user,
            password,
        )
        .await?;
        match checked {
            Some(account) => {
                let Some(slot) = self.server.limits.login(&account.address) else {
                    return Ok(no_code(
                        "LIMIT",
                        "Too many sessions for this account; close some first.",
                    ));
                };
                self._user_slot = Some(slot);
                self.account = Some(account);
                let caps = self.capabilities();
                Ok(ok_code(format!("CAPABILITY {caps}"), "Logged in."))
            }
            None => Ok(no_code("AUTHENTICATIONFAILED", "Authentication failed.")),
        }
    }

    async fn login_failed(&mut self) -> Done {
        login::failed(&self.server.throttle, self.peer.ip()).await;
        no_code("AUTHENTICATIONFAILED", "Authentication failed.")
    }

    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Result<Done, Error> {
        if self.account.is_some() {
            return Ok(bad("Already logged in."));
        }
        if !self.login_allowed() {
            return Ok(no_code(
                "PRIVACYREQUIRED",
                "Authentication needs TLS: use STARTTLS or the IMAPS port.",
            ));
        }
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes()) else {
            return Ok(no(format!(
                "Unsupported mechanism {mechanism}; use PLAIN or LOGIN."
            )));
        };
        match login::exchange(self, mechanism, initial.as_deref()).await? {
            Ok(c) => {
                self.check_password(c.user.as_bytes(), c.password.as_bytes())
                    .await
            }
            Err(SaslError::Malformed) => Ok(self.login_failed().await),
            // RFC 9051 6.2.2: a cancelled or undecodable exchange is BAD.
            Err(e) => Ok(bad(e.to_string())),
        }
    }

    fn enable(&mut self, caps: &[String]) -> Done {
        let mut enabled = Vec::new();
        for c in caps {
            if c == "IMAP4REV2" && !self.rev2 {
                self.rev2 = true;
                enabled.push("IMAP4rev2");
            }
        }
        self.line(format!("* ENABLED {}", enabled.join(" ")).trim_end());
        ok("ENABLE completed.")
    }

    /// A mailbox name from the wire: modified UTF-7, or UTF-8 once the
    /// client enabled IMAP4rev2.
    fn mailbox_name(&self, arg: &MailboxArg) -> Result<String, Done> {
        let name = if self.rev2 {
            String::from_utf8(arg.0.clone()).ok()
        } else {
            std::str::from_utf8(&arg.0).ok().and_then(utf7::decode)
        };
        let name = name.ok_or_else(|| {
            bad(if self.rev2 {
                "The mailbox name is not UTF-8."
            } else {
                "The mailbox name is not valid modified UTF-7."
            })
        })?;
        store::names::normalize_mailbox_name(name.trim_end_matches(store::DELIMITER))
            .map_err(store_failure)
    }

    fn account_id(&self) -> i64 {
        self.account.as_ref().map_or(0, |a| a.id)
    }

    async fn find_mailbox(&self, arg: &MailboxArg) -> Result<Mailbox, Done> {
        let name = self.mailbox_name(arg)?;
        match self.server.store.mailbox(self.account_id(), &name).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(no_code("NONEXISTENT", format!("No mailbox {name}."))),
            Err(e) => Err(store_failure(e)),
        }
    }

    async fn select(&mut self, arg: &MailboxArg, read_only: bool) -> Result<Done, Error> {
        if self.selected.take().is_some() {
            // RFC 9051 7.1: the previous mailbox is closed first.
            self.line("* OK [CLOSED] Previous mailbox closed.");
        }
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(done) => return Ok(done),
        };
        if self.feed.is_none() {
            self.feed = Some(self.server.store.subscribe());
        }
        // Drained before the view is read: a change after this point is
        // either in the view or still waiting on the feed, never lost.
        if let Some(feed) = self.feed.as_mut() {
            while feed.try_recv().is_ok() {}
        }
        let store = self.server.store.clone();
        let view = match View::open(store.as_ref(), mailbox, read_only).await {
            Ok(v) => v,
            Err(e) => return Ok(store_failure(e)),
        };
        let mut keywords: Vec<&str> = Vec::new();
        for m in &view.messages {
            for k in &m.keywords {
                if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    keywords.push(k);
                }
            }
        }
        let system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        let kw = keywords.join(" ");
        let kw = if kw.is_empty() {
            String::new()
        } else {
            format!(" {kw}")
        };
        let mut lines = vec![
            format!("* {} EXISTS", view.exists()),
            format!("* FLAGS ({system}{kw})"),
            if read_only {
                // Nothing can be changed in a read-only mailbox (RFC 9051 7.1).
                "* OK [PERMANENTFLAGS ()] Read-only mailbox.".to_string()
            } else {
                format!("* OK [PERMANENTFLAGS ({system}{kw} \\*)] Flags permitted.")
            },
            format!(
                "* OK [UIDVALIDITY {}] UIDs valid.",
                view.mailbox.uidvalidity
            ),
            format!(
                "* OK [UIDNEXT {}] Predicted next UID.",
                view.mailbox.uidnext
            ),
        ];
        if !self.rev2 {
            lines.insert(1, format!("* {} RECENT", view.recent.len()));
            if let Some(i) = view
                .messages
                .iter()
                .position(|m| !m.flags.contains(Flags::SEEN))
            {
                lines.push(format!("* OK [UNSEEN {}] First unseen.", i + 1));
            }
        }
        for l in lines {
            self.line(&l);
        }
        let code = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        let what = if read_only { "EXAMINE" } else { "SELECT" };
        if self.rev2 {
            // RFC 9051 6.3.2: the mailbox's LIST response, with its name.
            let mut line = b"* LIST () \"/\" ".to_vec();
            response::mailbox(&mut line, &view.mailbox.name, true);
            line.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&line);
        }
        self.selected = Some(view);
        self.saved = None;
        Ok(ok_code(code, format!("{what} completed.")))
    }

    async fn create(&mut self, arg: &MailboxArg, special_use: &[String]) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let use_attr = match special_use {
            [] => None,
            [one] => match SpecialUse::parse(one) {
                Some(u) => Some(u),
                None => {
                    return no_code(
                        "USEATTR",
                        format!("{one} is not a special use Satchel knows."),
                    );
                }
            },
            _ => return no_code("USEATTR", "One special use per mailbox."),
        };
        match self
            .server
            .store
            .create_mailbox(self.account_id(), &name, use_attr)
            .await
        {
            Ok(_) => ok("CREATE completed."),
            Err(e) => store_failure(e),
        }
    }

    async fn delete(&mut self, arg: &MailboxArg) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        match self
            .server
            .store
            .delete_mailbox(self.account_id(), &name)
            .await
        {
            Ok(()) => ok("DELETE completed."),
            Err(e) => store_failure(e),
        }
    }

    async fn rename(&mut self, from: &MailboxArg, to: &MailboxArg) -> Done {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(d), _) | (_, Err(d)) => return d,
        };
        match self
            .server
            .store
            .rename_mailbox(self.account_id(), &from, &to)
            .await
        {
            Ok(()) => ok("RENAME completed."),
            Err(e) => store_failure(e),
        }
    }

    async fn subscribe(&mut self, arg: &MailboxArg, on: bool) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        match self
            .server
            .store
            .set_subscribed(self.account_id(), &name, on)
            .await
        {
            Ok(()) => ok(if on {
                "SUBSCRIBE completed."
            } else {
                "UNSUBSCRIBE completed."
            }),
            Err(e) => store_failure(e),
        }
    }

    async fn list(&mut self, cmd: &ListCommand) -> Done {
        let store = self.server.store.clone();
        let account = self.account_id();
        let (mailboxes, subscriptions) = match (
            store.list_mailboxes(account).await,
            store.subscriptions(account).await,
        ) {
            (Ok(m), Ok(s)) => (m, s),
            (Err(e), _) | (_, Err(e)) => return store_failure(e),
        };
        let decode = |arg: &MailboxArg| -> Option<String> {
            if self.rev2 {
                String::from_utf8(arg.0.clone()).ok()
            } else {
                std::str::from_utf8(&arg.0).ok().and_then(utf7::decode)
            }
        };
        let Some(reference) = decode(&cmd.reference) else {
            return bad("The reference name is not valid.");
        };
        let mut patterns = Vec::new();
        for p in &cmd.patterns {
            let Some(p) = decode(p) else {
                return bad("The mailbox pattern is not valid.");
            };
            patterns.push(format!("{reference}{p}"));
        }
        let kind = match cmd.kind {
            ListKind::List => "LIST",
            ListKind::Lsub => "LSUB",
            ListKind::Xlist => "XLIST",
        };
        if cmd.kind != ListKind::Lsub && patterns.iter().all(|p| p.is_empty()) {
            // RFC 9051 6.3.9: an empty pattern asks for the delimiter.
            self.line(&format!("* {kind} (\\Noselect) \"/\" \"\""));
            return ok(format!("{kind} completed."));
        }
        // RFC 5258 3.1: known selection options; RECURSIVEMATCH only with another.
        for option in &cmd.selection {
            if !matches!(
                option.as_str(),
                "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
            ) {
                return bad(format!("Unknown LIST selection option {option}."));
            }
        }
        let recursive = cmd.selection.iter().any(|s| s == "RECURSIVEMATCH");
        if recursive
            && !cmd
                .selection
                .iter()
                .any(|s| s != "RECURSIVEMATCH" && s != "REMOTE")
        {
            return bad("RECURSIVEMATCH needs another selection option.");
        }
        let only_subscribed =
            cmd.kind == ListKind::Lsub || cmd.selection.iter().any(|s| s == "SUBSCRIBED");
        let only_special = cmd.selection.iter().any(|s| s == "SPECIAL-USE");
        let show_subscribed = only_subscribed || cmd.ret.contains(&ListReturn::Subscribed);
        let status_items: Option<&Vec<StatusItem>> = cmd.ret.iter().find_map(|r| match r {
            ListReturn::Status(items) => Some(items),
            _ => None,
        });
        let mut lines = Vec::new();
        for e in list::entries(&mailboxes, &subscriptions) {
            if !patterns.iter().any(|p| list::matches(p, &e.name)) {
                continue;
            }
            // RECURSIVEMATCH: a parent that is not subscribed itself is
            // listed when a child is, with CHILDINFO saying so.
            let child_subscribed = recursive
                && only_subscribed
                && subscriptions
                    .iter()
                    .any(|n| n.starts_with(&format!("{}/", e.name)));
            if only_subscribed && !e.subscribed && !child_subscribed {
                continue;
            }
            if only_special && e.special_use.is_none() {
                continue;
            }
            if !e.exists && !e.has_children && !only_subscribed {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if !e.exists {
                attrs.push(if only_subscribed && !e.has_children {
                    "\\NonExistent"
                } else {
                    "\\Noselect"
                });
            }
            if cmd.kind != ListKind::Lsub {
                attrs.push(if e.has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if show_subscribed && e.subscribed && cmd.kind != ListKind::Lsub {
                attrs.push("\\Subscribed");
            }
            if let Some(u) = e.special_use {
                attrs.push(u);
            }
            if cmd.kind == ListKind::Xlist && e.name == "INBOX" {
                attrs.push("\\Inbox");
            }
            let mut line = format!("* {kind} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            response::mailbox(&mut line, &e.name, self.rev2);
            if child_subscribed {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            lines.push((line, e.exists.then_some(e.name)));
        }
        for (line, name) in lines {
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
            if let (Some(items), Some(name)) = (status_items, name)
                && let Ok(Some(m)) = store.mailbox(account, &name).await
                && let Err(e) = self.write_status(&m, items).await
            {
                return store_failure(e);
            }
        }
        ok(format!("{kind} completed."))
    }

    async fn status(&mut self, arg: &MailboxArg, items: &[StatusItem]) -> Done {
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        match self.write_status(&mailbox, items).await {
            Ok(()) => ok("STATUS completed."),
            Err(e) => store_failure(e),
        }
    }

    async fn write_status(&mut self, m: &Mailbox, items: &[StatusItem]) -> store::Result<()> {
        let s = self.server.store.status(m.id).await?;
        let parts: Vec<String> = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => format!("MESSAGES {}", s.messages),
                StatusItem::Recent => format!("RECENT {}", s.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", m.uidnext),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", m.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", s.unseen),
                StatusItem::Deleted => format!("DELETED {}", s.deleted),
                StatusItem::Size => format!("SIZE {}", s.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", m.highestmodseq),
                StatusItem::AppendLimit => format!("APPENDLIMIT {MAX_MESSAGE_SIZE}"),
            })
            .collect();
        let mut line = b"* STATUS ".to_vec();
        response::mailbox(&mut line, &m.name, self.rev2);
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(&line);
        Ok(())
    }

    async fn append(&mut self, arg: &MailboxArg, messages: Vec<AppendMessage>) -> Done {
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) if d.code.as_deref() == Some("NONEXISTENT") => {
                return no_code("TRYCREATE", "No such mailbox; create it first.");
            }
            Err(d) => return d,
        };
        let mut parsed = Vec::with_capacity(messages.len());
        for m in &messages {
            if m.data.is_empty() {
                return no("An empty message cannot be stored.");
            }
            if m.data.contains(&0) && !m.binary {
                return no("A message with NUL bytes must be sent as a literal8 (~{n}).");
            }
            let (flags, keywords) = match split_flags(&m.flags) {
                Ok(f) => f,
                Err(d) => return d,
            };
            let date = m
                .date
                .map(|d| InternalDate {
                    unix: d.unix,
                    tz_minutes: d.tz_minutes,
                })
                .unwrap_or_else(InternalDate::now);
            parsed.push((mime::analyze(&m.data), flags, keywords, date));
        }
        let batch: Vec<NewMessage> = messages
            .iter()
            .zip(&parsed)
            .map(|(m, (a, flags, keywords, date))| NewMessage {
                raw: &m.data,
                size: a.size,
                flags: *flags,
                keywords: keywords.clone(),
                internal_date: *date,
                cache: store::MessageCache::new(a.envelope.clone(), a.bodystructure.clone()),
                spam: None,
            })
            .collect();
        match self.server.store.append_batch(mailbox.id, batch).await {
            Ok(done) => {
                if mailbox.special_use == Some(SpecialUse::Sent) {
                    self.note_correspondents(&messages).await;
                }
                let uids: Vec<u32> = done.iter().map(|d| d.uid).collect();
                let validity = done.first().map_or(mailbox.uidvalidity, |d| d.uidvalidity);
                ok_code(
                    format!("APPENDUID {validity} {}", uid_set(&uids)),
                    "APPEND completed.",
                )
            }
            Err(e) => store_failure(e),
        }
    }

    /// A client that files what it sent into Sent (most do, when they
    /// send through another server) tells us whom the user writes to:
    /// their replies are trusted correspondents' mail.
    async fn note_correspondents(&self, messages: &[AppendMessage]) {
        let Some(account) = &self.account else { return };
        for m in messages {
            // Spammers put the user's own address in From: never trust it.
            let mut to = mime::address::recipients(&m.data);
            to.retain(|a| !a.eq_ignore_ascii_case(&account.address));
            if let Err(e) = self
                .server
                .store
                .record_correspondents(account.id, &to)
                .await
            {
                tracing::warn!("cannot note {}'s correspondents: {e}", account.address);
            }
        }
    }

    async fn idle(&mut self, tag: &str) -> Result<(), Error> {
        self.line("+ idling");
        self.send_updates(true).await?;
        self.flush().await?;
        let started = Instant::now();
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + IDLE_KEEPALIVE, IDLE_KEEPALIVE);
        let mut line = Vec::new();
        let mut feed = self.feed.take();
        let mut shutdown = self.shutdown.clone();
        let selected = self.selected.as_ref().map(|v| v.mailbox.id);
        let result = loop {
            if self.logout {
                break Ok(true);
            }
            tokio::select! {
                // LineReader::line keeps a half-read line across the
                // cancellations select! does, so a split DONE is not lost.
                r = self.io.as_mut().ok_or("no stream")?.line(&mut line) => {
                    break match r {
                        Ok(()) if line.eq_ignore_ascii_case(b"DONE") => Ok(true),
                        Ok(()) => Ok(false),
                        Err(e) => Err(Error::from(e)),
                    };
                }
                change = async {
                    match feed.as_mut() {
                        Some(f) => f.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let relevant = match change {
                        Ok(c) => Some(c.mailbox_id) == selected,
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => {
                            feed = None;
                            false
                        }
                    };
                    if relevant {
                        self.catch_up(true).await?;
                        self.flush().await?;
                    }
                }
                _ = keepalive.tick() => {
                    if started.elapsed() >= AUTH_TIMEOUT {
                        self.line("* BYE Autologout; idle for too long.");
                        self.flush().await?;
                        self.logout = true;
                        break Ok(true);
                    }
                    self.line("* OK Still here");
                    self.flush().await?;
                }
                _ = shutdown.changed() => {
                    self.line("* BYE [UNAVAILABLE] The server is shutting down.");
                    self.logout = true;
                    break Ok(true);
                }
            }
        };
        self.feed = feed;
        match result {
            Ok(true) if !self.logout => self.line(&format!("{tag} OK IDLE terminated.")),
            Ok(true) => {}
            Ok(false) => self.line(&format!("{tag} BAD Expected DONE.")),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    async fn close(&mut self, expunge: bool) -> Done {
        let Some(view) = self.selected.take() else {
            return bad("No mailbox selected.");
        };
        if expunge && !view.read_only {
            let deleted: Vec<u32> = view
                .messages
                .iter()
                .filter(|m| m.flags.contains(Flags::DELETED))
                .map(|m| m.uid)
                .collect();
            if !deleted.is_empty()
                && let Err(e) = self
                    .server
                    .store
                    .expunge(view.mailbox.id, &deleted, true)
                    .await
            {
                return store_failure(e);
            }
        }
        self.saved = None;
        ok(if expunge {
            "CLOSE completed."
        } else {
            "UNSELECT completed."
        })
    }

    async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Result<Done, Error> {
        let store = self.server.store.clone();
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return Ok(bad("No mailbox selected."));
        };
        if view.read_only {
            return Ok(no_code(
                "READ-ONLY",
                "The mailbox is open read-only (EXAMINE).",
            ));
        }
        let within = match uids {
            Some(set) => match view.resolve(set, true, saved.as_deref()) {
                Ok(sel) => Some(sel),
                Err(e) => return Ok(bad(e)),
            },
            None => None,
        };
        let targets: Vec<u32> = view
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.flags.contains(Flags::DELETED) && within.as_ref().is_none_or(|w| w.contains(*i))
            })
            .map(|(_, m)| m.uid)
            .collect();
        if targets.is_empty() {
            return Ok(ok("EXPUNGE completed."));
        }
        // The store checks \Deleted again: another session may have taken
        // it off since this view last heard.
        let gone = match store.expunge(view.mailbox.id, &targets, true).await {
            Ok(g) => g,
            Err(e) => return Ok(store_failure(e)),
        };
        for seq in view.remove(&gone) {
            self.out
                .extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
        }
        Ok(ok("EXPUNGE completed."))
    }

    async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        charset: Option<&str>,
        ret: Option<&[SearchReturn]>,
        key: &SearchKey,
    ) -> Done {
        if let Some(c) = charset
            && !matches!(c, "UTF-8" | "US-ASCII")
        {
            return no_code(
                "BADCHARSET (UTF-8 US-ASCII)",
                format!("Charset {c} is not supported."),
            );
        }
        let store = self.server.store.clone();
        let Some(view) = self.selected.as_ref() else {
            return bad("No mailbox selected.");
        };
        let hits = match search::run(store.as_ref(), view, key, self.saved.as_deref()).await {
            Ok(h) => h,
            Err(e) => return no(e),
        };
        let number = |i: usize| {
            if uid {
                view.messages[i].uid
            } else {
                i as u32 + 1
            }
        };
        let numbers: Vec<u32> = hits.iter().map(|&i| number(i)).collect();
        let esearch = ret.is_some() || self.rev2;
        let options: Vec<SearchReturn> = match ret {
            Some([]) | None => vec![SearchReturn::All],
            Some(r) => r.to_vec(),
        };
        if options.contains(&SearchReturn::Save) {
            // RFC 5182 2.4: with MIN and/or MAX (and no ALL or COUNT), only
            // those are saved.
            let only_ends = !options
                .iter()
                .any(|o| matches!(o, SearchReturn::All | SearchReturn::Count))
                && options
                    .iter()
                    .any(|o| matches!(o, SearchReturn::Min | SearchReturn::Max));
            let saved: Vec<u32> = if only_ends {
                let mut ends = Vec::new();
                if options.contains(&SearchReturn::Min) {
                    ends.extend(hits.first().map(|&i| view.messages[i].uid));
                }
                if options.contains(&SearchReturn::Max) {
                    ends.extend(hits.last().map(|&i| view.messages[i].uid));
                }
                ends.dedup();
                ends
            } else {
                hits.iter().map(|&i| view.messages[i].uid).collect()
            };
            self.saved = Some(saved);
        }
        if !esearch {
            let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
            let sep = if list.is_empty() { "" } else { " " };
            self.line(&format!("* SEARCH{sep}{}", list.join(" ")));
        } else if options != [SearchReturn::Save] {
            let mut line = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                line.push_str(" UID");
            }
            for o in &options {
                match o {
                    SearchReturn::Min if !numbers.is_empty() => {
                        line.push_str(&format!(" MIN {}", numbers.iter().min().unwrap_or(&0)))
                    }
                    SearchReturn::Max if !numbers.is_empty() => {
                        line.push_str(&format!(" MAX {}", numbers.iter().max().unwrap_or(&0)))
                    }
                    SearchReturn::All if !numbers.is_empty() => {
                        line.push_str(&format!(" ALL {}", uid_set(&numbers)))
                    }
                    SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                    _ => {}
                }
            }
            self.line(&line);
        }
        ok("SEARCH completed.")
    }

    async fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchAttr],
    ) -> Result<Done, Error> {
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return Ok(bad("No mailbox selected."));
        };
        let selection = match view.resolve(set, uid, saved.as_deref()) {
            Ok(s) => s,
            Err(e) => return Ok(bad(e)),
        };
        let needs = fetch::needs(items);
        // \Seen goes on before the data goes out (RFC 9051 6.4.5).
        let mut seen_now: HashSet<u32> = HashSet::new();
        if needs.sets_seen && !view.read_only {
            let unseen: Vec<u32> = selection
                .iter()
                .map(|i| &view.messages[i])
                .filter(|m| {
                    !m.flags.contains(Flags::SEEN) && !view.pending_expunge.contains(&m.uid)
                })
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: Flags::SEEN,
                    keywords: vec![],
                };
                let result = store
                    .store_flags(view.mailbox.id, &unseen, &change, None)
                    .await?;
                for u in result.updated {
                    if let Some(i) = view.index_of(u.uid) {
                        view.messages[i].flags = u.flags;
                        view.messages[i].modseq = u.modseq;
                        seen_now.insert(u.uid);
                    }
                }
            }
        }
        let views: HashMap<u32, store::MessageCache> = if needs.views {
            let uids: Vec<u32> = selection.iter().map(|i| view.messages[i].uid).collect();
            store
                .views(view.mailbox.id, &uids)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let indexes: Vec<usize> = selection.iter().collect();
        let details: HashMap<u32, store::MessageMeta> = if needs.details {
            let uids: Vec<u32> = indexes.iter().map(|&i| view.messages[i].uid).collect();
            store
                .details(view.mailbox.id, &uids)
                .await?
                .into_iter()
                .map(|m| (m.uid, m))
                .collect()
        } else {
            HashMap::new()
        };
        let mut missing = false;
        let total = selection.len();
        // Bodies are read a batch ahead, in one trip to the disk threads;
        // `None` for a message whose entry is gone.
        let mut bodies: std::collections::VecDeque<Option<store::Result<Vec<u8>>>> =
            Default::default();
        for (n, &i) in indexes.iter().enumerate() {
            if needs.body && bodies.is_empty() {
                let batch = body_batch(&view.messages, &details, &indexes[n..]);
                let wanted: Vec<store::BlobHash> = batch.iter().flatten().cloned().collect();
                let mut read = store.read_blobs(&wanted).await?.into_iter();
                bodies = batch
                    .iter()
                    .map(|b| b.as_ref().and_then(|_| read.next()))
                    .collect();
            }
            let meta = view.messages[i].clone();
            let body = if needs.body { bodies.pop_front() } else { None };
            let cache = views.get(&meta.uid);
            let detail = details.get(&meta.uid);
            // A message another session expunged, whose entry is gone: UID
            // FETCH leaves it out (its EXPUNGE goes out before the tagged
            // OK); FETCH by number says some were expunged meanwhile.
            if (needs.views && cache.is_none()) || (needs.details && detail.is_none()) {
                missing |= !uid;
                continue;
            }
            let loaded = match body.flatten() {
                Some(Ok(raw)) => Some(Loaded::new(raw)),
                Some(Err(e)) => {
                    if !view.pending_expunge.contains(&meta.uid) {
                        tracing::error!("imap: cannot read message {}: {e}", meta.uid);
                    }
                    missing = true;
                    continue;
                }
                None => None,
            };
            let message = fetch::Message {
                seq: i + 1,
                meta: &meta,
                details: detail,
                recent: !rev2 && view.recent.contains(&meta.uid),
                views: cache,
                body: loaded.as_ref(),
            };
            let mut out = Vec::new();
            if let Err(e) =
                fetch::write(&mut out, &message, items, uid, seen_now.contains(&meta.uid))
            {
                return Ok(no(e));
            }
            self.out.extend_from_slice(&out);
            // Stream large answers instead of holding them all.
            if self.out.len() > 256 * 1024 || n + 1 == total {
                write_out(&mut self.io, &mut self.out).await?;
            }
        }
        Ok(if missing {
            no_code("EXPUNGEISSUED", "Some messages were expunged meanwhile.")
        } else {
            ok("FETCH completed.")
        })
    }

    async fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Done {
        let store = self.server.store.clone();
        let rev2 = self.rev2;
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return bad("No mailbox selected.");
        };
        if view.read_only {
            return no_code("READ-ONLY", "The mailbox is open read-only (EXAMINE).");
        }
        let selection = match view.resolve(set, uid, saved.as_deref()) {
            Ok(s) => s,
            Err(e) => return bad(e),
        };
        let (system, keywords) = match split_flags(flags) {
            Ok(f) => f,
            Err(d) => return d,
        };
        let change = FlagChange {
            op: match mode {
                StoreMode::Add => FlagOp::Add,
                StoreMode::Remove => FlagOp::Remove,
                StoreMode::Replace => FlagOp::Replace,
            },
            flags: system,
            keywords,
        };
        let uids: Vec<u32> = selection
            .iter()
            .map(|i| view.messages[i].uid)
            .filter(|u| !view.pending_expunge.contains(u))
            .collect();
        let result = match store
            .store_flags(view.mailbox.id, &uids, &change, unchanged_since)
            .await
        {
            Ok(r) => r,
            Err(e) => return store_failure(e),
        };
        // What this session expected to see after its own change: a
        // .SILENT store still reports what another session changed too
        // (RFC 9051 6.4.6).
        let mut surprising: HashSet<u32> = HashSet::new();
        for u in &result.updated {
            if let Some(i) = view.index_of(u.uid) {
                let m = &mut view.messages[i];
                let expected = change.apply(m.flags, &m.keywords);
                if expected != (u.flags, u.keywords.clone()) {
                    surprising.insert(u.uid);
                }
                m.flags = u.flags;
                m.keywords = u.keywords.clone();
                m.modseq = u.modseq;
            }
        }
        let refused: HashSet<u32> = result.refused.iter().copied().collect();
        for u in &uids {
            if refused.contains(u) || (silent && !surprising.contains(u)) {
                continue;
            }
            if let Some(i) = view.index_of(*u) {
                let m = &view.messages[i];
                let mut line = format!("* {} FETCH (", i + 1).into_bytes();
                if uid {
                    line.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
                }
                line.extend_from_slice(b"FLAGS ");
                response::flag_list(
                    &mut line,
                    fetch::flags(m, !rev2 && view.recent.contains(&m.uid)),
                );
                line.extend_from_slice(b")\r\n");
                self.out.extend_from_slice(&line);
            }
        }
        if result.refused.is_empty() {
            ok("STORE completed.")
        } else {
            let refused: Vec<u32> = if uid {
                result.refused.clone()
            } else {
                result
                    .refused
                    .iter()
                    .filter_map(|u| view.index_of(*u).map(|i| i as u32 + 1))
                    .collect()
            };
            ok_code(
                format!("MODIFIED {}", uid_set(&refused)),
                "Some messages changed meanwhile.",
            )
        }
    }

    async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        arg: &MailboxArg,
        is_move: bool,
    ) -> Done {
        let target = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) if d.code.as_deref() == Some("NONEXISTENT") => {
                return no_code("TRYCREATE", "No such mailbox; create it first.");
            }
            Err(d) => return d,
        };
        let store = self.server.store.clone();
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return bad("No mailbox selected.");
        };
        if is_move && view.read_only {
            return no_code("READ-ONLY", "The mailbox is open read-only (EXAMINE).");
        }
        let indexes = match view.resolve(set, uid, saved.as_deref()) {
            Ok(i) => i,
            Err(e) => return bad(e),
        };
        let uids: Vec<u32> = indexes.iter().map(|i| view.messages[i].uid).collect();
        // The store records any spam training the copy or move implies,
        // in its own transaction.
        let result = if is_move {
            store.move_messages(view.mailbox.id, &uids, target.id).await
        } else {
            store.copy_messages(view.mailbox.id, &uids, target.id).await
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return store_failure(e),
        };
        let (src, dst): (Vec<u32>, Vec<u32>) = result.pairs.iter().copied().unzip();
        let code = if src.is_empty() {
            None
        } else {
            Some(format!(
                "COPYUID {} {} {}",
                result.uidvalidity,
                uid_set(&src),
                uid_set(&dst)
            ))
        };
        if is_move {
            if let Some(code) = &code {
                self.out
                    .extend_from_slice(format!("* OK [{code}] Moved.\r\n").as_bytes());
            }
            for seq in view.remove(&src) {
                self.out
                    .extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
            }
            return ok("MOVE completed.");
        }
        match code {
            Some(c) => ok_code(c, "COPY completed."),
            None => ok("COPY completed."),
        }
    }
}

/// SASL challenges as RFC 9051 6.2.2 frames them: `+ base64`, answered by
/// one line.
impl SaslWire for Session {
    async fn challenge(&mut self, challenge: &str) -> std::io::Result<Vec<u8>> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no SASL response");
        self.line(&format!("+ {challenge}"));
        write_out(&mut self.io, &mut self.out)
            .await
            .map_err(std::io::Error::other)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stream"))?;
        let mut line = Vec::new();
        tokio::time::timeout(PREAUTH_TIMEOUT, io.line(&mut line))
            .await
            .map_err(|_| timed_out())?
            .map_err(std::io::Error::other)?;
        Ok(line)
    }
}

/// Sends what is buffered in `out`. A free function, so it can run while a
/// caller holds a borrow of another part of the session.
async fn write_out(io: &mut Option<LineReader<Stream>>, out: &mut Vec<u8>) -> Result<(), Error> {
    Ok(door::conn::send_buffered(io, out, WRITE_TIMEOUT).await?)
}

/// Messages whose bodies FETCH reads in one go: up to 64, and no more
/// than 4 MiB together (always at least the next one).
const BODY_BATCH: usize = 64;
const BODY_BATCH_BYTES: u64 = 4 << 20;

/// The blobs of the next batch of `upcoming` (indexes into `messages`),
/// one per message: `None` where its entry is gone from the store.
fn body_batch(
    messages: &[Entry],
    details: &HashMap<u32, store::MessageMeta>,
    upcoming: &[usize],
) -> Vec<Option<store::BlobHash>> {
    let mut bytes = 0;
    let mut batch = Vec::new();
    for &i in upcoming.iter().take(BODY_BATCH) {
        let d = details.get(&messages[i].uid);
        bytes += d.map_or(0, |d| d.size);
        if !batch.is_empty() && bytes > BODY_BATCH_BYTES {
            break;
        }
        batch.push(d.map(|d| d.blob.clone()));
    }
    batch
}

/// System flags and keywords of a STORE or APPEND list.
fn split_flags(list: &[String]) -> Result<(Flags, Vec<String>), Done> {
    let mut flags = Flags::empty();
    let mut keywords = Vec::new();
    for f in list {
        if let Some(rest) = f.strip_prefix('\\') {
            if rest.eq_ignore_ascii_case("Recent") {
                continue; // RFC 9051 2.3.2: not settable; ignored.
            }
            match Flags::parse(f) {
                Some(flag) => flags.insert(flag),
                None => return Err(bad(format!("{f} is not a flag that can be set."))),
            }
        } else if !keywords.iter().any(|k: &String| k.eq_ignore_ascii_case(f)) {
            keywords.push(f.clone());
        }
    }
    Ok((flags, keywords))
}

/// `1:3,5,7:9` from sorted or unsorted numbers.
pub fn uid_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The tag of a command line, for answers to lines that did not parse.
fn tag_of(line: &[u8]) -> String {
    let tag = line.split(|&b| b == b' ').next().unwrap_or_default();
    if tag.is_empty() || tag.len() > 64 || !tag.iter().all(|b| b.is_ascii_graphic()) {
        "*".to_string()
    } else {
        String::from_utf8_lossy(tag).into_owned()
    }
}
