//! The command parser: bytes of one complete command (literals inline, as
//! `{n}\r\n` followed by the n octets) to a [`Command`]. Every error names
//! what was expected, for the `BAD` the session sends back.

use mime::section::{Section, SectionText};

use crate::types::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The tag, when the command got that far, for `tag BAD ...`.
    pub tag: Option<String>,
    pub message: String,
}

/// How deeply search keys and lists may nest.
pub const MAX_NESTING: usize = 64;

type R<T> = Result<T, String>;

/// Parses one command, given without its final CRLF (a literal at the end
/// may itself end in CRLF, so none is stripped here).
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    let mut p = P { s: input, i: 0 };
    let tag = p
        .tag()
        .map_err(|message| ParseError { tag: None, message })?;
    let body = (|| {
        p.sp()?;
        let body = p.command_body()?;
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the command: {}",
                p.rest_preview()
            ));
        }
        Ok(body)
    })()
    .map_err(|message| ParseError {
        tag: Some(tag.clone()),
        message,
    })?;
    Ok(Command { tag, body })
}

/// Parses a section specification, what stands between the brackets of
/// `BODY[...]` (RFC 9051 6.4.5): the parser FETCH uses, for callers that
/// hold a spec on its own (tests, tools, the fuzz target).
pub fn parse_section(spec: &[u8]) -> Result<Section, ParseError> {
    let mut bracketed = Vec::with_capacity(spec.len() + 2);
    bracketed.push(b'[');
    bracketed.extend_from_slice(spec);
    bracketed.push(b']');
    let mut p = P {
        s: &bracketed,
        i: 0,
    };
    let section = p.section().and_then(|section| {
        if p.at_end() {
            Ok(section)
        } else {
            Err(format!(
                "unexpected text after the section: {}",
                p.rest_preview()
            ))
        }
    });
    section.map_err(|message| ParseError { tag: None, message })
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// A bit of what follows, for error messages: printable, one line.
    fn rest_preview(&self) -> String {
        let rest = &self.s[self.i..];
        rest[..rest.len().min(40)]
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect()
    }

    fn sp(&mut self) -> R<()> {
        if self.peek() == Some(b' ') {
            self.i += 1;
            Ok(())
        } else if self.at_end() {
            Err("the command ends too early".into())
        } else {
            Err(format!("expected a space before {}", self.rest_preview()))
        }
    }

    fn byte(&mut self, b: u8) -> R<()> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at {:?}",
                b as char,
                self.rest_preview()
            ))
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn tag(&mut self) -> R<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if !is_astring_char(b) || b == b'+' {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err("a command starts with a tag".into());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn atom(&mut self) -> R<&[u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_atom_char) {
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected an atom at {:?}", self.rest_preview()));
        }
        Ok(&self.s[start..self.i])
    }

    fn atom_upper(&mut self) -> R<String> {
        Ok(String::from_utf8_lossy(self.atom()?).to_ascii_uppercase())
    }

    fn keyword(&mut self, word: &str) -> bool {
        let end = self.i + word.len();
        if self.s.len() >= end
            && self.s[self.i..end].eq_ignore_ascii_case(word.as_bytes())
            && !self.s.get(end).copied().is_some_and(is_atom_char)
        {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> R<u64> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected a number at {:?}", self.rest_preview()));
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| "number too large".to_string())
    }

    fn nz_number32(&mut self) -> R<u32> {
        let n = self.number()?;
        if n == 0 || n > u32::MAX as u64 {
            return Err(format!("{n} is not a valid message number"));
        }
        Ok(n as u32)
    }

    /// A quoted string or a literal (`{n}`, `{n+}`, or `~{n}` when `binary`).
    fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ => Err(format!("expected a string at {:?}", self.rest_preview())),
        }
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.byte(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("a quoted string is not closed".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => {
                            return Err(
                                "only \\\" and \\\\ may be escaped in a quoted string".into()
                            );
                        }
                    }
                }
                Some(b'\r' | b'\n' | 0) => {
                    return Err("a quoted string may not hold CR, LF or NUL; use a literal".into());
                }
                Some(b) => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> R<Vec<u8>> {
        self.byte(b'{')?;
        let n = self.number()?;
        self.eat(b'+');
        self.byte(b'}')?;
        if !self.s[self.i..].starts_with(b"\r\n") {
            return Err("a literal's size must end the line".into());
        }
        self.i += 2;
        let n = usize::try_from(n).map_err(|_| "literal too large".to_string())?;
        let end = self.i.checked_add(n).filter(|&e| e <= self.s.len());
        let end = end.ok_or_else(|| "the literal is shorter than announced".to_string())?;
        let data = self.s[self.i..end].to_vec();
        self.i = end;
        Ok(data)
    }

    fn astring(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let start = self.i;
                while self.peek().is_some_and(is_astring_char) {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(format!(
                        "expected a string or atom at {:?}",
                        self.rest_preview()
                    ));
                }
                Ok(self.s[start..self.i].to_vec())
            }
        }
    }

    fn mailbox(&mut self) -> R<MailboxArg> {
        self.astring().map(MailboxArg)
    }

    /// LIST's mailbox pattern: like a mailbox, wildcards allowed.
    fn list_mailbox(&mut self) -> R<MailboxArg> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(MailboxArg),
            _ => {
                let start = self.i;
                while self.peek().is_some_and(is_list_char) {
                    self.i += 1;
                }
                if self.i == start {
                    return Err("expected a mailbox pattern".into());
                }
                Ok(MailboxArg(self.s[start..self.i].to_vec()))
            }
        }
    }

    fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// `(a b c)` of items parsed by `item`; `allow_empty` for `()`.
    fn list_of<T>(
        &mut self,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> R<T>,
    ) -> R<Vec<T>> {
        self.byte(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            if allow_empty {
                return Ok(out);
            }
            return Err("an empty list is not allowed here".into());
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    fn flag(&mut self) -> R<String> {
        let backslash = self.eat(b'\\');
        if backslash && self.eat(b'*') {
            return Ok("\\*".into());
        }
        let atom = self.atom()?;
        let name = String::from_utf8_lossy(atom).into_owned();
        Ok(if backslash { format!("\\{name}") } else { name })
    }

    fn flag_list(&mut self) -> R<Vec<String>> {
        self.list_of(true, |p| p.flag())
    }

    fn sequence_set(&mut self) -> R<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            ranges.push((a, b));
            if !self.eat(b',') {
                return Ok(SequenceSet::Ranges(ranges));
            }
        }
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Last)
        } else {
            self.nz_number32().map(SeqNum::Value)
        }
    }

    fn command_body(&mut self) -> R<CommandBody> {
        let name = self.atom_upper()?;
        Ok(match name.as_str() {
            "CAPABILITY" => CommandBody::Capability,
            "NOOP" => CommandBody::Noop,
            "LOGOUT" => CommandBody::Logout,
            "STARTTLS" => CommandBody::StartTls,
            "NAMESPACE" => CommandBody::Namespace,
            "IDLE" => CommandBody::Idle,
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "NOTIFY" => {
                self.sp()?;
                match self.atom_upper()?.as_str() {
                    "NONE" => CommandBody::Notify(None),
                    "SET" => CommandBody::Notify(Some(self.notify_set()?)),
                    other => return Err(format!("NOTIFY {other}: expected SET or NONE")),
                }
            }
            "CANCELUPDATE" => {
                let mut tags = Vec::new();
                while self.eat(b' ') {
                    tags.push(String::from_utf8_lossy(&self.string()?).into_owned());
                }
                if tags.is_empty() {
                    return Err("CANCELUPDATE needs the tags of the searches to stop".into());
                }
                CommandBody::CancelUpdate(tags)
            }
            "EXPUNGE" => CommandBody::Expunge { uids: None },
            "AUTHENTICATE" => {
                self.sp()?;
                let mechanism = self.atom_upper()?;
                let initial = if self.eat(b' ') {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                    {
                        self.i += 1;
                    }
                    if self.i == start {
                        return Err("the initial response must be base64 or =".into());
                    }
                    Some(self.s[start..self.i].to_vec())
                } else {
                    None
                };
                CommandBody::Authenticate { mechanism, initial }
            }
            "LOGIN" => {
                self.sp()?;
                let user = self.astring()?;
                self.sp()?;
                let password = self.astring()?;
                CommandBody::Login { user, password }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.atom_upper()?);
                }
                if caps.is_empty() {
                    return Err("ENABLE needs at least one capability".into());
                }
                CommandBody::Enable(caps)
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut condstore = false;
                let mut qresync = None;
                if self.eat(b' ') {
                    self.list_of(false, |p| {
                        match p.atom_upper()?.as_str() {
                            "CONDSTORE" => condstore = true,
                            "QRESYNC" => {
                                p.sp()?;
                                qresync = Some(p.qresync()?);
                            }
                            other => return Err(format!("unknown SELECT parameter {other}")),
                        }
                        Ok(())
                    })?;
                }
                CommandBody::Select {
                    mailbox,
                    read_only: name == "EXAMINE",
                    condstore,
                    qresync,
                }
            }
            "CREATE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    // RFC 6154 5.2: CREATE name (USE (\Sent ...)).
                    self.byte(b'(')?;
                    if !self.keyword("USE") {
                        return Err("the only CREATE parameter is USE".into());
                    }
                    self.sp()?;
                    special_use = self.flag_list()?;
                    self.byte(b')')?;
                }
                CommandBody::Create {
                    mailbox,
                    special_use,
                }
            }
            "DELETE" => {
                self.sp()?;
                CommandBody::Delete(self.mailbox()?)
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                CommandBody::Rename { from, to }
            }
            "SUBSCRIBE" => {
                self.sp()?;
                CommandBody::Subscribe(self.mailbox()?)
            }
            "UNSUBSCRIBE" => {
                self.sp()?;
                CommandBody::Unsubscribe(self.mailbox()?)
            }
            "LIST" => CommandBody::List(self.list(ListKind::List)?),
            "LSUB" => CommandBody::List(self.list(ListKind::Lsub)?),
            "XLIST" => CommandBody::List(self.list(ListKind::Xlist)?),
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.list_of(false, |p| p.status_item())?;
                CommandBody::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "COMPRESS" => {
                self.sp()?;
                CommandBody::Compress(self.atom_upper()?)
            }
            "GETQUOTA" => {
                self.sp()?;
                CommandBody::GetQuota(self.astring()?)
            }
            "GETQUOTAROOT" => {
                self.sp()?;
                CommandBody::GetQuotaRoot(self.mailbox()?)
            }
            "SETQUOTA" => {
                self.sp()?;
                let root = self.astring()?;
                self.sp()?;
                self.byte(b'(')?;
                let mut limits = Vec::new();
                while !self.eat(b')') {
                    if !limits.is_empty() {
                        self.sp()?;
                    }
                    let name = self.atom_upper()?;
                    self.sp()?;
                    limits.push((name, self.number()?));
                }
                CommandBody::SetQuota { root, limits }
            }
            "SEARCH" => self.search(false)?,
            "SORT" => self.sort(false)?,
            "THREAD" => self.thread(false)?,
            "FETCH" => self.fetch(false)?,
            "STORE" => self.store(false)?,
            "COPY" => self.copy_move(false, false)?,
            "MOVE" => self.copy_move(false, true)?,
            "UID" => {
                self.sp()?;
                let sub = self.atom_upper()?;
                match sub.as_str() {
                    "SEARCH" => self.search(true)?,
                    "SORT" => self.sort(true)?,
                    "THREAD" => self.thread(true)?,
                    "FETCH" => self.fetch(true)?,
                    "STORE" => self.store(true)?,
                    "COPY" => self.copy_move(true, false)?,
                    "MOVE" => self.copy_move(true, true)?,
                    "EXPUNGE" => {
                        self.sp()?;
                        CommandBody::Expunge {
                            uids: Some(self.sequence_set()?),
                        }
                    }
                    other => return Err(format!("UID {other} is not a command")),
                }
            }
            "ID" => {
                self.sp()?;
                let params = if self.keyword("NIL") {
                    Vec::new()
                } else {
                    let flat = self.list_of(true, |p| p.nstring())?;
                    if flat.len() % 2 != 0 || flat.len() > 60 {
                        return Err("ID takes up to 30 field-value pairs".into());
                    }
                    flat.chunks(2)
                        .map(|kv| {
                            let key = kv[0].clone().ok_or("an ID field name may not be NIL")?;
                            Ok((
                                String::from_utf8_lossy(&key).into_owned(),
                                kv[1]
                                    .as_ref()
                                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                            ))
                        })
                        .collect::<R<Vec<_>>>()?
                };
                CommandBody::Id(params)
            }
            other => return Err(format!("unknown command {other}")),
        })
    }

    fn list(&mut self, kind: ListKind) -> R<ListCommand> {
        self.sp()?;
        let mut selection = Vec::new();
        if kind == ListKind::List && self.peek() == Some(b'(') {
            selection = self.list_of(true, |p| p.atom_upper())?;
            self.sp()?;
        }
        let reference = self.mailbox()?;
        self.sp()?;
        let patterns = if kind == ListKind::List && self.peek() == Some(b'(') {
            self.list_of(false, |p| p.list_mailbox())?
        } else {
            vec![self.list_mailbox()?]
        };
        let mut ret = Vec::new();
        if kind == ListKind::List && self.eat(b' ') {
            if !self.keyword("RETURN") {
                return Err("expected RETURN after the LIST patterns".into());
            }
            self.sp()?;
            ret = self.list_of(true, |p| {
                let opt = p.atom_upper()?;
                Ok(match opt.as_str() {
                    "SUBSCRIBED" => ListReturn::Subscribed,
                    "CHILDREN" => ListReturn::Children,
                    "SPECIAL-USE" => ListReturn::SpecialUse,
                    "STATUS" => {
                        p.sp()?;
                        ListReturn::Status(p.list_of(false, |p| p.status_item())?)
                    }
                    _ => ListReturn::Other(opt),
                })
            })?;
        }
        Ok(ListCommand {
            kind,
            selection,
            reference,
            patterns,
            ret,
        })
    }

    fn status_item(&mut self) -> R<StatusItem> {
        let item = self.atom_upper()?;
        Ok(match item.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            "MAILBOXID" => StatusItem::MailboxId,
            other => return Err(format!("unknown STATUS item {other}")),
        })
    }

    fn append(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        // MULTIAPPEND (RFC 3502): more messages may follow, each with its
        // own flags and date.
        while self.eat(b' ') {
            let flags = if self.peek() == Some(b'(') {
                let f = self.flag_list()?;
                self.sp()?;
                f
            } else {
                Vec::new()
            };
            let date = if self.peek() == Some(b'"') {
                let d = self.date_time()?;
                self.sp()?;
                Some(d)
            } else {
                None
            };
            // RFC 4469 5: the message made of texts and stored parts.
            if self.keyword("CATENATE") {
                self.sp()?;
                let catenate = self.list_of(false, |p| {
                    if p.keyword("TEXT") {
                        p.sp()?;
                        p.eat(b'~');
                        Ok(CatPart::Text(p.literal()?))
                    } else if p.keyword("URL") {
                        p.sp()?;
                        Ok(CatPart::Url(
                            String::from_utf8_lossy(&p.astring()?).into_owned(),
                        ))
                    } else {
                        Err("a CATENATE part is TEXT {n} or URL \"...\"".into())
                    }
                })?;
                messages.push(AppendMessage {
                    flags,
                    date,
                    data: Vec::new(),
                    binary: false,
                    utf8: false,
                    catenate,
                });
                continue;
            }
            // RFC 6855 4: UTF8 (~{n}) for a message with UTF-8 headers.
            let utf8 = self.keyword("UTF8");
            if utf8 {
                self.sp()?;
                self.byte(b'(')?;
                if self.peek() != Some(b'~') {
                    return Err("UTF8 takes the message as a literal8 (~{n})".into());
                }
            }
            let binary = self.eat(b'~');
            if self.peek() != Some(b'{') {
                return Err("APPEND needs the message as a literal".into());
            }
            let data = self.literal()?;
            if utf8 {
                self.byte(b')')?;
            }
            messages.push(AppendMessage {
                flags,
                date,
                data,
                binary,
                utf8,
                catenate: Vec::new(),
            });
        }
        if messages.is_empty() {
            return Err("APPEND needs a message".into());
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    fn date_time(&mut self) -> R<DateTime> {
        let raw = self.quoted()?;
        parse_date_time(&raw).ok_or_else(|| {
            format!(
                "bad date-time {:?}; the form is \"dd-Mon-yyyy hh:mm:ss +zzzz\"",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    fn date(&mut self) -> R<Date> {
        let raw = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.atom()?.to_vec()
        };
        parse_date(&raw).ok_or_else(|| {
            format!(
                "bad date {:?}; the form is d-Mon-yyyy",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    fn search(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let mut ret = None;
        if self.keyword("RETURN") {
            self.sp()?;
            ret = Some(self.return_options("SEARCH")?);
            self.sp()?;
        }
        let mut charset = None;
        if self.keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.charset()?);
            self.sp()?;
        }
        let key = self.search_criteria()?;
        Ok(CommandBody::Search {
            uid,
            charset,
            ret,
            key,
        })
    }

    /// `[RETURN (...)] (criteria) charset keys` (RFC 5256 3, RFC 5267 3.2).
    fn sort(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let mut ret = None;
        if self.keyword("RETURN") {
            self.sp()?;
            ret = Some(self.return_options("SORT")?);
            self.sp()?;
        }
        let criteria = self.list_of(false, |p| {
            let mut reverse = false;
            let mut name = p.atom_upper()?;
            if name == "REVERSE" {
                reverse = true;
                p.sp()?;
                name = p.atom_upper()?;
            }
            let key = match name.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                other => return Err(format!("unknown sort key {other}")),
            };
            Ok(SortCriterion { reverse, key })
        })?;
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let key = self.search_criteria()?;
        Ok(CommandBody::Sort {
            uid,
            ret,
            criteria,
            charset,
            key,
        })
    }

    /// `algorithm charset keys` (RFC 5256 3).
    fn thread(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let algorithm = match self.atom_upper()?.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            "REFS" => ThreadAlgorithm::Refs,
            other => return Err(format!("unknown THREAD algorithm {other}")),
        };
        self.sp()?;
        let charset = self.charset()?;
        self.sp()?;
        let key = self.search_criteria()?;
        Ok(CommandBody::Thread {
            uid,
            algorithm,
            charset,
            key,
        })
    }

    /// After NOTIFY SET: `[SP "STATUS"] 1*(SP event-group)` (RFC 5465 8).
    fn notify_set(&mut self) -> R<NotifySet> {
        let mut status = false;
        let mut groups = Vec::new();
        while self.eat(b' ') {
            if groups.is_empty() && !status && self.keyword("STATUS") {
                status = true;
                continue;
            }
            self.byte(b'(')?;
            let filter = match self.atom_upper()?.as_str() {
                "SELECTED" => NotifyFilter::Selected,
                "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
                "INBOXES" => NotifyFilter::Inboxes,
                "PERSONAL" => NotifyFilter::Personal,
                "SUBSCRIBED" => NotifyFilter::Subscribed,
                "SUBTREE" => {
                    self.sp()?;
                    NotifyFilter::Subtree(self.one_or_more_mailbox()?)
                }
                "MAILBOXES" => {
                    self.sp()?;
                    NotifyFilter::Mailboxes(self.one_or_more_mailbox()?)
                }
                other => return Err(format!("unknown NOTIFY mailbox filter {other}")),
            };
            self.sp()?;
            let events = if self.keyword("NONE") {
                Vec::new()
            } else {
                self.list_of(false, |p| p.notify_event())?
            };
            self.byte(b')')?;
            groups.push(NotifyGroup { filter, events });
        }
        if groups.is_empty() {
            return Err("NOTIFY SET needs at least one (mailboxes events) group".into());
        }
        Ok(NotifySet { status, groups })
    }

    fn one_or_more_mailbox(&mut self) -> R<Vec<MailboxArg>> {
        if self.peek() == Some(b'(') {
            self.list_of(false, |p| p.mailbox())
        } else {
            Ok(vec![self.mailbox()?])
        }
    }

    fn notify_event(&mut self) -> R<NotifyEvent> {
        let name = self.atom_upper()?;
        Ok(match name.as_str() {
            "MESSAGENEW" => {
                let mut atts = Vec::new();
                if self.peek() == Some(b' ') && self.s.get(self.i + 1) == Some(&b'(') {
                    self.sp()?;
                    atts = self.list_of(false, |p| p.fetch_attr())?;
                }
                NotifyEvent::MessageNew(atts)
            }
            "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
            "FLAGCHANGE" => NotifyEvent::FlagChange,
            "MAILBOXNAME" => NotifyEvent::MailboxName,
            "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
            // The other events of RFC 5465 5 and 5464, by their names.
            "ANNOTATIONCHANGE" => NotifyEvent::Other("AnnotationChange".into()),
            "MAILBOXMETADATACHANGE" => NotifyEvent::Other("MailboxMetadataChange".into()),
            "SERVERMETADATACHANGE" => NotifyEvent::Other("ServerMetadataChange".into()),
            _ => NotifyEvent::Other(name),
        })
    }

    /// RETURN options of ESEARCH (RFC 4731) and ESORT (RFC 5267).
    fn return_options(&mut self, command: &str) -> R<Vec<SearchReturn>> {
        self.list_of(true, |p| {
            let opt = p.atom_upper()?;
            Ok(match opt.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                "UPDATE" => SearchReturn::Update,
                "CONTEXT" => SearchReturn::Context,
                "PARTIAL" => {
                    // partial-range = nz-number ":" nz-number (RFC 5267 6).
                    p.sp()?;
                    let a = p.nz_number32()?;
                    p.byte(b':')?;
                    let b = p.nz_number32()?;
                    SearchReturn::Partial(a.min(b), a.max(b))
                }
                other => return Err(format!("unknown {command} RETURN option {other}")),
            })
        })
    }

    fn charset(&mut self) -> R<String> {
        let c = self.astring()?;
        Ok(String::from_utf8_lossy(&c).to_ascii_uppercase())
    }

    /// `search-key *(SP search-key)`: one key, or their AND.
    fn search_criteria(&mut self) -> R<SearchKey> {
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        Ok(if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        })
    }

    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        if depth > MAX_NESTING {
            return Err("search keys nest too deeply".into());
        }
        if self.peek() == Some(b'(') {
            let keys = self.list_of(false, |p| p.search_key(depth + 1))?;
            return Ok(SearchKey::And(keys));
        }
        if matches!(self.peek(), Some(b'0'..=b'9' | b'*' | b'$')) {
            return Ok(SearchKey::Sequence(self.sequence_set()?));
        }
        let name = self.atom_upper()?;
        let flag = |f: &str| SearchKey::Flag(f.to_string());
        let unflag = |f: &str| SearchKey::Unflag(f.to_string());
        Ok(match name.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => flag("\\Answered"),
            "DELETED" => flag("\\Deleted"),
            "DRAFT" => flag("\\Draft"),
            "FLAGGED" => flag("\\Flagged"),
            "SEEN" => flag("\\Seen"),
            "UNANSWERED" => unflag("\\Answered"),
            "UNDELETED" => unflag("\\Deleted"),
            "UNDRAFT" => unflag("\\Draft"),
            "UNFLAGGED" => unflag("\\Flagged"),
            "UNSEEN" => unflag("\\Seen"),
            "RECENT" => SearchKey::Recent,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let k = self.flag()?;
                if name == "KEYWORD" {
                    SearchKey::Flag(k)
                } else {
                    SearchKey::Unflag(k)
                }
            }
            // RFC 8514 5: every mailbox here keeps save dates.
            "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "SAVEDBEFORE"
            | "SAVEDON" | "SAVEDSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match name.as_str() {
                    "SAVEDBEFORE" => SearchKey::SavedBefore(d),
                    "SAVEDON" => SearchKey::SavedOn(d),
                    "SAVEDSINCE" => SearchKey::SavedSince(d),
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "LARGER" | "SMALLER" => {
                self.sp()?;
                let n = self.number()?;
                if name == "LARGER" {
                    SearchKey::Larger(n)
                } else {
                    SearchKey::Smaller(n)
                }
            }
            // RFC 8474 6: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
            "EMAILID" | "THREADID" => {
                self.sp()?;
                let id = String::from_utf8_lossy(self.atom()?).into_owned();
                if id.len() > 255
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "{name} takes an object ID (letters, digits, _ and -)"
                    ));
                }
                if name == "EMAILID" {
                    SearchKey::EmailId(id)
                } else {
                    SearchKey::ThreadId(id)
                }
            }
            // RFC 5032: an age in seconds, against the internal date.
            "OLDER" | "YOUNGER" => {
                self.sp()?;
                let n = self.number()?;
                if n == 0 {
                    return Err(format!("{name} needs a number of seconds above 0"));
                }
                if name == "OLDER" {
                    SearchKey::Older(n)
                } else {
                    SearchKey::Younger(n)
                }
            }
            "BCC" | "CC" | "FROM" | "SUBJECT" | "TO" => {
                self.sp()?;
                let v = self.astring()?;
                let field = name[..1].to_string() + &name[1..].to_ascii_lowercase();
                SearchKey::Header(field, v)
            }
            "HEADER" => {
                self.sp()?;
                let field = String::from_utf8_lossy(&self.astring()?).into_owned();
                self.sp()?;
                SearchKey::Header(field, self.astring()?)
            }
            "BODY" => {
                self.sp()?;
                SearchKey::Body(self.astring()?)
            }
            "TEXT" => {
                self.sp()?;
                SearchKey::Text(self.astring()?)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let a = self.search_key(depth + 1)?;
                self.sp()?;
                let b = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            "MODSEQ" => {
                self.sp()?;
                // RFC 7162 3.1.5: an optional entry name and type first.
                if self.peek() == Some(b'"') {
                    self.quoted()?;
                    self.sp()?;
                    self.atom()?;
                    self.sp()?;
                }
                SearchKey::ModSeq(self.number()?)
            }
            other => return Err(format!("unknown search key {other}")),
        })
    }

    fn fetch(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut items = if self.peek() == Some(b'(') {
            self.list_of(false, |p| p.fetch_attr())?
        } else if self.keyword("ALL") {
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
            ]
        } else if self.keyword("FAST") {
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
            ]
        } else if self.keyword("FULL") {
            vec![
                FetchAttr::Flags,
                FetchAttr::InternalDate,
                FetchAttr::Rfc822Size,
                FetchAttr::Envelope,
                FetchAttr::Body,
            ]
        } else {
            vec![self.fetch_attr()?]
        };
        let mut changed_since = None;
        let mut vanished = false;
        if self.eat(b' ') {
            self.list_of(false, |p| {
                match p.atom_upper()?.as_str() {
                    "CHANGEDSINCE" => {
                        p.sp()?;
                        changed_since = Some(p.number()?);
                    }
                    "VANISHED" => vanished = true,
                    other => return Err(format!("unknown FETCH modifier {other}")),
                }
                Ok(())
            })?;
        }
        // RFC 7162 3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        if vanished && !uid {
            return Err("the VANISHED modifier needs UID FETCH".into());
        }
        if vanished && changed_since.is_none() {
            return Err("the VANISHED modifier needs CHANGEDSINCE".into());
        }
        if changed_since.is_some() && !items.contains(&FetchAttr::ModSeq) {
            items.push(FetchAttr::ModSeq);
        }
        Ok(CommandBody::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        })
    }

    /// `(uidvalidity modseq [known-uids] [(known-seqs known-uids)])`
    /// (RFC 7162 3.2.5 and its ABNF in 7).
    fn qresync(&mut self) -> R<Qresync> {
        self.byte(b'(')?;
        let uidvalidity = self.nz_number32()?;
        self.sp()?;
        let modseq = self.number()?;
        if modseq == 0 {
            return Err("QRESYNC needs a MODSEQ above 0".into());
        }
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.plain_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            } else {
                seq_match = Some(self.seq_match()?);
            }
        }
        self.byte(b')')?;
        Ok(Qresync {
            uidvalidity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    /// `(known-sequence-set known-uid-set)` of QRESYNC.
    fn seq_match(&mut self) -> R<(SequenceSet, SequenceSet)> {
        self.byte(b'(')?;
        let seqs = self.plain_set()?;
        self.sp()?;
        let uids = self.plain_set()?;
        self.byte(b')')?;
        Ok((seqs, uids))
    }

    /// A sequence set without `$`, which QRESYNC's sets cannot be.
    fn plain_set(&mut self) -> R<SequenceSet> {
        match self.sequence_set()? {
            SequenceSet::Saved => Err("$ cannot stand for known UIDs".into()),
            set => Ok(set),
        }
    }

    /// `(NAME value ...)` modifiers of STORE (RFC 7162 3.1.3).
    fn modifiers(&mut self) -> R<Vec<(String, u64)>> {
        self.list_of(false, |p| {
            let name = p.atom_upper()?;
            p.sp()?;
            Ok((name, p.number()?))
        })
    }

    fn fetch_attr(&mut self) -> R<FetchAttr> {
        let start = self.i;
        while self.peek().is_some_and(|b| is_atom_char(b) && b != b'[') {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_uppercase();
        Ok(match name.as_str() {
            "ENVELOPE" => FetchAttr::Envelope,
            "FLAGS" => FetchAttr::Flags,
            "INTERNALDATE" => FetchAttr::InternalDate,
            "RFC822" => FetchAttr::Rfc822,
            // Not in any RFC, but sent by old clients; Dovecot accepts it.
            "RFC822.PEEK" => FetchAttr::Section {
                section: Section {
                    part: vec![],
                    text: None,
                },
                partial: None,
                peek: true,
            },
            "RFC822.HEADER" => FetchAttr::Rfc822Header,
            "RFC822.SIZE" => FetchAttr::Rfc822Size,
            "RFC822.TEXT" => FetchAttr::Rfc822Text,
            "BODYSTRUCTURE" => FetchAttr::BodyStructure,
            "UID" => FetchAttr::Uid,
            "MODSEQ" => FetchAttr::ModSeq,
            "EMAILID" => FetchAttr::EmailId,
            "SAVEDATE" => FetchAttr::SaveDate,
            "PREVIEW" | "SNIPPET" => {
                // RFC 8970 3.2: (LAZY) lets a server skip previews it has
                // not made yet; Satchel makes them at delivery, so it is
                // the same item. FUZZY and LAZY=FUZZY are the drafts' forms.
                let mut fuzzy = name == "SNIPPET";
                if self.peek() == Some(b' ') && self.s.get(self.i + 1) == Some(&b'(') {
                    self.sp()?;
                    for m in self.list_of(false, |p| p.atom_upper())? {
                        match m.as_str() {
                            "LAZY" => {}
                            "FUZZY" | "LAZY=FUZZY" => fuzzy = true,
                            other => return Err(format!("unknown {name} modifier {other}")),
                        }
                    }
                }
                FetchAttr::Preview(match (name.as_str(), fuzzy) {
                    ("SNIPPET", _) => PreviewForm::Snippet,
                    (_, true) => PreviewForm::Fuzzy,
                    _ => PreviewForm::Preview,
                })
            }
            "THREADID" => FetchAttr::ThreadId,
            "BODY" if self.peek() != Some(b'[') => FetchAttr::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAttr::Section {
                    section,
                    partial,
                    peek: name == "BODY.PEEK",
                }
            }
            "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
                self.byte(b'[')?;
                let mut part = Vec::new();
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    part.push(self.nz_number32()?);
                    if !self.eat(b'.') {
                        break;
                    }
                }
                self.byte(b']')?;
                if name == "BINARY.SIZE" {
                    FetchAttr::BinarySize(part)
                } else {
                    FetchAttr::Binary {
                        part,
                        partial: self.partial()?,
                        peek: name == "BINARY.PEEK",
                    }
                }
            }
            "" => {
                return Err(format!(
                    "expected a fetch item at {:?}",
                    self.rest_preview()
                ));
            }
            other => return Err(format!("unknown fetch item {other}")),
        })
    }

    /// `[section]` of BODY[...]: part numbers, then HEADER, HEADER.FIELDS
    /// (list), HEADER.FIELDS.NOT (list), TEXT or MIME.
    fn section(&mut self) -> R<Section> {
        self.byte(b'[')?;
        let mut part = Vec::new();
        let mut text = None;
        loop {
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                if part.len() >= mime::section::MAX_PART_DEPTH {
                    return Err("too many part numbers".into());
                }
                part.push(self.nz_number32()?);
                if self.eat(b'.') {
                    // A dot promises another number or a section-text
                    // (RFC 9051 section 9, section-spec).
                    if self.peek() == Some(b']') {
                        return Err("a section may not end in a dot".into());
                    }
                    continue;
                }
                break;
            }
            if self.peek() == Some(b']') {
                break;
            }
            let word = {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.')
                {
                    self.i += 1;
                }
                String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_uppercase()
            };
            text = Some(match word.as_str() {
                "HEADER" => SectionText::Header,
                "TEXT" => SectionText::Text,
                "MIME" if !part.is_empty() => SectionText::Mime,
                "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    let fields = self.list_of(false, |p| p.astring())?;
                    SectionText::HeaderFields {
                        not: word.ends_with(".NOT"),
                        fields,
                    }
                }
                other => return Err(format!("unknown section {other:?}")),
            });
            break;
        }
        self.byte(b']')?;
        Ok(Section { part, text })
    }

    fn partial(&mut self) -> R<Option<(u64, u64)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let origin = self.number()?;
        self.byte(b'.')?;
        let len = self.number()?;
        if len == 0 {
            return Err("a partial fetch needs a non-zero length".into());
        }
        self.byte(b'>')?;
        Ok(Some((origin, len)))
    }

    fn store(&mut self, uid: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            for (name, value) in self.modifiers()? {
                match name.as_str() {
                    "UNCHANGEDSINCE" => unchanged_since = Some(value),
                    other => return Err(format!("unknown STORE modifier {other}")),
                }
            }
            self.sp()?;
        }
        let mode = if self.eat(b'+') {
            StoreMode::Add
        } else if self.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        let item = self.atom_upper()?;
        let silent = match item.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            other => return Err(format!("STORE takes FLAGS or FLAGS.SILENT, not {other}")),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(CommandBody::Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        })
    }

    fn copy_move(&mut self, uid: bool, is_move: bool) -> R<CommandBody> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        })
    }
}

