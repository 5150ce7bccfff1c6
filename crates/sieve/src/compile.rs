//! From the generic grammar to a checked script: every command and test
//! known, its arguments of the right kind, and every extension it uses
//! named by `require` first. What this accepts, the interpreter can run.

use std::collections::HashMap;

use crate::parse::{self, Argument};
use crate::{Error, MAX_SCRIPT_SIZE, Position, lex};

/// The extensions Satchel's Sieve offers (the `require` names and the
/// ManageSieve SIEVE capability).
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "imap4flags",
    "variables",
    "relational",
    "subaddress",
    "copy",
    "body",
    "mailbox",
    "spamtest",
    "spamtestplus",
    "environment",
    "include",
    "vacation",
    "date",
    "index",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
];

/// A compiled script, ready to run on any number of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub(crate) commands: Vec<Cmd>,
    /// Whether strings are expanded (`${name}`): "variables" was required.
    pub(crate) variables: bool,
    pub(crate) requires: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// `if`/`elsif` branches in order, then the `else` block.
    If(Vec<(Test, Vec<Cmd>)>, Option<Vec<Cmd>>),
    Stop,
    Return,
    Include {
        location: crate::Location,
        name: String,
        once: bool,
        optional: bool,
    },
    /// Variable names shared with the other scripts (RFC 6609 3.3).
    Global(Vec<String>),
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    FileInto {
        mailbox: String,
        copy: bool,
        create: bool,
        flags: Option<Vec<String>>,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        extended: bool,
    },
    Vacation(Box<Vacation>),
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<String>,
    },
    Set {
        name: String,
        value: String,
        modifiers: Vec<Modifier>,
    },
}

/// An auto-reply (RFC 5230 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vacation {
    pub days: u64,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

/// `set` modifiers (RFC 5229 4.1), applied by precedence, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Modifier {
    Length,
    QuoteWildcard,
    UpperFirst,
    LowerFirst,
    Upper,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Address {
        how: Match,
        index: Option<Index>,
        part: AddressPart,
        headers: Vec<String>,
        keys: Vec<String>,
    },
    Envelope {
        how: Match,
        part: AddressPart,
        parts: Vec<String>,
        keys: Vec<String>,
    },
    Header {
        how: Match,
        index: Option<Index>,
        headers: Vec<String>,
        keys: Vec<String>,
    },
    Date {
        how: Match,
        index: Option<Index>,
        zone: Zone,
        header: String,
        part: String,
        keys: Vec<String>,
    },
    CurrentDate {
        how: Match,
        zone: Zone,
        part: String,
        keys: Vec<String>,
    },
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Body {
        how: Match,
        transform: BodyTransform,
        keys: Vec<String>,
    },
    String {
        how: Match,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    HasFlag {
        how: Match,
        variables: Vec<String>,
        keys: Vec<String>,
    },
    MailboxExists(Vec<String>),
    Spam {
        how: Match,
        percent: bool,
        value: String,
    },
    Environment {
        how: Match,
        name: String,
        keys: Vec<String>,
    },
}

/// Which occurrence of a header field a test looks at (RFC 5260 6):
/// the `n`th, 1-based, counted from the end with `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Index {
    pub n: u64,
    pub last: bool,
}

/// The time zone dates are seen in (RFC 5260 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// The server's zone.
    Local,
    /// The zone the date was written in.
    Original,
    /// Minutes east of UTC.
    Offset(i32),
}

/// The date parts RFC 5260 4.2 names.
pub(crate) const DATE_PARTS: &[&str] = &[
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
];

/// How values are compared with keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub comparator: Comparator,
    pub kind: MatchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Is,
    Contains,
    Matches,
    Value(Relation),
    Count(Relation),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyTransform {
    Raw,
    Text,
    Content(Vec<String>),
}

impl Script {
    /// Compiles a script; the error names the line and column of the
    /// first problem and what is wrong there.
    pub fn compile(source: &str) -> Result<Script, Error> {
        if source.len() > MAX_SCRIPT_SIZE {
            return Err(Error::at(
                Position { line: 1, column: 1 },
                format!("the script is larger than {MAX_SCRIPT_SIZE} bytes"),
            ));
        }
        let commands = parse::commands(&lex::tokens(source)?)?;
        let mut c = Compiler {
            requires: Vec::new(),
        };
        let mut at = 0;
        // `require` only at the start (RFC 5228 3.2).
        while let Some(cmd) = commands.get(at).filter(|c| c.name == "require") {
            c.require(cmd)?;
            at += 1;
        }
        let compiled = c.block(&commands[at..])?;
        Ok(Script {
            commands: compiled,
            variables: c.has("variables"),
            requires: c.requires,
        })
    }

