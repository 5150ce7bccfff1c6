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
    AUTH_TIMEOUT, HANDSHAKE_TIMEOUT, IDLE_KEEPALIVE, MAX_APPEND_TOTAL, MAX_LINE, MAX_SMALL_LITERAL,
    PREAUTH_TIMEOUT, Server, list, search,
};

mod auth;
mod capability;
mod catenate;
mod context;
mod mailboxes;
mod messages;
mod notify;
mod qresync;
mod quota;
mod sorting;
mod updates;

type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Session {
    server: Arc<Server>,
    peer: SocketAddr,
    io: Option<LineReader<Stream>>,
    /// Server shutdown, and once logged in, the account's removal.
    stop: door::Stop,
    out: Vec<u8>,
    account: Option<Account>,
    _user_slot: Option<ConnectionGuard>,
    selected: Option<View>,
    feed: Option<broadcast::Receiver<store::Change>>,
    /// What the client turned on with ENABLE, or a CONDSTORE-enabling
    /// command did (see `capability.rs`).
    enabled: capability::Enabled,
    /// SEARCHRES result (RFC 5182), as UIDs.
    saved: Option<Vec<u32>>,
    /// The memory for messages in flight the command being run holds (an
    /// APPEND's messages), given back when it is done.
    held: Option<door::Held>,
    /// Searches kept up to date (RFC 5267 CONTEXT=SEARCH).
    live: Vec<context::Live>,
    /// What NOTIFY watches (RFC 5465), when it is on.
    notify: Option<notify::Watch>,
    tls: bool,
    logout: bool,
    /// When the connection opened: the login deadline counts from here.
    started: std::time::Instant,
}

/// The tagged answer of a command.
struct Done {
    status: &'static str,
    code: Option<String>,
    text: String,
}

/// Why an APPEND is refused while the server holds as many messages in
/// memory as it may ([`door::InFlight`]).
const IN_FLIGHT_FULL: &str =
    "The server is receiving too many messages at once; nothing was stored, try again in a moment.";

/// The untagged BYE that ends a session the server stops (RFC 9051 7.1.5).
fn bye(why: door::Stopped) -> &'static str {
    match why {
        door::Stopped::Server => "* BYE [UNAVAILABLE] The server is shutting down.",
        door::Stopped::AccountRemoved => "* BYE This account was removed from the server.",
    }
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
        E::DefaultMailbox(name) => no_code(
            "CANNOT",
            format!("{name} is a default mailbox Satchel files mail into; it stays."),
        ),
        E::RenameIntoItself => no_code("CANNOT", "A mailbox cannot be moved under itself."),
        E::TooLarge => no_code(
            "TOOBIG",
            format!("Messages are limited to {MAX_MESSAGE_SIZE} bytes."),
        ),
        E::EmptyMessage => no("An empty message cannot be stored."),
        // Not the client's fault and not a bug: nothing was stored, and
        // the same command works once space is back.
        E::NoSpace(what) => {
            tracing::error!("imap: the disk is full: {what}");
            no_code(
                "UNAVAILABLE",
                "The server's disk is full; nothing was stored. Try again later.",
            )
        }
        // RFC 9208 4.3: nothing of the command was done.
        E::OverQuota(_, why) => no_code(
            "OVERQUOTA",
            format!("The mailbox is full ({why}); delete or expunge some mail first."),
        ),
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