const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn month(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `1-Feb-1994` (RFC 9051 date).
pub fn parse_date(s: &[u8]) -> Option<Date> {
    let mut it = s.split(|&b| b == b'-');
    let (d, m, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || d.len() > 2 || y.len() != 4 {
        return None;
    }
    let (d, m, y) = (digits(d)? as u32, month(m)?, digits(y)?);
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(Date(days_from_civil(y, m, d)))
}

/// `"17-Jul-1996 02:44:25 -0700"` without the quotes; the day may be
/// space-padded.
pub fn parse_date_time(s: &[u8]) -> Option<DateTime> {
    let s = if s.first() == Some(&b' ') { &s[1..] } else { s };
    let mut parts = s.split(|&b| b == b' ');
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let day = parse_date(date)?.0;
    let mut t = time.split(|&b| b == b':');
    let (h, mi, sec) = (digits(t.next()?)?, digits(t.next()?)?, digits(t.next()?)?);
    if t.next().is_some() || h > 23 || mi > 59 || sec > 60 || time.len() != 8 {
        return None;
    }
    if zone.len() != 5 || !matches!(zone[0], b'+' | b'-') {
        return None;
    }
    let zh = digits(&zone[1..3])?;
    let zm = digits(&zone[3..5])?;
    if zm > 59 {
        return None;
    }
    let offset = (zh * 60 + zm) as i32 * if zone[0] == b'-' { -1 } else { 1 };
    let local = day * 86400 + h * 3600 + mi * 60 + sec;
    Some(DateTime {
        unix: local - offset as i64 * 60,
        tz_minutes: offset,
    })
}