    /// The extensions the script requires.
    pub fn requires(&self) -> &[String] {
        &self.requires
    }
}

struct Compiler {
    requires: Vec<String>,
}

/// What follows a tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagArg {
    None,
    String,
    Strings,
    Number,
}

#[derive(Debug)]
enum TagValue {
    None,
    Strings(Vec<String>),
    Number(u64),
}

/// A command's or test's arguments, split into its tags (with their
/// values) and the positional rest.
struct Split {
    tags: HashMap<String, (TagValue, Position)>,
    positional: Vec<Argument>,
}

/// Tags every match-capable test takes (RFC 5228 2.7).
const MATCH_TAGS: &[(&str, TagArg)] = &[
    ("is", TagArg::None),
    ("contains", TagArg::None),
    ("matches", TagArg::None),
    ("value", TagArg::String),
    ("count", TagArg::String),
    ("comparator", TagArg::String),
];
const INDEX_TAGS: &[(&str, TagArg)] = &[("index", TagArg::Number), ("last", TagArg::None)];
const ADDRESS_TAGS: &[(&str, TagArg)] = &[
    ("all", TagArg::None),
    ("localpart", TagArg::None),
    ("domain", TagArg::None),
    ("user", TagArg::None),
    ("detail", TagArg::None),
];

impl Compiler {
    fn has(&self, extension: &str) -> bool {
        self.requires.iter().any(|r| r == extension)
    }

    fn need(&self, extension: &str, what: &str, at: Position) -> Result<(), Error> {
        if self.has(extension) {
            Ok(())
        } else {
            Err(Error::at(
                at,
                format!("{what} needs require \"{extension}\" at the start of the script"),
            ))
        }
    }

    fn require(&mut self, cmd: &parse::Command) -> Result<(), Error> {
        let [Argument::Strings { values, .. }] = cmd.arguments.as_slice() else {
            return Err(Error::at(
                cmd.position,
                "require takes one string or string list: require [\"fileinto\", \"envelope\"];",
            ));
        };
        if !cmd.tests.is_empty() || cmd.block.is_some() {
            return Err(Error::at(
                cmd.position,
                "require takes no test and no block",
            ));
        }
        for v in values {
            if !EXTENSIONS.contains(&v.as_str()) {
                return Err(Error::at(
                    cmd.arguments[0].position(),
                    format!(
                        "unsupported extension \"{v}\"; this server supports: {}",
                        EXTENSIONS.join(" ")
                    ),
                ));
            }
            if !self.has(v) {
                self.requires.push(v.clone());
            }
        }
        // Extensions that bring others with them.
        for (ext, implies) in [("spamtestplus", "spamtest"), ("ereject", "reject")] {
            if self.has(ext) && !self.has(implies) {
                self.requires.push(implies.to_string());
            }
        }
        Ok(())
    }

