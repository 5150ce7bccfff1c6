//! Running a compiled script on one message: the tests are evaluated, the
//! actions collected, and the implicit keep decided (RFC 5228 2.10.2).
//! Nothing is carried out here; the caller files, flags, forwards or
//! rejects as the [`Outcome`] says.

use std::collections::HashMap;

use crate::compile::{
    AddressPart, BodyTransform, Cmd, FlagOp, Index, Modifier, Script, Test, Zone,
};
use crate::date::{self, When};
use crate::matching;
use crate::{MAX_ACTIONS, MAX_REDIRECTS, Message};

/// What the script runs with besides the message.
pub struct Context<'a> {
    /// The envelope sender (MAIL FROM), empty for the null sender.
    pub envelope_from: &'a str,
    /// The recipient this copy is for (RCPT TO).
    pub envelope_to: &'a str,
    /// Whether a mailbox exists (mailboxexists; `fileinto` into a missing
    /// one without :create falls back to INBOX at delivery).
    pub mailbox_exists: &'a dyn Fn(&str) -> bool,
    /// The spam verdict on Xeams' scale and the Junk threshold, for
    /// spamtest; None when the message was not scored.
    pub spam: Option<(i64, i64)>,
    /// Environment items (RFC 5183): "domain", "host", "name", "phase"...
    pub environment: &'a [(&'a str, &'a str)],
    /// The time now (seconds since 1970 UTC) and the server's zone
    /// (minutes east of UTC), for currentdate and dates without :zone.
    pub now: i64,
    pub zone: i32,
    /// Finds a script `include` names (RFC 6609): None when there is no
    /// such script, an error when it does not compile.
    pub include: &'a Includer<'a>,
}

/// What finds included scripts: None when there is none by that name, an
/// error when it does not compile.
pub type Includer<'a> = dyn Fn(Location, &str) -> Option<Result<Script, String>> + 'a;

/// Where an included script is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// The user's own scripts.
    Personal,
    /// The server's scripts.
    Global,
}

/// Included scripts nested deeper than this are an error (a loop, most
/// likely).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Deepest nesting of blocks a run may reach, included scripts' blocks
/// counted in.
const MAX_RUN_DEPTH: usize = 100;
/// Most include commands one run may carry out.
pub const MAX_INCLUDES: usize = 32;

/// What the script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// In order; a keep (explicit or implicit) is one of them.
    pub actions: Vec<Action>,
    /// Why the script failed part-way, if it did: then the actions are
    /// just a keep (RFC 5228 2.10.6).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store in the mailbox the message was headed for, with these flags.
    Keep {
        flags: Vec<String>,
    },
    FileInto {
        mailbox: String,
        flags: Vec<String>,
        /// Create the mailbox if it is missing (RFC 5490 :create).
        create: bool,
    },
    Redirect {
        address: String,
    },
    /// Refuse the message with this reason (RFC 5429); `extended`:
    /// ereject, at the SMTP level where possible.
    Reject {
        reason: String,
        extended: bool,
    },
    /// Nothing stored: the script discarded it.
    Discard,
    /// Send an auto-reply (RFC 5230), unless one went to `to` for the
    /// same `handle` within `days`: the caller keeps that memory. The
    /// checks on the message (lists, robots, mail not addressed to the
    /// user) are done already.
    Vacation {
        to: String,
        days: u64,
        subject: Option<String>,
        from: Option<String>,
        /// `reason` is a MIME entity (:mime), not plain text.
        mime: bool,
        handle: String,
        reason: String,
    },
}

impl Script {
    /// Runs the script on a message.
    pub fn run(&self, message: &Message<'_>, context: &Context<'_>) -> Outcome {
        Script::run_all(&[self], message, context)
    }