impl Updates {
    /// After FETCH, STORE, SEARCH, SORT or THREAD: their UID forms may
    /// carry expunges, the others may not (RFC 9051 7.5.1).
    fn after(uid: bool) -> Updates {
        if uid {
            Updates::All
        } else {
            Updates::NoExpunge
        }
    }
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
            tls,
            server,
            peer,
            io: Some(LineReader::with_deadline(stream, MAX_LINE, line_deadline)),
            stop: door::Stop::new(shutdown),
            // Grows with the first answers; an idle session keeps little.
            out: Vec::new(),
            account: None,
            _user_slot: None,
            selected: None,
            feed: None,
            enabled: capability::Enabled::default(),
            saved: None,
            held: None,
            live: Vec::new(),
            notify: None,
            logout: false,
            started: std::time::Instant::now(),
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
        write_out(
            &mut self.io,
            &mut self.out,
            self.server.settings.deadlines.write,
        )
        .await?;
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
        while !self.logout {
            // A copy, as next_command borrows the session; taken anew each
            // time since logging in adds the account's removal to it.
            let mut stop = self.stop.clone();
            let logged_in = self.account.is_some();
            let idle = if logged_in {
                AUTH_TIMEOUT
            } else {
                PREAUTH_TIMEOUT
            };
            let deadlines = self.server.settings.deadlines;
            let (timeout, login_due) = deadlines.wait_limit(idle, self.started, logged_in);
            let read = match wait(self.next_command(&mut line), timeout, &mut stop).await {
                Wait::Ready(r) => r,
                Wait::Stopped(why) => {
                    self.line(bye(why));
                    self.flush().await?;
                    return Ok(());
                }
                Wait::Idle if login_due => {
                    self.line(&format!(
                        "* BYE Log in within {} seconds of connecting.",
                        deadlines.login.as_secs()
                    ));
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
            drop(command);
            self.held = None;
            self.flush().await?;
        }
        Ok(())
    }

    /// The next command; with NOTIFY on, changes are told while waiting
    /// for it (RFC 5465 3).
    async fn next_command(&mut self, line: &mut Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        if self.notify.is_some() && self.account.is_some() {
            self.wait_notifying().await?;
        }
        self.read_command(line).await
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
        // Only a logged-in APPEND may send message-sized literals, each up
        // to one message and a MULTIAPPEND's together up to
        // MAX_APPEND_TOTAL; anything else (and anyone not logged in) gets
        // small ones, in total too.
        let append = name == "APPEND" && self.account.is_some();
        let (literal_limit, total_limit) = if append {
            (MAX_MESSAGE_SIZE, MAX_APPEND_TOTAL)
        } else {
            (MAX_SMALL_LITERAL, MAX_SMALL_LITERAL)
        };
        let mut command = line.clone();
        let mut literal_total: u64 = 0;
        // An APPEND's messages take their share of the memory for messages
        // in flight, until the command is done.
        let mut held = self.server.settings.in_flight.hold();
        // Set once a LITERAL+ message found no room: the rest of the
        // command is read and dropped, then refused.
        let mut busy = false;
        // Literal bytes in `command`, to tell its text's length.
        let mut kept: usize = 0;
        while let Some(lit) = literal_at_end(line) {
            literal_total = literal_total.saturating_add(lit.size);
            let over = if lit.size > literal_limit {
                Some(format!(
                    "Literal of {} bytes is over the limit of {literal_limit} bytes.",
                    lit.size
                ))
            } else if literal_total > total_limit {
                Some(format!(
                    "The command's literals come to {literal_total} bytes, over the limit of \
                     {total_limit} bytes together; send fewer messages at once."
                ))
            } else {
                None
            };
            if let Some(why) = over {
                let what = format!("[TOOBIG] {why}");
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
            let room = !busy && (!append || held.grow_to(literal_total));
            if !room && !lit.non_sync {
                self.line(&format!("{tag} NO [UNAVAILABLE] {}", IN_FLIGHT_FULL));
                self.flush().await?;
                return Ok(None);
            }
            if !lit.non_sync {
                self.line("+ Ready for literal data");
                self.flush().await?;
            }
            if room {
                command.extend_from_slice(b"\r\n");
                self.io()?.exact(lit.size as usize, &mut command).await?;
                kept += lit.size as usize;
            } else {
                // Within the per-message limit, so bounded: read to stay
                // in step with the client.
                busy = true;
                self.io()?.skip(lit.size).await?;
            }
            if let Some(done) = self.read_line(line, Some(&tag)).await? {
                return Ok(done);
            }
            if command.len() - kept + line.len() > MAX_LINE {
                self.line(&format!(
                    "{tag} BAD [TOOBIG] Command longer than {MAX_LINE} bytes."
                ));
                self.flush().await?;
                return Ok(None);
            }
            command.extend_from_slice(line);
        }
        if busy {
            self.line(&format!("{tag} NO [UNAVAILABLE] {}", IN_FLIGHT_FULL));
            self.flush().await?;
            return Ok(None);
        }
        self.held = (held.bytes() > 0).then_some(held);
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
            Err(LineError::TooSlow(_)) => {
                self.line("* BYE A line took too long to arrive.");
                self.flush().await?;
                self.logout = true;
                Ok(Some(None))
            }
            Err(e) => Err(e.into()),
        }
    }
}

// Commands.
impl Session {
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
                | C::Sort { .. }
                | C::Thread { .. }
                | C::Fetch { .. }
                | C::Store { .. }
                | C::Copy { .. }
                | C::Move { .. }
                | C::CancelUpdate(_)
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
                C::Compress(mechanism) => return self.compress(&tag, &mechanism).await,
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
                C::GetQuota(root) => (self.get_quota(&root).await, Updates::All),
                C::GetQuotaRoot(mailbox) => (self.get_quota_root(&mailbox).await, Updates::All),
                C::SetQuota { .. } => (
                    no_code(
                        "NOPERM",
                        "Quotas are set by the server's admin (satchel user quota, or the admin pages).",
                    ),
                    Updates::None,
                ),
                C::Namespace => {
                    self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                    (ok("NAMESPACE completed."), Updates::All)
                }
                C::Select {
                    qresync: Some(_), ..
                } if !self.qresync() => (
                    bad("ENABLE QRESYNC before SELECT with QRESYNC (RFC 7162 3.2.5)."),
                    Updates::None,
                ),
                C::Select {
                    mailbox,
                    read_only,
                    condstore,
                    qresync,
                } => {
                    // RFC 7162 3.1.8: SELECT (CONDSTORE) turns it on.
                    if condstore {
                        self.enabled.insert(capability::Extension::Condstore);
                    }
                    let done = self.select(&mailbox, read_only, qresync.as_ref()).await?;
                    (done, Updates::None)
                }
                C::Create {
                    mailbox,
                    special_use,
                } => (self.create(&mailbox, &special_use).await, Updates::All),
                C::Delete(mailbox) => (self.delete(&mailbox).await, Updates::All),
                C::Rename { from, to } => (self.rename(&from, &to).await, Updates::All),
                C::Subscribe(mailbox) => (self.subscribe(&mailbox, true).await, Updates::All),
                C::Unsubscribe(mailbox) => (self.subscribe(&mailbox, false).await, Updates::All),
                C::List(l) => (self.list(&l).await, Updates::All),
                C::Status { mailbox, items } => {
                    if items.contains(&StatusItem::HighestModSeq) {
                        self.enabled.insert(capability::Extension::Condstore);
                    }
                    (self.status(&mailbox, &items).await, Updates::All)
                }
                C::Append { mailbox, messages } => {
                    (self.append(&mailbox, messages).await, Updates::All)
                }
                C::Idle => return self.idle(&tag).await,
                C::Close => (self.close(true).await, Updates::None),
                C::Unselect => (self.close(false).await, Updates::None),
                C::CancelUpdate(tags) => (self.cancel_update(&tags), Updates::All),
                C::Notify(set) => (self.notify(set).await, Updates::All),
                C::Expunge { uids } => (self.expunge(uids.as_ref()).await?, Updates::All),
                C::Search {
                    uid,
                    charset,
                    ret,
                    key,
                } => {
                    if uses_modseq(&key) {
                        self.enabled.insert(capability::Extension::Condstore);
                    }
                    let done = self
                        .search(&tag, uid, charset.as_deref(), ret.as_deref(), &key)
                        .await;
                    (done, Updates::after(uid))
                }
                C::Sort {
                    uid,
                    ret,
                    criteria,
                    charset,
                    key,
                } => {
                    let done = self
                        .sort(&tag, uid, ret.as_deref(), &criteria, &charset, &key)
                        .await;
                    (done, Updates::after(uid))
                }
                C::Thread {
                    uid,
                    algorithm,
                    charset,
                    key,
                } => {
                    let done = self.thread(uid, algorithm, &charset, &key).await;
                    (done, Updates::after(uid))
                }
                C::Fetch { vanished: true, .. } if !self.qresync() => (
                    bad("ENABLE QRESYNC before UID FETCH with VANISHED (RFC 7162 3.2.6)."),
                    Updates::None,
                ),
                C::Fetch {
                    uid,
                    set,
                    items,
                    changed_since,
                    vanished,
                } => {
                    if items.contains(&FetchAttr::ModSeq) {
                        self.enabled.insert(capability::Extension::Condstore);
                    }
                    if vanished && let Some(since) = changed_since {
                        self.vanished_lines(&set, since).await?;
                    }
                    let done = self.fetch(uid, &set, &items, changed_since).await?;
                    (done, Updates::after(uid))
                }
                C::Store {
                    uid,
                    set,
                    mode,
                    silent,
                    flags,
                    unchanged_since,
                } => {
                    if unchanged_since.is_some() {
                        self.enabled.insert(capability::Extension::Condstore);
                    }
                    let done = self
                        .store(uid, &set, mode, silent, &flags, unchanged_since)
                        .await;
                    (done, Updates::after(uid))
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
}

/// Sends what is buffered in `out`. A free function, so it can run while a
/// caller holds a borrow of another part of the session.
async fn write_out(
    io: &mut Option<LineReader<Stream>>,
    out: &mut Vec<u8>,
    deadline: std::time::Duration,
) -> Result<(), Error> {
    Ok(door::conn::send_buffered(io, out, deadline).await?)
}

/// Whether a search names a MODSEQ (RFC 7162 3.1.5), anywhere in it.
pub(super) fn uses_modseq(key: &SearchKey) -> bool {
    search::any(key, &|k| matches!(k, SearchKey::ModSeq(_)))
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