    fn block(&self, commands: &[parse::Command]) -> Result<Vec<Cmd>, Error> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < commands.len() {
            let cmd = &commands[i];
            match cmd.name.as_str() {
                "if" => {
                    let mut branches = vec![self.branch(cmd)?];
                    let mut otherwise = None;
                    while let Some(next) = commands.get(i + 1) {
                        match next.name.as_str() {
                            "elsif" => {
                                branches.push(self.branch(next)?);
                                i += 1;
                            }
                            "else" => {
                                if !next.arguments.is_empty() || !next.tests.is_empty() {
                                    return Err(Error::at(next.position, "else takes no test"));
                                }
                                otherwise = Some(self.block(self.body(next)?)?);
                                i += 1;
                                break;
                            }
                            _ => break,
                        }
                    }
                    out.push(Cmd::If(branches, otherwise));
                }
                "elsif" | "else" => {
                    return Err(Error::at(
                        cmd.position,
                        format!("{} must follow an if or elsif block", cmd.name),
                    ));
                }
                "require" => {
                    return Err(Error::at(
                        cmd.position,
                        "require must come before every other command",
                    ));
                }
                _ => out.push(self.command(cmd)?),
            }
            i += 1;
        }
        Ok(out)
    }

    fn body<'c>(&self, cmd: &'c parse::Command) -> Result<&'c [parse::Command], Error> {
        cmd.block.as_deref().ok_or_else(|| {
            Error::at(
                cmd.position,
                format!("{} needs a block: {{ ... }}", cmd.name),
            )
        })
    }

    fn branch(&self, cmd: &parse::Command) -> Result<(Test, Vec<Cmd>), Error> {
        let [test] = cmd.tests.as_slice() else {
            return Err(Error::at(
                cmd.position,
                format!("{} needs exactly one test", cmd.name),
            ));
        };
        if !cmd.arguments.is_empty() {
            return Err(Error::at(
                cmd.arguments[0].position(),
                format!("{} takes a test, not arguments", cmd.name),
            ));
        }
        Ok((self.test(test)?, self.block(self.body(cmd)?)?))
    }

    fn command(&self, cmd: &parse::Command) -> Result<Cmd, Error> {
        if cmd.block.is_some() {
            return Err(Error::at(
                cmd.position,
                format!("{} takes no block", cmd.name),
            ));
        }
        if let Some(t) = cmd.tests.first() {
            return Err(Error::at(t.position, format!("{} takes no test", cmd.name)));
        }
        let at = cmd.position;
        let name = cmd.name.as_str();
        Ok(match name {
            "stop" => {
                self.split(name, &cmd.arguments, &[], 0, at)?;
                Cmd::Stop
            }
            "return" => {
                self.need("include", "return", at)?;
                self.split(name, &cmd.arguments, &[], 0, at)?;
                Cmd::Return
            }
            "include" => {
                self.need("include", "include", at)?;
                let tags = [
                    ("personal", TagArg::None),
                    ("global", TagArg::None),
                    ("once", TagArg::None),
                    ("optional", TagArg::None),
                ];
                let s = self.split(name, &cmd.arguments, &tags, 1, at)?;
                let location = match (
                    s.tags.contains_key("personal"),
                    s.tags.contains_key("global"),
                ) {
                    (true, true) => {
                        return Err(Error::at(
                            at,
                            "include takes :personal or :global, not both",
                        ));
                    }
                    (_, true) => crate::Location::Global,
                    _ => crate::Location::Personal,
                };
                let script = self.string(&s.positional[0], "the script name")?;
                if script.is_empty() || script.contains('/') {
                    return Err(Error::at(
                        s.positional[0].position(),
                        format!("{script:?} is not a script name (not empty, no /)"),
                    ));
                }
                Cmd::Include {
                    location,
                    name: script,
                    once: s.tags.contains_key("once"),
                    optional: s.tags.contains_key("optional"),
                }
            }
            "global" => {
                self.need("include", "global", at)?;
                self.need("variables", "global", at)?;
                let s = self.split(name, &cmd.arguments, &[], 1, at)?;
                let names = self.strings(&s.positional[0], "the variable names")?;
                for n in &names {
                    self.variable_name(n, s.positional[0].position())?;
                }
                Cmd::Global(lower(names))
            }
            "discard" => {
                self.split(name, &cmd.arguments, &[], 0, at)?;
                Cmd::Discard
            }
            "keep" => {
                let s = self.split(name, &cmd.arguments, &[("flags", TagArg::Strings)], 0, at)?;
                Cmd::Keep {
                    flags: self.flags_tag(&s)?,
                }
            }
            "fileinto" => {
                self.need("fileinto", "fileinto", at)?;
                let s = self.split(
                    name,
                    &cmd.arguments,
                    &[
                        ("copy", TagArg::None),
                        ("create", TagArg::None),
                        ("flags", TagArg::Strings),
                    ],
                    1,
                    at,
                )?;
                Cmd::FileInto {
                    mailbox: self.string(&s.positional[0], "the mailbox name")?,
                    copy: self.flag_tag(&s, "copy", "copy")?,
                    create: self.flag_tag(&s, "create", "mailbox")?,
                    flags: self.flags_tag(&s)?,
                }
            }
            "redirect" => {
                let s = self.split(name, &cmd.arguments, &[("copy", TagArg::None)], 1, at)?;
                let address = self.string(&s.positional[0], "the address")?;
                if !address.contains("${") && !valid_address(&address) {
                    return Err(Error::at(
                        s.positional[0].position(),
                        format!(
                            "redirect needs an address such as bob@example.com, not {address:?}"
                        ),
                    ));
                }
                Cmd::Redirect {
                    address,
                    copy: self.flag_tag(&s, "copy", "copy")?,
                }
            }
            "reject" | "ereject" => {
                self.need(name, name, at)?;
                let s = self.split(name, &cmd.arguments, &[], 1, at)?;
                Cmd::Reject {
                    reason: self.string(&s.positional[0], "the reason")?,
                    extended: name == "ereject",
                }
            }
            "vacation" => {
                self.need("vacation", "vacation", at)?;
                let tags = [
                    ("days", TagArg::Number),
                    ("subject", TagArg::String),
                    ("from", TagArg::String),
                    ("addresses", TagArg::Strings),
                    ("mime", TagArg::None),
                    ("handle", TagArg::String),
                ];
                let s = self.split(name, &cmd.arguments, &tags, 1, at)?;
                let text = |tag: &str| -> Result<Option<String>, Error> {
                    match s.tags.get(tag) {
                        Some((TagValue::Strings(v), p)) => Ok(Some(self.decode(&v[0], *p)?)),
                        _ => Ok(None),
                    }
                };
                // RFC 5230 4.1: at least a day; we allow up to a month.
                let days = match s.tags.get("days") {
                    Some((TagValue::Number(n), _)) => (*n).clamp(1, 30),
                    _ => 7,
                };
                let from = text("from")?;
                if let Some(f) = from.as_deref().filter(|f| !f.contains("${"))
                    && !f.contains('@')
                {
                    return Err(Error::at(at, format!(":from needs an address, not {f:?}")));
                }
                let addresses = match s.tags.get("addresses") {
                    Some((TagValue::Strings(v), p)) => v
                        .iter()
                        .map(|a| self.decode(a, *p))
                        .collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                Cmd::Vacation(Box::new(Vacation {
                    days,
                    subject: text("subject")?,
                    from,
                    addresses,
                    mime: s.tags.contains_key("mime"),
                    handle: text("handle")?,
                    reason: self.string(&s.positional[0], "the reason")?,
                }))
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", name, at)?;
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let (variable, flags) = match cmd.arguments.as_slice() {
                    [flags] => (None, self.strings(flags, "the flags")?),
                    [var, flags] => {
                        self.need("variables", "a flag variable", at)?;
                        let var = self.string(var, "the variable name")?;
                        self.variable_name(&var, cmd.arguments[0].position())?;
                        (
                            Some(var.to_ascii_lowercase()),
                            self.strings(flags, "the flags")?,
                        )
                    }
                    _ => {
                        return Err(Error::at(
                            at,
                            format!("{name} takes the flags, optionally after a variable name"),
                        ));
                    }
                };
                Cmd::Flags {
                    op,
                    variable,
                    flags,
                }
            }
            "set" => {
                self.need("variables", "set", at)?;
                let tags: Vec<(&str, TagArg)> = [
                    "lower",
                    "upper",
                    "lowerfirst",
                    "upperfirst",
                    "quotewildcard",
                    "length",
                ]
                .iter()
                .map(|t| (*t, TagArg::None))
                .collect();
                let s = self.split(name, &cmd.arguments, &tags, 2, at)?;
                let var = self.string(&s.positional[0], "the variable name")?;
                self.variable_name(&var, s.positional[0].position())?;
                let mut modifiers: Vec<Modifier> = s
                    .tags
                    .keys()
                    .map(|t| match t.as_str() {
                        "lower" => Modifier::Lower,
                        "upper" => Modifier::Upper,
                        "lowerfirst" => Modifier::LowerFirst,
                        "upperfirst" => Modifier::UpperFirst,
                        "quotewildcard" => Modifier::QuoteWildcard,
                        _ => Modifier::Length,
                    })
                    .collect();
                modifiers.sort();
                for pair in [
                    (Modifier::Upper, Modifier::Lower),
                    (Modifier::UpperFirst, Modifier::LowerFirst),
                ] {
                    if modifiers.contains(&pair.0) && modifiers.contains(&pair.1) {
                        return Err(Error::at(
                            at,
                            "set cannot take both :upper and :lower, or :upperfirst and :lowerfirst",
                        ));
                    }
                }
                Cmd::Set {
                    name: var.to_ascii_lowercase(),
                    value: self.string(&s.positional[1], "the value")?,
                    modifiers,
                }
            }
            "if" | "elsif" | "else" | "require" => unreachable_in_block(cmd)?,
            other => {
                return Err(Error::at(
                    at,
                    format!("unknown command \"{other}\"{}", hint_command(other)),
                ));
            }
        })
    }

    fn test(&self, t: &parse::Test) -> Result<Test, Error> {
        let at = t.position;
        let name = t.name.as_str();
        let no_tests = || -> Result<(), Error> {
            match t.tests.first() {
                Some(inner) => Err(Error::at(
                    inner.position,
                    format!("{name} takes no test inside"),
                )),
                None => Ok(()),
            }
        };
        Ok(match name {
            "true" | "false" => {
                no_tests()?;
                self.split(name, &t.arguments, &[], 0, at)?;
                if name == "true" {
                    Test::True
                } else {
                    Test::False
                }
            }
            "not" => {
                let [inner] = t.tests.as_slice() else {
                    return Err(Error::at(at, "not takes exactly one test"));
                };
                self.split(name, &t.arguments, &[], 0, at)?;
                Test::Not(Box::new(self.test(inner)?))
            }
            "allof" | "anyof" => {
                if t.tests.is_empty() {
                    return Err(Error::at(
                        at,
                        format!("{name} needs a list of tests: {name} (test, test)"),
                    ));
                }
                self.split(name, &t.arguments, &[], 0, at)?;
                let tests = t
                    .tests
                    .iter()
                    .map(|x| self.test(x))
                    .collect::<Result<_, _>>()?;
                if name == "allof" {
                    Test::AllOf(tests)
                } else {
                    Test::AnyOf(tests)
                }
            }
            "address" | "envelope" => {
                no_tests()?;
                if name == "envelope" {
                    self.need("envelope", "envelope", at)?;
                }
                let mut tags = [MATCH_TAGS, ADDRESS_TAGS].concat();
                if name == "address" {
                    tags.extend_from_slice(INDEX_TAGS);
                }
                let s = self.split(name, &t.arguments, &tags, 2, at)?;
                let how = self.how(&s, at)?;
                let part = self.address_part(&s, at)?;
                let headers = self.strings(&s.positional[0], "the header names")?;
                let keys = self.strings(&s.positional[1], "the keys")?;
                if name == "address" {
                    Test::Address {
                        how,
                        index: self.index(&s)?,
                        part,
                        headers: lower(headers),
                        keys,
                    }
                } else {
                    Test::Envelope {
                        how,
                        part,
                        parts: lower(headers),
                        keys,
                    }
                }
            }
            "header" => {
                no_tests()?;
                let tags = [MATCH_TAGS, INDEX_TAGS].concat();
                let s = self.split(name, &t.arguments, &tags, 2, at)?;
                Test::Header {
                    how: self.how(&s, at)?,
                    index: self.index(&s)?,
                    headers: lower(self.strings(&s.positional[0], "the header names")?),
                    keys: self.strings(&s.positional[1], "the keys")?,
                }
            }
            "date" | "currentdate" => {
                no_tests()?;
                self.need("date", name, at)?;
                let mut tags = [MATCH_TAGS, &[("zone", TagArg::String)]].concat();
                if name == "date" {
                    tags.push(("originalzone", TagArg::None));
                    tags.extend_from_slice(INDEX_TAGS);
                }
                let positional = if name == "date" { 3 } else { 2 };
                let s = self.split(name, &t.arguments, &tags, positional, at)?;
                let how = self.how(&s, at)?;
                let zone = match (s.tags.get("zone"), s.tags.contains_key("originalzone")) {
                    (Some(_), true) => {
                        return Err(Error::at(at, "date takes :zone or :originalzone, not both"));
                    }
                    (Some((TagValue::Strings(z), zat)), false) => {
                        let z = z.first().map(String::as_str).unwrap_or("");
                        Zone::Offset(zone_minutes(z).ok_or_else(|| {
                            Error::at(
                                *zat,
                                format!("{z:?} is not a time zone; write it as +0100 or -0830"),
                            )
                        })?)
                    }
                    (_, true) => Zone::Original,
                    _ => Zone::Local,
                };
                let part_arg = &s.positional[positional - 2];
                let part = self.string(part_arg, "the date part")?.to_ascii_lowercase();
                if !part.contains("${") && !DATE_PARTS.contains(&part.as_str()) {
                    return Err(Error::at(
                        part_arg.position(),
                        format!(
                            "unknown date part {part:?}; there are {}",
                            DATE_PARTS.join(" ")
                        ),
                    ));
                }
                let keys = self.strings(&s.positional[positional - 1], "the keys")?;
                if name == "date" {
                    Test::Date {
                        how,
                        index: self.index(&s)?,
                        zone,
                        header: self
                            .string(&s.positional[0], "the header name")?
                            .to_ascii_lowercase(),
                        part,
                        keys,
                    }
                } else {
                    Test::CurrentDate {
                        how,
                        zone,
                        part,
                        keys,
                    }
                }
            }
            "exists" => {
                no_tests()?;
                let s = self.split(name, &t.arguments, &[], 1, at)?;
                Test::Exists(lower(self.strings(&s.positional[0], "the header names")?))
            }
            "size" => {
                no_tests()?;
                let s = self.split(
                    name,
                    &t.arguments,
                    &[("over", TagArg::None), ("under", TagArg::None)],
                    1,
                    at,
                )?;
                let over = match (s.tags.contains_key("over"), s.tags.contains_key("under")) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => return Err(Error::at(at, "size needs exactly one of :over and :under")),
                };
                let Argument::Number(limit, _) = s.positional[0] else {
                    return Err(Error::at(
                        s.positional[0].position(),
                        "size needs a number, as in size :over 100K",
                    ));
                };
                Test::Size { over, limit }
            }
            "body" => {
                no_tests()?;
                self.need("body", "body", at)?;
                let tags = [
                    MATCH_TAGS,
                    &[
                        ("raw", TagArg::None),
                        ("text", TagArg::None),
                        ("content", TagArg::Strings),
                    ],
                ]
                .concat();
                let s = self.split(name, &t.arguments, &tags, 1, at)?;
                let transform = match (
                    s.tags.contains_key("raw"),
                    s.tags.contains_key("text"),
                    s.tags.get("content"),
                ) {
                    (false, false, None) | (false, true, None) => BodyTransform::Text,
                    (true, false, None) => BodyTransform::Raw,
                    (false, false, Some((TagValue::Strings(types), _))) => {
                        BodyTransform::Content(lower(types.clone()))
                    }
                    _ => return Err(Error::at(at, "body takes one of :raw, :text and :content")),
                };
                Test::Body {
                    how: self.how(&s, at)?,
                    transform,
                    keys: self.strings(&s.positional[0], "the keys")?,
                }
            }
            "string" => {
                no_tests()?;
                self.need("variables", "string", at)?;
                let s = self.split(name, &t.arguments, MATCH_TAGS, 2, at)?;
                Test::String {
                    how: self.how(&s, at)?,
                    sources: self.strings(&s.positional[0], "the source strings")?,
                    keys: self.strings(&s.positional[1], "the keys")?,
                }
            }
            "hasflag" => {
                no_tests()?;
                self.need("imap4flags", "hasflag", at)?;
                let s = self.split_range(name, &t.arguments, MATCH_TAGS, 1, 2, at)?;
                let how = self.how(&s, at)?;
                let (variables, keys) = match s.positional.as_slice() {
                    [keys] => (Vec::new(), self.strings(keys, "the flags")?),
                    [vars, keys] => {
                        self.need("variables", "a flag variable", at)?;
                        (
                            lower(self.strings(vars, "the variable names")?),
                            self.strings(keys, "the flags")?,
                        )
                    }
                    _ => unreachable_counts(at)?,
                };
                Test::HasFlag {
                    how,
                    variables,
                    keys,
                }
            }
            "mailboxexists" => {
                no_tests()?;
                self.need("mailbox", "mailboxexists", at)?;
                let s = self.split(name, &t.arguments, &[], 1, at)?;
                Test::MailboxExists(self.strings(&s.positional[0], "the mailbox names")?)
            }
            "spamtest" => {
                no_tests()?;
                self.need("spamtest", "spamtest", at)?;
                let tags = [MATCH_TAGS, &[("percent", TagArg::None)]].concat();
                let s = self.split(name, &t.arguments, &tags, 1, at)?;
                let percent = s.tags.contains_key("percent");
                if percent {
                    self.need("spamtestplus", ":percent", at)?;
                }
                Test::Spam {
                    how: self.how(&s, at)?,
                    percent,
                    value: self.string(&s.positional[0], "the value")?,
                }
            }
            "environment" => {
                no_tests()?;
                self.need("environment", "environment", at)?;
                let s = self.split(name, &t.arguments, MATCH_TAGS, 2, at)?;
                Test::Environment {
                    how: self.how(&s, at)?,
                    name: self
                        .string(&s.positional[0], "the item name")?
                        .to_ascii_lowercase(),
                    keys: self.strings(&s.positional[1], "the keys")?,
                }
            }
            other => {
                return Err(Error::at(at, format!("unknown test \"{other}\"")));
            }
        })
    }

    /// Splits arguments; exactly `positional` non-tag arguments must follow.
    fn split(
        &self,
        name: &str,
        args: &[Argument],
        tags: &[(&str, TagArg)],
        positional: usize,
        at: Position,
    ) -> Result<Split, Error> {
        self.split_range(name, args, tags, positional, positional, at)
    }

    fn split_range(
        &self,
        name: &str,
        args: &[Argument],
        tags: &[(&str, TagArg)],
        min: usize,
        max: usize,
        at: Position,
    ) -> Result<Split, Error> {
        let mut out = Split {
            tags: HashMap::new(),
            positional: Vec::new(),
        };
        let mut i = 0;
        while i < args.len() {
            match &args[i] {
                Argument::Tag(tag, tag_at) => {
                    if !out.positional.is_empty() {
                        return Err(Error::at(
                            *tag_at,
                            format!("the tag :{tag} must come before {name}'s other arguments"),
                        ));
                    }
                    let Some((_, kind)) = tags.iter().find(|(t, _)| t == tag) else {
                        return Err(Error::at(*tag_at, format!("{name} has no tag :{tag}")));
                    };
                    i += 1;
                    let value = match (kind, args.get(i)) {
                        (TagArg::None, _) => TagValue::None,
                        (TagArg::Number, Some(Argument::Number(n, _))) => {
                            i += 1;
                            TagValue::Number(*n)
                        }
                        (
                            TagArg::String,
                            Some(Argument::Strings {
                                values,
                                single: true,
                                ..
                            }),
                        )
                        | (TagArg::Strings, Some(Argument::Strings { values, .. })) => {
                            i += 1;
                            TagValue::Strings(values.clone())
                        }
                        (kind, _) => {
                            let wanted = match kind {
                                TagArg::String => "a string",
                                TagArg::Number => "a number",
                                _ => "a string list",
                            };
                            return Err(Error::at(
                                *tag_at,
                                format!(":{tag} must be followed by {wanted}"),
                            ));
                        }
                    };
                    if out.tags.insert(tag.clone(), (value, *tag_at)).is_some() {
                        return Err(Error::at(*tag_at, format!(":{tag} is given twice")));
                    }
                }
                other => {
                    out.positional.push(other.clone());
                    i += 1;
                }
            }
        }
        if out.positional.len() < min || out.positional.len() > max {
            let wanted = if min == max {
                format!("{min}")
            } else {
                format!("{min} or {max}")
            };
            return Err(Error::at(
                at,
                format!(
                    "{name} takes {wanted} argument(s) after its tags, but has {}",
                    out.positional.len()
                ),
            ));
        }
        Ok(out)
    }

    /// The comparator and match type of a test (RFC 5228 2.7.1-2.7.3).
    fn how(&self, s: &Split, at: Position) -> Result<Match, Error> {
        let mut kind = None;
        for (tag, (value, tag_at)) in &s.tags {
            let k = match tag.as_str() {
                "is" => MatchKind::Is,
                "contains" => MatchKind::Contains,
                "matches" => MatchKind::Matches,
                "value" | "count" => {
                    self.need("relational", &format!(":{tag}"), *tag_at)?;
                    let TagValue::Strings(v) = value else {
                        continue;
                    };
                    let relation = match v.first().map(|r| r.to_ascii_lowercase()).as_deref() {
                        Some("gt") => Relation::Gt,
                        Some("ge") => Relation::Ge,
                        Some("lt") => Relation::Lt,
                        Some("le") => Relation::Le,
                        Some("eq") => Relation::Eq,
                        Some("ne") => Relation::Ne,
                        _ => {
                            return Err(Error::at(
                                *tag_at,
                                format!(
                                    ":{tag} needs one of \"gt\" \"ge\" \"lt\" \"le\" \"eq\" \"ne\""
                                ),
                            ));
                        }
                    };
                    if tag == "value" {
                        MatchKind::Value(relation)
                    } else {
                        MatchKind::Count(relation)
                    }
                }
                _ => continue,
            };
            if kind.replace(k).is_some() {
                return Err(Error::at(
                    at,
                    "a test takes at most one match type (:is, :contains, :matches, :value, :count)",
                ));
            }
        }
        let comparator = match s.tags.get("comparator") {
            None => Comparator::AsciiCasemap,
            Some((TagValue::Strings(v), tag_at)) => match v.first().map(String::as_str) {
                Some("i;octet") => Comparator::Octet,
                Some("i;ascii-casemap") => Comparator::AsciiCasemap,
                Some("i;ascii-numeric") => {
                    self.need(
                        "comparator-i;ascii-numeric",
                        "the comparator i;ascii-numeric",
                        *tag_at,
                    )?;
                    Comparator::AsciiNumeric
                }
                other => {
                    return Err(Error::at(
                        *tag_at,
                        format!(
                            "unknown comparator {:?}; there are i;octet, i;ascii-casemap and i;ascii-numeric",
                            other.unwrap_or("")
                        ),
                    ));
                }
            },
            Some((_, tag_at)) => return Err(Error::at(*tag_at, ":comparator needs a string")),
        };
        let kind = kind.unwrap_or(MatchKind::Is);
        if comparator == Comparator::AsciiNumeric
            && matches!(kind, MatchKind::Contains | MatchKind::Matches)
        {
            return Err(Error::at(
                at,
                "i;ascii-numeric can only be used with :is, :value and :count",
            ));
        }
        Ok(Match { comparator, kind })
    }

    fn address_part(&self, s: &Split, at: Position) -> Result<AddressPart, Error> {
        let mut part = None;
        for (tag, (_, tag_at)) in &s.tags {
            let p = match tag.as_str() {
                "all" => AddressPart::All,
                "localpart" => AddressPart::LocalPart,
                "domain" => AddressPart::Domain,
                "user" | "detail" => {
                    self.need("subaddress", &format!(":{tag}"), *tag_at)?;
                    if tag == "user" {
                        AddressPart::User
                    } else {
                        AddressPart::Detail
                    }
                }
                _ => continue,
            };
            if part.replace(p).is_some() {
                return Err(Error::at(at, "a test takes at most one address part"));
            }
        }
        Ok(part.unwrap_or(AddressPart::All))
    }

    /// `:index N [:last]` (RFC 5260 6).
    fn index(&self, s: &Split) -> Result<Option<Index>, Error> {
        let last = s.tags.get("last").map(|(_, p)| *p);
        match s.tags.get("index") {
            Some((TagValue::Number(n), tag_at)) => {
                self.need("index", ":index", *tag_at)?;
                if *n == 0 {
                    return Err(Error::at(*tag_at, ":index counts from 1"));
                }
                Ok(Some(Index {
                    n: *n,
                    last: last.is_some(),
                }))
            }
            _ => match last {
                Some(p) => Err(Error::at(p, ":last needs :index")),
                None => Ok(None),
            },
        }
    }

    fn flag_tag(&self, s: &Split, tag: &str, extension: &str) -> Result<bool, Error> {
        match s.tags.get(tag) {
            Some((_, at)) => {
                self.need(extension, &format!(":{tag}"), *at)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn flags_tag(&self, s: &Split) -> Result<Option<Vec<String>>, Error> {
        match s.tags.get("flags") {
            Some((TagValue::Strings(v), at)) => {
                self.need("imap4flags", ":flags", *at)?;
                Ok(Some(v.clone()))
            }
            _ => Ok(None),
        }
    }

    fn string(&self, arg: &Argument, what: &str) -> Result<String, Error> {
        match arg {
            Argument::Strings {
                values,
                single: true,
                ..
            } => self.decode(&values[0], arg.position()),
            _ => Err(Error::at(
                arg.position(),
                format!("{what} must be a string"),
            )),
        }
    }

    fn strings(&self, arg: &Argument, what: &str) -> Result<Vec<String>, Error> {
        match arg {
            Argument::Strings { values, .. } => values
                .iter()
                .map(|v| self.decode(v, arg.position()))
                .collect(),
            _ => Err(Error::at(
                arg.position(),
                format!("{what} must be a string or string list"),
            )),
        }
    }

    /// Expands `${hex:...}` and `${unicode:...}` when "encoded-character"
    /// was required (RFC 5228 2.4.2.4).
    fn decode(&self, s: &str, at: Position) -> Result<String, Error> {
        if !self.has("encoded-character") || !s.contains("${") {
            return Ok(s.to_string());
        }
        encoded_characters(s).map_err(|m| Error::at(at, m))
    }

    fn variable_name(&self, name: &str, at: Position) -> Result<(), Error> {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(Error::at(
                at,
                format!(
                    "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
                ),
            ))
        }
    }
}

fn lower(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.to_ascii_lowercase()).collect()
}