    /// Runs scripts one after the other as one run (a server-wide script
    /// before the user's): they share the actions, the flags and the
    /// implicit keep, and a `stop` in one ends them all.
    pub fn run_all(scripts: &[&Script], message: &Message<'_>, context: &Context<'_>) -> Outcome {
        let mut r = Run {
            message,
            context,
            actions: Vec::new(),
            implicit_keep: true,
            flags: Vec::new(),
            frames: Vec::new(),
            globals: HashMap::new(),
            captures: Vec::new(),
            redirects: 0,
            included: Vec::new(),
            depth: 0,
        };
        let mut result = Ok(Flow::Next);
        // What the scripts before the current one decided: a later script
        // that fails cannot undo it (the admin's quarantine stands).
        let mut settled: Vec<Action> = Vec::new();
        for script in scripts {
            settled = r.actions.clone();
            r.frames = vec![Frame::new(script.variables)];
            result = r.block(&script.commands);
            if !matches!(result, Ok(Flow::Next)) {
                break;
            }
        }
        match result {
            Ok(_) => {
                if r.implicit_keep {
                    let flags = r.flags.clone();
                    r.add(Action::Keep { flags }).ok();
                }
                Outcome {
                    actions: r.actions,
                    error: None,
                }
            }
            // RFC 5228 2.10.6: the failing script's actions are dropped
            // and the message is kept.
            Err(e) => {
                if !settled.iter().any(|a| matches!(a, Action::Keep { .. })) {
                    settled.push(Action::Keep { flags: Vec::new() });
                }
                Outcome {
                    actions: settled,
                    error: Some(e),
                }
            }
        }
    }
}

struct Run<'r, 'm> {
    message: &'r Message<'m>,
    context: &'r Context<'r>,
    actions: Vec<Action>,
    implicit_keep: bool,
    /// The internal flag variable of imap4flags.
    flags: Vec<String>,
    /// One per script being run: the main one, then included ones.
    frames: Vec<Frame>,
    /// Variables declared `global` (RFC 6609 3.3), shared by all scripts.
    globals: HashMap<String, String>,
    /// `${0}`..`${9}`: the last successful :matches.
    captures: Vec<String>,
    redirects: usize,
    /// Scripts included so far, for :once and the limit.
    included: Vec<(Location, String)>,
    /// Blocks being run, one within the other.
    depth: usize,
}

/// The variables of one script.
struct Frame {
    /// "variables" was required: strings are expanded.
    expand: bool,
    locals: HashMap<String, String>,
    /// Names this script declared `global`.
    declared: Vec<String>,
}

impl Frame {
    fn new(expand: bool) -> Frame {
        Frame {
            expand,
            locals: HashMap::new(),
            declared: Vec::new(),
        }
    }
}

/// Whether the script goes on after a command.
enum Flow {
    Next,
    /// `stop`: every script ends.
    Stop,
    /// `return`: the current included script ends.
    Return,
}

/// Longest value a variable holds (RFC 5229 asks for at least 4000 octets).
const MAX_VARIABLE: usize = 64 * 1024;

impl Run<'_, '_> {
    fn block(&mut self, commands: &[Cmd]) -> Result<Flow, String> {
        // Blocks within blocks within included scripts: bounded all told,
        // so that no run outgrows a worker thread's stack.
        if self.depth >= MAX_RUN_DEPTH {
            return Err(format!(
                "blocks and includes nested more than {MAX_RUN_DEPTH} deep"
            ));
        }
        self.depth += 1;
        let mut flow = Ok(Flow::Next);
        for cmd in commands {
            match self.command(cmd) {
                Ok(Flow::Next) => {}
                end => {
                    flow = end;
                    break;
                }
            }
        }
        self.depth -= 1;
        flow
    }

    /// The value of a variable, local or global.
    fn variable(&self, name: &str) -> Option<&String> {
        let name = name.to_ascii_lowercase();
        if let Some(global) = name.strip_prefix("global.") {
            return self.globals.get(global);
        }
        let frame = self.frames.last()?;
        if frame.declared.contains(&name) {
            self.globals.get(&name)
        } else {
            frame.locals.get(&name)
        }
    }

