//! One ManageSieve session: capabilities, STARTTLS, AUTHENTICATE PLAIN,
//! then the script commands (RFC 5804 2).

use std::net::SocketAddr;
use std::sync::Arc;

use door::conn::{Wait, wait};
use door::login::{self, Mechanism, SaslError, SaslWire};
use door::{LineError, LineReader, Stream};
use store::Account;
use tokio::sync::watch;

use crate::{IDLE_TIMEOUT, MAX_LINE, MAX_SCRIPTS, Server};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Lines (a literal ends each but the last) one command may span.
const MAX_COMMAND_LINES: usize = 16;
/// Bytes of literals a command may carry before login (a SASL response),
/// and after (a script and its name).
const BUDGET_ANONYMOUS: usize = 8 * 1024;
const BUDGET_USER: usize = sieve::MAX_SCRIPT_SIZE + 8 * 1024;

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
}

/// A command line that could not be read as one.
enum Bad {
    /// Answer NO with this text and go on.
    No(String),
    /// A line was started and not finished in time: say BYE and close.
    TooSlow,
}

pub struct Session {
    server: Arc<Server>,
    peer: SocketAddr,
    io: Option<LineReader<Stream>>,
    /// Server shutdown, and once logged in, the account's removal.
    stop: door::Stop,
    out: Vec<u8>,
    tls: bool,
    account: Option<Account>,
    logout: bool,
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
        let line_deadline = server.settings.deadlines.line;
        Session {
            server,
            peer,
            io: Some(LineReader::with_deadline(stream, MAX_LINE, line_deadline)),
            stop: door::Stop::new(shutdown),
            out: Vec::with_capacity(4096),
            tls,
            account: None,
            logout: false,
            started: std::time::Instant::now(),
        }
    }

    pub async fn run(mut self) -> Result<(), Error> {
        self.capabilities();
        self.ok("Satchel ManageSieve ready.");
        self.flush().await?;
        while !self.logout {
            let read = {
                let io = self.io.as_mut().ok_or("no stream")?;
                let budget = if self.account.is_some() {
                    BUDGET_USER
                } else {
                    BUDGET_ANONYMOUS
                };
                let deadlines = self.server.settings.deadlines;
                let logged_in = self.account.is_some();
                let (limit, login_due) =
                    deadlines.wait_limit(IDLE_TIMEOUT, self.started, logged_in);
                match wait(read_command(io, budget), limit, &mut self.stop).await {
                    Wait::Ready(r) => r,
                    Wait::Stopped(why) => {
                        self.line(match why {
                            door::Stopped::Server => {
                                "BYE (TRYLATER) \"The server is shutting down.\""
                            }
                            door::Stopped::AccountRemoved => {
                                "BYE \"This account was removed from the server.\""
                            }
                        });
                        self.flush().await?;
                        return Ok(());
                    }
                    Wait::Idle if login_due => {
                        self.line(&format!(
                            "BYE \"Log in within {} seconds of connecting.\"",
                            deadlines.login.as_secs()
                        ));
                        self.flush().await?;
                        return Ok(());
                    }
                    Wait::Idle => {
                        self.line("BYE \"Idle for too long.\"");
                        self.flush().await?;
                        return Ok(());
                    }
                }
            };
            match read? {
                Ok(args) => self.command(args).await?,
                Err(Bad::No(why)) => self.no(None, &why),
                Err(Bad::TooSlow) => {
                    self.line("BYE \"A line took too long to arrive.\"");
                    self.flush().await?;
                    return Ok(());
                }
            }
            self.flush().await?;
        }
        Ok(())
    }

    async fn command(&mut self, args: Vec<Arg>) -> Result<(), Error> {
        let Some(Arg::Atom(name)) = args.first() else {
            self.no(None, "A command starts with its name, such as CAPABILITY.");
            return Ok(());
        };
        let name = name.to_ascii_uppercase();
        let rest = &args[1..];
        let logged_in = self.account.is_some();
        match (name.as_str(), logged_in) {
            ("CAPABILITY", _) => {
                self.capabilities();
                self.ok("Capability completed.");
            }
            ("LOGOUT", _) => {
                self.ok("Bye.");
                self.logout = true;
            }
            ("NOOP", _) => match rest {
                [] => self.ok("Done."),
                [Arg::Str(tag)] => {
                    let tag = quoted(tag);
                    self.line(&format!("OK (TAG {tag}) \"Done.\""));
                }
                _ => self.no(None, "NOOP takes at most one string."),
            },
            ("STARTTLS", false) => return self.starttls().await,
            ("AUTHENTICATE", false) => self.authenticate(rest).await?,
            ("STARTTLS" | "AUTHENTICATE", true) => self.no(None, "Already logged in."),
            (
                "HAVESPACE" | "PUTSCRIPT" | "LISTSCRIPTS" | "SETACTIVE" | "GETSCRIPT"
                | "DELETESCRIPT" | "RENAMESCRIPT" | "CHECKSCRIPT",
                false,
            ) => self.no(None, "Log in first (AUTHENTICATE \"PLAIN\")."),
            ("HAVESPACE", true) => self.havespace(rest).await?,
            ("PUTSCRIPT", true) => self.putscript(rest).await?,
            ("CHECKSCRIPT", true) => self.checkscript(rest),
            ("LISTSCRIPTS", true) => self.listscripts().await?,
            ("SETACTIVE", true) => self.setactive(rest).await?,
            ("GETSCRIPT", true) => self.getscript(rest).await?,
            ("DELETESCRIPT", true) => self.deletescript(rest).await?,
            ("RENAMESCRIPT", true) => self.renamescript(rest).await?,
            (other, _) => {
                let other: String = other.chars().take(20).collect();
                self.no(None, &format!("Unknown command {other}."));
            }
        }
        Ok(())
    }

    fn capabilities(&mut self) {
        self.line("\"IMPLEMENTATION\" \"Satchel\"");
        let sasl = if self.login_allowed() {
            Mechanism::ALL.map(Mechanism::name).join(" ")
        } else {
            String::new()
        };
        self.line(&format!("\"SASL\" \"{sasl}\""));
        self.line(&format!("\"SIEVE\" \"{}\"", sieve::EXTENSIONS.join(" ")));
        if !self.tls && self.server.tls.is_some() {
            self.line("\"STARTTLS\"");
        }
        self.line(&format!("\"MAXREDIRECTS\" \"{}\"", sieve::MAX_REDIRECTS));
        self.line("\"VERSION\" \"1.0\"");
    }

    /// Passwords in plain text only over TLS, from loopback, or where the
    /// config allows them everywhere.
    fn login_allowed(&self) -> bool {
        login::plaintext_allowed(
            self.tls,
            self.peer.ip(),
            self.server.settings.plaintext_anywhere,
        )
    }

    async fn starttls(&mut self) -> Result<(), Error> {
        let Some(config) = self.server.tls.clone().filter(|_| !self.tls) else {
            self.no(None, "STARTTLS is not available now.");
            return Ok(());
        };
        self.ok("Begin TLS negotiation now.");
        self.flush().await?;
        // Anything sent in plain text after STARTTLS is dropped.
        let io = self.io.take().ok_or("no stream")?;
        let stream = tokio::time::timeout(
            door::conn::HANDSHAKE_TIMEOUT,
            io.into_inner().into_tls(config),
        )
        .await
        .map_err(|_| "TLS handshake timed out")??;
        self.io = Some(LineReader::with_deadline(
            stream,
            MAX_LINE,
            self.server.settings.deadlines.line,
        ));
        self.tls = true;
        // RFC 5804 2.2: the capabilities again, as they may have changed.
        self.capabilities();
        self.ok("TLS is on.");
        Ok(())
    }

    async fn authenticate(&mut self, args: &[Arg]) -> Result<(), Error> {
        let (mechanism, initial) = match args {
            [Arg::Str(m)] => (m, None),
            [Arg::Str(m), Arg::Str(i)] => (m, Some(i.clone())),
            _ => {
                self.no(
                    None,
                    "AUTHENTICATE takes a mechanism name and an optional initial response.",
                );
                return Ok(());
            }
        };
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            self.no(None, "Unsupported mechanism; use PLAIN or LOGIN.");
            return Ok(());
        };
        if !self.login_allowed() {
            self.no(
                Some("ENCRYPT-NEEDED"),
                "Authentication needs TLS: use STARTTLS first.",
            );
            return Ok(());
        }
        let credentials = match login::exchange(self, mechanism, initial.as_deref()).await? {
            Ok(c) => c,
            Err(SaslError::Malformed) => {
                login::failed(&*self.server.store, &self.server.throttle, self.peer.ip()).await;
                self.no(None, "Authentication failed.");
                return Ok(());
            }
            Err(e) => {
                self.no(None, &e.to_string());
                return Ok(());
            }
        };
        let server = self.server.clone();
        let checked = login::check_password(
            &*server.store,
            &server.throttle,
            "managesieve",
            self.peer.ip(),
            &credentials.user,
            &credentials.password,
        )
        .await?;
        match checked {
            Some(account) => {
                self.stop
                    .logged_in(&self.server.settings.sessions, account.id);
                self.account = Some(account);
                self.ok("Logged in.");
            }
            None => self.no(None, "Authentication failed."),
        }
        Ok(())
    }

    fn account_id(&self) -> Result<store::AccountId, Error> {
        Ok(self.account.as_ref().ok_or("not logged in")?.id)
    }

    async fn havespace(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(name), Arg::Atom(size)] = args else {
            self.no(None, "HAVESPACE takes a script name and a size.");
            return Ok(());
        };
        let Ok(size) = size.parse::<u64>() else {
            self.no(None, "The size must be a number.");
            return Ok(());
        };
        let name = String::from_utf8_lossy(name).into_owned();
        if size > sieve::MAX_SCRIPT_SIZE as u64 {
            self.no(
                Some("QUOTA/MAXSIZE"),
                &format!("Scripts may be at most {} bytes.", sieve::MAX_SCRIPT_SIZE),
            );
            return Ok(());
        }
        if !self.room_for(&name).await? {
            return Ok(());
        }
        self.ok("There is room.");
        Ok(())
    }

    /// Whether the account may store a script by this name (replacing one
    /// is always allowed); says NO itself when not.
    async fn room_for(&mut self, name: &str) -> Result<bool, Error> {
        let scripts = self.server.store.sieve_scripts(self.account_id()?).await?;
        if scripts.len() >= MAX_SCRIPTS && !scripts.iter().any(|s| s.name == name) {
            self.no(
                Some("QUOTA/MAXSCRIPTS"),
                &format!("At most {MAX_SCRIPTS} scripts; delete one first."),
            );
            return Ok(false);
        }
        Ok(true)
    }

    async fn putscript(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(name), Arg::Str(text)] = args else {
            self.no(None, "PUTSCRIPT takes a script name and the script.");
            return Ok(());
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(text) = self.compiles(text) else {
            return Ok(());
        };
        if !self.room_for(&name).await? {
            return Ok(());
        }
        match self
            .server
            .store
            .put_sieve_script(self.account_id()?, &name, &text)
            .await
        {
            Ok(()) => self.ok("Stored."),
            Err(e @ store::Error::InvalidScriptName(..)) => self.no(None, &e.to_string()),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn checkscript(&mut self, args: &[Arg]) {
        let [Arg::Str(text)] = args else {
            self.no(None, "CHECKSCRIPT takes the script.");
            return;
        };
        if self.compiles(text).is_some() {
            self.ok("The script is valid.");
        }
    }

    /// The script's text if it compiles; otherwise says NO with the
    /// compiler's line, column and message.
    fn compiles(&mut self, text: &[u8]) -> Option<String> {
        let Ok(text) = String::from_utf8(text.to_vec()) else {
            self.no(None, "The script is not UTF-8 text.");
            return None;
        };
        if text.len() > sieve::MAX_SCRIPT_SIZE {
            self.no(
                Some("QUOTA/MAXSIZE"),
                &format!("Scripts may be at most {} bytes.", sieve::MAX_SCRIPT_SIZE),
            );
            return None;
        }
        match sieve::Script::compile(&text) {
            Ok(_) => Some(text),
            Err(e) => {
                self.no(None, &e.to_string());
                None
            }
        }
    }

    async fn listscripts(&mut self) -> Result<(), Error> {
        for s in self.server.store.sieve_scripts(self.account_id()?).await? {
            let name = quoted(s.name.as_bytes());
            if s.active {
                self.line(&format!("{name} ACTIVE"));
            } else {
                self.line(&name);
            }
        }
        self.ok("Listscripts completed.");
        Ok(())
    }

    async fn setactive(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(name)] = args else {
            self.no(None, "SETACTIVE takes a script name (\"\" for none).");
            return Ok(());
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let which = (!name.is_empty()).then_some(name.as_str());
        match self
            .server
            .store
            .activate_sieve_script(self.account_id()?, which)
            .await
        {
            Ok(()) => self.ok("Active script set."),
            Err(store::Error::NoScript(_)) => {
                self.no(Some("NONEXISTENT"), "There is no script by that name.")
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn getscript(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(name)] = args else {
            self.no(None, "GETSCRIPT takes a script name.");
            return Ok(());
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match self
            .server
            .store
            .sieve_script(self.account_id()?, &name)
            .await?
        {
            Some(text) => {
                self.line(&format!("{{{}}}", text.len()));
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.ok("Getscript completed.");
            }
            None => self.no(Some("NONEXISTENT"), "There is no script by that name."),
        }
        Ok(())
    }

    async fn deletescript(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(name)] = args else {
            self.no(None, "DELETESCRIPT takes a script name.");
            return Ok(());
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match self
            .server
            .store
            .delete_sieve_script(self.account_id()?, &name)
            .await
        {
            Ok(()) => self.ok("Deleted."),
            Err(store::Error::NoScript(_)) => {
                self.no(Some("NONEXISTENT"), "There is no script by that name.")
            }
            Err(store::Error::ScriptActive(_)) => self.no(
                Some("ACTIVE"),
                "That script is active; activate another (or none) first.",
            ),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn renamescript(&mut self, args: &[Arg]) -> Result<(), Error> {
        let [Arg::Str(from), Arg::Str(to)] = args else {
            self.no(None, "RENAMESCRIPT takes the old and the new name.");
            return Ok(());
        };
        let (from, to) = (
            String::from_utf8_lossy(from).into_owned(),
            String::from_utf8_lossy(to).into_owned(),
        );
        match self
            .server
            .store
            .rename_sieve_script(self.account_id()?, &from, &to)
            .await
        {
            Ok(()) => self.ok("Renamed."),
            Err(store::Error::NoScript(_)) => {
                self.no(Some("NONEXISTENT"), "There is no script by that name.")
            }
            Err(store::Error::ScriptExists(_)) => self.no(
                Some("ALREADYEXISTS"),
                "A script by the new name exists already.",
            ),
            Err(e @ store::Error::InvalidScriptName(..)) => self.no(None, &e.to_string()),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn line(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn ok(&mut self, text: &str) {
        let line = format!("OK {}", quoted(text.as_bytes()));
        self.line(&line);
    }

    fn no(&mut self, code: Option<&str>, text: &str) {
        let line = match code {
            Some(c) => format!("NO ({c}) {}", quoted(text.as_bytes())),
            None => format!("NO {}", quoted(text.as_bytes())),
        };
        self.line(&line);
    }

    async fn flush(&mut self) -> Result<(), Error> {
        Ok(door::conn::send_buffered(
            &mut self.io,
            &mut self.out,
            self.server.settings.deadlines.write,
        )
        .await?)
    }
}

/// A string as ManageSieve writes it: quoted, or as a literal when it
/// holds line breaks or is long (RFC 5804 4).
fn quoted(s: &[u8]) -> String {
    let text = String::from_utf8_lossy(s);
    if text.len() > 1024 || text.contains(['\r', '\n', '\0']) {
        return format!("{{{}}}\r\n{text}", text.len());
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reads one command: atoms, quoted strings and literals (`{N+}` or
/// `{N}` at a line's end, then N octets), to the end of its last line.
/// A literal larger than a script may be is read and dropped.
/// SASL challenges as RFC 5804 2.1 frames them: a string, answered by a
/// string (`"*"` cancels). Anything else from the client cancels too.
impl SaslWire for Session {
    async fn challenge(&mut self, challenge: &str) -> std::io::Result<Vec<u8>> {
        self.line(&format!("\"{challenge}\""));
        self.flush().await.map_err(std::io::Error::other)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stream"))?;
        let reply = tokio::time::timeout(
            door::conn::HANDSHAKE_TIMEOUT,
            read_command(io, BUDGET_ANONYMOUS),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no SASL response"))?
        .map_err(std::io::Error::other)?;
        Ok(match reply {
            Ok(v) => match v.as_slice() {
                [Arg::Str(r)] => r.clone(),
                _ => b"*".to_vec(),
            },
            Err(_) => b"*".to_vec(),
        })
    }
}

async fn read_command(
    io: &mut LineReader<Stream>,
    budget: usize,
) -> Result<Result<Vec<Arg>, Bad>, Error> {
    let mut args = Vec::new();
    let mut refused: Option<String> = None;
    // Literals kept for this command, in bytes; lines read for it.
    let mut kept = 0usize;
    let mut lines = 0usize;
    loop {
        lines += 1;
        if lines > MAX_COMMAND_LINES {
            return Err("a command of too many literals".into());
        }
        let mut line = Vec::new();
        match io.line(&mut line).await {
            Ok(()) => {}
            Err(LineError::TooLong { .. }) => {
                return Ok(Err(Bad::No(format!(
                    "The line is longer than {MAX_LINE} bytes."
                ))));
            }
            Err(LineError::TooSlow(_)) => return Ok(Err(Bad::TooSlow)),
            Err(e) => return Err(e.into()),
        }
        let (mut tokens, literal) = match split_line(&line) {
            Ok(t) => t,
            Err(why) => return Ok(Err(Bad::No(why))),
        };
        args.append(&mut tokens);
        let Some(n) = literal else {
            return Ok(match refused {
                Some(why) => Err(Bad::No(why)),
                None => Ok(args),
            });
        };
        if n > sieve::MAX_SCRIPT_SIZE as u64 || kept + n as usize > budget {
            io.skip(n).await?;
            refused = Some(format!(
                "A command may carry at most {} bytes of strings here.",
                budget.min(sieve::MAX_SCRIPT_SIZE)
            ));
            continue;
        }
        kept += n as usize;
        let mut bytes = Vec::new();
        io.exact(n as usize, &mut bytes).await?;
        args.push(Arg::Str(bytes));
    }
}

/// The tokens of one line, and the length of the literal that ends it.
fn split_line(line: &[u8]) -> Result<(Vec<Arg>, Option<u64>), String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' | b'\t' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err("A quoted string is not closed.".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match line.get(i + 1) {
                                Some(&c @ (b'"' | b'\\')) => s.push(c),
                                _ => {
                                    return Err(
                                        "In a quoted string only \\\" and \\\\ are escapes.".into(),
                                    );
                                }
                            }
                            i += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Arg::Str(s));
            }
            b'{' => {
                let close = line[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .map(|p| i + p)
                    .ok_or("A literal is written {N+}.")?;
                if close != line.len() - 1 {
                    return Err("A literal {N+} must end its line.".into());
                }
                let spec = &line[i + 1..close];
                let digits = spec.strip_suffix(b"+").unwrap_or(spec);
                let n = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|d| d.parse::<u64>().ok())
                    .ok_or("A literal's length must be a number, as in {12+}.")?;
                return Ok((out, Some(n)));
            }
            _ => {
                let start = i;
                while i < line.len() && !matches!(line[i], b' ' | b'\t' | b'"' | b'{') {
                    i += 1;
                }
                out.push(Arg::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
        }
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_literals() {
        let (t, lit) = split_line(b"PUTSCRIPT \"my \\\"script\\\"\" {31+}").unwrap();
        assert_eq!(
            t,
            vec![
                Arg::Atom("PUTSCRIPT".into()),
                Arg::Str(b"my \"script\"".to_vec())
            ]
        );
        assert_eq!(lit, Some(31));
        assert_eq!(split_line(b"X {5}").unwrap().1, Some(5));
        assert!(split_line(b"X \"open").is_err());
        assert!(split_line(b"X {5+} more").is_err());
        assert!(split_line(b"X {-1+}").is_err());
        assert!(split_line(b"X {99999999999999999999999+}").is_err());
        assert!(split_line(b"X \"a\\b\"").is_err());
        assert_eq!(quoted(b"a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(quoted(b"two\r\nlines"), "{10}\r\ntwo\r\nlines");
    }
}