fn unreachable_in_block(cmd: &parse::Command) -> Result<Cmd, Error> {
    Err(Error::at(
        cmd.position,
        format!("{} is not allowed here", cmd.name),
    ))
}

fn unreachable_counts(at: Position) -> Result<(Vec<String>, Vec<String>), Error> {
    Err(Error::at(at, "wrong number of arguments"))
}

fn hint_command(name: &str) -> &'static str {
    match name {
        "vacation" | "notify" => " (not supported by this server yet)",
        _ => "",
    }
}

/// `local@domain` with something on both sides and no spaces.
fn valid_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !a.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    }
}

/// `${hex:41 42}` and `${unicode:263a}` replaced by their characters; a
/// malformed one stays as written (RFC 5228 2.4.2.4).
fn encoded_characters(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let decoded = inner.split_once(':').and_then(|(kind, body)| {
            let kind = kind.to_ascii_lowercase();
            let words = body.split_whitespace();
            match kind.as_str() {
                "hex" => {
                    let bytes: Option<Vec<u8>> =
                        words.map(|w| u8::from_str_radix(w, 16).ok()).collect();
                    Some(bytes.map(|b| String::from_utf8(b).map_err(|_| ())))
                }
                "unicode" => {
                    let chars: Option<String> = words
                        .map(|w| u32::from_str_radix(w, 16).ok().and_then(char::from_u32))
                        .collect();
                    Some(chars.map(Ok))
                }
                _ => None,
            }
        });
        match decoded {
            Some(Some(Ok(text))) => out.push_str(&text),
            Some(Some(Err(()))) => return Err("${hex:...} does not spell valid UTF-8".into()),
            Some(None) if inner.to_ascii_lowercase().starts_with("unicode:") => {
                return Err(format!(
                    "${{{inner}}} names a code point that is not a character"
                ));
            }
            _ => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// "+0100" or "-0830" as minutes east of UTC.
pub(crate) fn zone_minutes(z: &str) -> Option<i32> {
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}