    fn set_variable(&mut self, name: &str, value: String) {
        let name = name.to_ascii_lowercase();
        if let Some(global) = name.strip_prefix("global.") {
            self.globals.insert(global.to_string(), value);
            return;
        }
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        if frame.declared.contains(&name) {
            self.globals.insert(name, value);
        } else {
            frame.locals.insert(name, value);
        }
    }

    fn include(
        &mut self,
        location: Location,
        name: &str,
        once: bool,
        optional: bool,
    ) -> Result<Flow, String> {
        let key = (location, name.to_string());
        if once && self.included.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.frames.len() > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "includes nested more than {MAX_INCLUDE_DEPTH} deep (a loop?) at {name:?}"
            ));
        }
        if self.included.len() >= MAX_INCLUDES {
            return Err(format!("more than {MAX_INCLUDES} includes"));
        }
        let script = match (self.context.include)(location, name) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                return Err(format!(
                    "the included script {name:?} does not compile: {e}"
                ));
            }
            None if optional => return Ok(Flow::Next),
            None => return Err(format!("there is no script {name:?} to include")),
        };
        self.included.push(key);
        self.frames.push(Frame::new(script.variables));
        let flow = self.block(&script.commands);
        self.frames.pop();
        match flow? {
            Flow::Stop => Ok(Flow::Stop),
            Flow::Next | Flow::Return => Ok(Flow::Next),
        }
    }

    fn command(&mut self, cmd: &Cmd) -> Result<Flow, String> {
        match cmd {
            Cmd::If(branches, otherwise) => {
                for (test, block) in branches {
                    if self.test(test) {
                        return self.block(block);
                    }
                }
                if let Some(block) = otherwise {
                    return self.block(block);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            // In the main script, return ends it as stop does (RFC 6609 3.2).
            Cmd::Return => {
                return Ok(if self.frames.len() > 1 {
                    Flow::Return
                } else {
                    Flow::Stop
                });
            }
            Cmd::Include {
                location,
                name,
                once,
                optional,
            } => {
                let name = self.expand(name);
                return self.include(*location, &name, *once, *optional);
            }
            Cmd::Global(names) => {
                let names: Vec<String> = names
                    .iter()
                    .map(|n| self.expand(n).to_ascii_lowercase())
                    .collect();
                if let Some(frame) = self.frames.last_mut() {
                    for n in names {
                        if !frame.declared.contains(&n) {
                            frame.declared.push(n);
                        }
                    }
                }
            }
            Cmd::Keep { flags } => {
                let flags = self.flag_list(flags.as_deref());
                self.implicit_keep = false;
                self.add(Action::Keep { flags })?;
            }
            Cmd::Discard => {
                self.implicit_keep = false;
                self.add(Action::Discard)?;
            }
            Cmd::FileInto {
                mailbox,
                copy,
                create,
                flags,
            } => {
                let mailbox = self.expand(mailbox);
                let flags = self.flag_list(flags.as_deref());
                if !copy {
                    self.implicit_keep = false;
                }
                self.add(Action::FileInto {
                    mailbox,
                    flags,
                    create: *create,
                })?;
            }
            Cmd::Redirect { address, copy } => {
                let address = self.expand(address);
                if !address.contains('@') || address.chars().any(char::is_whitespace) {
                    return Err(format!("redirect to {address:?}, which is not an address"));
                }
                self.redirects += 1;
                if self.redirects > MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                if !copy {
                    self.implicit_keep = false;
                }
                self.add(Action::Redirect { address })?;
            }
            Cmd::Vacation(v) => {
                if self
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Vacation { .. }))
                {
                    return Err("vacation may be used once per message".into());
                }
                let reason = self.expand(&v.reason);
                let subject = v.subject.as_ref().map(|s| self.expand(s));
                let from = v.from.as_ref().map(|s| self.expand(s));
                let addresses: Vec<String> = v.addresses.iter().map(|a| self.expand(a)).collect();
                let handle = match &v.handle {
                    Some(h) => self.expand(h),
                    // RFC 5230 4.2: the same reply is the same handle.
                    None => format!(
                        "{}\u{0}{}\u{0}{}\u{0}{}",
                        subject.as_deref().unwrap_or(""),
                        from.as_deref().unwrap_or(""),
                        v.mime,
                        reason
                    ),
                };
                if let Some(to) = self.vacation_to(&addresses, from.as_deref()) {
                    self.add(Action::Vacation {
                        to,
                        days: v.days,
                        subject,
                        from,
                        mime: v.mime,
                        handle,
                        reason,
                    })?;
                }
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.expand(reason);
                self.implicit_keep = false;
                self.add(Action::Reject {
                    reason,
                    extended: *extended,
                })?;
            }
            Cmd::Flags {
                op,
                variable,
                flags,
            } => {
                let given: Vec<String> = flags.iter().map(|f| self.expand(f)).collect();
                let current = match variable {
                    Some(v) => split_flags(&[self.variable(v).cloned().unwrap_or_default()]),
                    None => self.flags.clone(),
                };
                let new = apply_flags(*op, current, &split_flags(&given));
                match variable {
                    Some(v) => {
                        self.set_variable(v, new.join(" "));
                    }
                    None => self.flags = new,
                }
            }
            Cmd::Set {
                name,
                value,
                modifiers,
            } => {
                let mut v = self.expand(value);
                for m in modifiers.iter().rev() {
                    v = modify(*m, &v);
                }
                truncate(&mut v, MAX_VARIABLE);
                self.set_variable(name, v);
            }
        }
        Ok(Flow::Next)
    }

    /// Records an action, merging repeats (RFC 5228 2.10.3: one keep,
    /// one filing per mailbox).
    fn add(&mut self, action: Action) -> Result<(), String> {
        let conflict = |a: &Action| {
            matches!(
                a,
                Action::Keep { .. }
                    | Action::FileInto { .. }
                    | Action::Reject { .. }
                    | Action::Vacation { .. }
            )
        };
        if matches!(action, Action::Reject { .. }) && self.actions.iter().any(conflict)
            || !matches!(
                action,
                Action::Reject { .. } | Action::Redirect { .. } | Action::Discard
            ) && self
                .actions
                .iter()
                .any(|a| matches!(a, Action::Reject { .. }))
        {
            return Err("reject cannot be combined with keep, fileinto or another reject".into());
        }
        let same = self.actions.iter_mut().find(|a| match (a, &action) {
            (Action::Keep { .. }, Action::Keep { .. }) | (Action::Discard, Action::Discard) => true,
            (Action::FileInto { mailbox: x, .. }, Action::FileInto { mailbox: y, .. }) => x == y,
            (Action::Redirect { address: x }, Action::Redirect { address: y }) => {
                x.eq_ignore_ascii_case(y)
            }
            _ => false,
        });
        match same {
            // The later flags win; a later :create still creates.
            Some(Action::Keep { flags }) => {
                if let Action::Keep { flags: f } = action {
                    *flags = f;
                }
            }
            Some(Action::FileInto { flags, create, .. }) => {
                if let Action::FileInto {
                    flags: f,
                    create: c,
                    ..
                } = action
                {
                    *flags = f;
                    *create |= c;
                }
            }
            Some(_) => {}
            None => {
                if self.actions.len() >= MAX_ACTIONS {
                    return Err(format!("more than {MAX_ACTIONS} actions"));
                }
                self.actions.push(action);
            }
        }
        Ok(())
    }

    /// Whom an auto-reply goes to: the envelope sender, unless RFC 5230
    /// 4.5-4.6 says not to answer (no sender, a robot or a list, mail not
    /// addressed to the user, mail from the user).
    fn vacation_to(&self, addresses: &[String], from: Option<&str>) -> Option<String> {
        let sender = self.context.envelope_from;
        if sender.is_empty() {
            return None;
        }
        let local = sender
            .rsplit_once('@')
            .map_or(sender, |(l, _)| l)
            .to_ascii_lowercase();
        if ["mailer-daemon", "listserv", "majordomo", "postmaster"].contains(&local.as_str())
            || local.starts_with("owner-")
            || local.ends_with("-request")
            || local.ends_with("-bounces")
        {
            return None;
        }
        let m = self.message;
        if [
            "list-id",
            "list-help",
            "list-unsubscribe",
            "list-subscribe",
            "list-post",
            "list-owner",
            "list-archive",
        ]
        .iter()
        .any(|h| m.has(h))
        {
            return None;
        }
        if m.values("auto-submitted")
            .iter()
            .any(|v| !v.trim().eq_ignore_ascii_case("no"))
            || m.values("precedence")
                .iter()
                .any(|v| ["bulk", "list", "junk"].contains(&v.trim().to_ascii_lowercase().as_str()))
        {
            return None;
        }
        // The user: the recipient (without +detail), and the :addresses.
        let me = |a: &str| {
            let a = a.to_ascii_lowercase();
            let plain = |x: &str| -> String {
                let x = x.to_ascii_lowercase();
                match x.rsplit_once('@') {
                    Some((l, d)) => format!("{}@{d}", l.split_once('+').map_or(l, |(u, _)| u)),
                    None => x,
                }
            };
            plain(&a) == plain(self.context.envelope_to)
                || addresses.iter().any(|x| plain(x) == plain(&a))
                || from.is_some_and(|f| plain(addr_spec(f)) == plain(&a))
        };
        if me(sender) {
            return None;
        }
        let to_me = ["to", "cc", "bcc", "resent-to", "resent-cc"]
            .iter()
            .flat_map(|h| m.address_fields(h))
            .flatten()
            .any(|a| me(&a));
        to_me.then(|| sender.to_string())
    }

    fn flag_list(&self, given: Option<&[String]>) -> Vec<String> {
        match given {
            Some(f) => split_flags(&f.iter().map(|x| self.expand(x)).collect::<Vec<_>>()),
            None => self.flags.clone(),
        }
    }

    fn test(&mut self, test: &Test) -> bool {
        match test {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t),
            Test::AllOf(tests) => tests.iter().all(|t| self.test(t)),
            Test::AnyOf(tests) => tests.iter().any(|t| self.test(t)),
            Test::Address {
                how,
                index,
                part,
                headers,
                keys,
            } => {
                let mut values = Vec::new();
                for h in headers {
                    let h = self.expand(h).to_ascii_lowercase();
                    let fields = pick(self.message.address_fields(&h), *index);
                    values.extend(
                        fields
                            .iter()
                            .flatten()
                            .filter_map(|a| address_part(a, *part)),
                    );
                }
                self.matches(*how, &values, keys)
            }
            Test::Envelope {
                how,
                part,
                parts,
                keys,
            } => {
                let mut values = Vec::new();
                for p in parts {
                    let address = match self.expand(p).to_ascii_lowercase().as_str() {
                        "from" => self.context.envelope_from,
                        "to" => self.context.envelope_to,
                        _ => continue,
                    };
                    // The null sender has no parts but is "" as a whole.
                    if address.is_empty() {
                        if *part == AddressPart::All {
                            values.push(String::new());
                        }
                        continue;
                    }
                    values.extend(address_part(address, *part));
                }
                self.matches(*how, &values, keys)
            }
            Test::Header {
                how,
                index,
                headers,
                keys,
            } => {
                let mut values = Vec::new();
                for h in headers {
                    let h = self.expand(h).to_ascii_lowercase();
                    values.extend(pick(self.message.values(&h), *index));
                }
                self.matches(*how, &values, keys)
            }
            Test::Date {
                how,
                index,
                zone,
                header,
                part,
                keys,
            } => {
                let header = self.expand(header).to_ascii_lowercase();
                let value = match index {
                    Some(_) => pick(self.message.values(&header), *index)
                        .into_iter()
                        .next(),
                    None => self.message.values(&header).into_iter().next(),
                };
                let Some(when) = value.and_then(|v| date::parse(&header, &v)) else {
                    // No such field, or no date in it: the test is false.
                    return false;
                };
                self.date_matches(*how, self.zoned(when, *zone), part, keys)
            }
            Test::CurrentDate {
                how,
                zone,
                part,
                keys,
            } => {
                let now = When {
                    unix: self.context.now,
                    zone: self.context.zone,
                };
                self.date_matches(*how, self.zoned(now, *zone), part, keys)
            }
            Test::Exists(headers) => headers
                .iter()
                .all(|h| self.message.has(&self.expand(h).to_ascii_lowercase())),
            Test::Size { over, limit } => {
                let size = self.message.size();
                if *over { size > *limit } else { size < *limit }
            }
            Test::Body {
                how,
                transform,
                keys,
            } => {
                let values = match transform {
                    BodyTransform::Raw => vec![self.message.raw_body()],
                    BodyTransform::Text => self.message.parts(&["text".to_string()]),
                    BodyTransform::Content(types) => self.message.parts(types),
                };
                // Body matches set no match variables (RFC 5173 5).
                let keys: Vec<String> = keys.iter().map(|k| self.expand(k)).collect();
                matching::any(*how, &values, &keys, &mut None)
            }
            Test::String { how, sources, keys } => {
                let values: Vec<String> = sources
                    .iter()
                    .map(|s| self.expand(s))
                    // RFC 5229 5: an empty string counts as no value for :count.
                    .filter(|s| {
                        !matches!(how.kind, crate::compile::MatchKind::Count(_)) || !s.is_empty()
                    })
                    .collect();
                self.matches(*how, &values, keys)
            }
            Test::HasFlag {
                how,
                variables,
                keys,
            } => {
                let values = if variables.is_empty() {
                    self.flags.clone()
                } else {
                    split_flags(
                        &variables
                            .iter()
                            .map(|v| self.variable(v).cloned().unwrap_or_default())
                            .collect::<Vec<_>>(),
                    )
                };
                self.matches(*how, &values, keys)
            }
            Test::MailboxExists(names) => names
                .iter()
                .all(|n| (self.context.mailbox_exists)(&self.expand(n))),
            Test::Spam {
                how,
                percent,
                value,
            } => {
                let v = spam_value(self.context.spam, *percent);
                let key = self.expand(value);
                self.matches(*how, &[v], &[key])
            }
            Test::Environment { how, name, keys } => {
                let name = self.expand(name).to_ascii_lowercase();
                let value = self
                    .context
                    .environment
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.to_string());
                match value {
                    // An item the server does not know: the test is false.
                    None => false,
                    Some(v) => self.matches(*how, &[v], keys),
                }
            }
        }
    }

    fn zoned(&self, when: When, zone: Zone) -> When {
        match zone {
            Zone::Original => when,
            Zone::Local => When {
                zone: self.context.zone,
                ..when
            },
            Zone::Offset(z) => When { zone: z, ..when },
        }
    }

    fn date_matches(
        &mut self,
        how: crate::compile::Match,
        when: When,
        part: &str,
        keys: &[String],
    ) -> bool {
        let part = self.expand(part).to_ascii_lowercase();
        match date::part(when, &part) {
            Some(value) => self.matches(how, &[value], keys),
            None => false,
        }
    }

    /// Matches with keys expanded; a :matches success sets `${0}`...
    fn matches(&mut self, how: crate::compile::Match, values: &[String], keys: &[String]) -> bool {
        let keys: Vec<String> = keys.iter().map(|k| self.expand(k)).collect();
        let mut captures = None;
        let hit = matching::any(how, values, &keys, &mut captures);
        if hit && let Some(c) = captures {
            self.captures = c;
        }
        hit
    }

    /// `${name}` and `${N}` replaced, when the script uses variables.
    fn expand(&self, s: &str) -> String {
        if !self.frames.last().is_some_and(|f| f.expand) || !s.contains("${") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            if name_len > 0 && after[name_len..].starts_with('}') {
                if let Ok(n) = name.parse::<usize>() {
                    out.push_str(self.captures.get(n).map_or("", String::as_str));
                } else if let Some(v) = self.variable(name) {
                    out.push_str(v);
                }
                rest = &after[name_len + 1..];
            } else {
                out.push_str("${");
                rest = after;
            }
            if out.len() > MAX_VARIABLE {
                break;
            }
        }
        out.push_str(rest);
        truncate(&mut out, MAX_VARIABLE);
        out
    }
}

/// The part of `local@domain` a test looks at; None when it has none
/// (:detail of an address without "+", RFC 5233 4).
fn address_part(address: &str, part: AddressPart) -> Option<String> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (address, ""),
    };
    match part {
        AddressPart::All => Some(address.to_string()),
        AddressPart::LocalPart => Some(local.to_string()),
        AddressPart::Domain => Some(domain.to_string()),
        AddressPart::User => Some(local.split_once('+').map_or(local, |(u, _)| u).to_string()),
        AddressPart::Detail => local.split_once('+').map(|(_, d)| d.to_string()),
    }
}

/// Flags from space-separated lists, each once (case-insensitively).
fn split_flags(lists: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in lists.iter().flat_map(|l| l.split_whitespace()) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f.to_string());
        }
    }
    out
}

fn apply_flags(op: FlagOp, current: Vec<String>, given: &[String]) -> Vec<String> {
    match op {
        FlagOp::Set => given.to_vec(),
        FlagOp::Add => split_flags(&[current, given.to_vec()].concat()),
        FlagOp::Remove => current
            .into_iter()
            .filter(|c| !given.iter().any(|g| g.eq_ignore_ascii_case(c)))
            .collect(),
    }
}

fn modify(m: Modifier, v: &str) -> String {
    match m {
        Modifier::Lower => v.to_lowercase(),
        Modifier::Upper => v.to_uppercase(),
        Modifier::LowerFirst | Modifier::UpperFirst => {
            let mut chars = v.chars();
            match chars.next() {
                Some(first) => {
                    let first: String = if m == Modifier::UpperFirst {
                        first.to_uppercase().collect()
                    } else {
                        first.to_lowercase().collect()
                    };
                    first + chars.as_str()
                }
                None => String::new(),
            }
        }
        Modifier::QuoteWildcard => {
            let mut out = String::with_capacity(v.len());
            for c in v.chars() {
                if matches!(c, '*' | '?' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        Modifier::Length => v.chars().count().to_string(),
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// spamtest's value (RFC 5235): "0" untested, else 1 (surely not spam)
/// to 10 (surely spam) on the Junk threshold's scale; with :percent,
/// 0 to 100.
fn spam_value(spam: Option<(i64, i64)>, percent: bool) -> String {
    let Some((score, junk)) = spam else {
        return "0".to_string();
    };
    let junk = junk.max(1);
    let share = score.clamp(0, junk) as f64 / junk as f64;
    if percent {
        ((share * 100.0).round() as i64).to_string()
    } else {
        (1 + (share * 9.0).round() as i64).to_string()
    }
}

/// The field occurrence an index names (1-based; from the end with
/// :last), or all of them without one.
fn pick<T>(mut fields: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(Index { n, last }) = index else {
        return fields;
    };
    let n = n as usize;
    if n == 0 || n > fields.len() {
        return Vec::new();
    }
    let at = if last { fields.len() - n } else { n - 1 };
    vec![fields.swap_remove(at)]
}

/// The address of a mailbox written with a display name
/// (`"Alice" <alice@example.com>`), or the text as it is.
fn addr_spec(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => &mailbox[open + 1..close],
        _ => mailbox.trim(),
    }
}
