//! The values the store hands out and takes in.

use std::fmt;

/// An account, as the store that made it names it: distinct from a
/// mailbox's id and from any number, so that one cannot be passed for the
/// other. Shown as `#N` in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub i64);

/// A mailbox, as the store that made it names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl AccountId {
    /// The account's own spam model's scope (0 is the server's).
    pub fn scope(self) -> i64 {
        self.0
    }
}

/// Largest message the store takes, from any door (SMTP's SIZE, IMAP's
/// APPENDLIMIT, `deliver`, `import`).
pub const MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;

/// The hierarchy delimiter of mailbox names, at every door.
pub const DELIMITER: char = '/';

/// Every new account gets exactly these mailboxes (contract, "Default mailboxes").
pub const DEFAULT_MAILBOXES: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Junk", Some(SpecialUse::Junk)),
    (POSSIBLE_JUNK, None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
];

/// The mailbox the spam filter files uncertain mail into; it has no
/// special-use attribute, so it is known by name.
pub const POSSIBLE_JUNK: &str = "Possible Junk";

/// What copying or moving mail from one mailbox to another teaches the spam
/// filter (contract, "Spam filing"): into Junk is spam; out of Junk or
/// Possible Junk into anything but Trash is ham; `None`, nothing. The store
/// applies it inside every copy and move, whichever door asks for it.
pub fn training(from: (&str, Option<SpecialUse>), to: (&str, Option<SpecialUse>)) -> Option<bool> {
    let junk = |m: (&str, Option<SpecialUse>)| m.1 == Some(SpecialUse::Junk);
    let possible = |m: (&str, Option<SpecialUse>)| m.0 == POSSIBLE_JUNK;
    let trash = |m: (&str, Option<SpecialUse>)| m.1 == Some(SpecialUse::Trash);
    if junk(to) && !junk(from) {
        Some(true)
    } else if (junk(from) || possible(from)) && !junk(to) && !possible(to) && !trash(to) {
        Some(false)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub address: String,
    pub is_admin: bool,
    /// 0 means no quota.
    pub quota_bytes: i64,
    /// 0 means no limit on the number of messages.
    pub quota_messages: i64,
    /// This account's own POP3 delete mode; `None` follows the server's.
    pub pop3_delete: Option<Pop3Delete>,
    /// This account's own Sent-copy rule; `None` follows the server's.
    pub sent_copy: Option<SentCopy>,
    /// Whether the account gets the junk report; `None`: when it reads
    /// mail over POP3 only.
    pub junk_report: Option<bool>,
    /// Unix time up to which its last junk report looked (0: never).
    pub junk_report_at: i64,
    /// The IMAP URL of the server it moved to (LOGIN-REFERRALS): IMAP
    /// logins are referred there.
    pub referral: Option<String>,
}

/// What the store knows of one account name before a password for it is
/// checked ([`crate::Logins::login_guard`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginGuard {
    /// Failed logins at the name in the window.
    pub failures: u32,
    /// When the name last logged in from this address (milliseconds since
    /// 1970), if it ever did.
    pub known_at: Option<i64>,
}

/// A web session to keep ([`crate::WebSessions::open_web_session`]).
#[derive(Debug, Clone, Copy)]
pub struct NewWebSession<'a> {
    /// What finds it: derived from the cookie's token, never the token.
    pub key: &'a str,
    pub account: AccountId,
    /// The token its forms carry.
    pub csrf: &'a str,
    /// Where the login came from and with which browser, for the user's
    /// list of sessions.
    pub client: &'a str,
    pub agent: &'a str,
}

/// A kept web session.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub key: String,
    pub account: Account,
    pub csrf: String,
    pub client: String,
    pub agent: String,
    /// Milliseconds since 1970.
    pub started: i64,
    pub last_seen: i64,
}

/// The size of the server's spam model and what it learnt from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelSummary {
    pub tokens: u64,
    pub spam: u64,
    pub ham: u64,
}

/// A training event that was taught, as `satchel spam stats` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingLogEntry {
    /// Unix time.
    pub at: i64,
    pub account: String,
    pub spam: bool,
    pub subject: String,
}

/// An account as the admin's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOverview {
    pub account: Account,
    /// Messages stored in all its mailboxes, and their bytes.
    pub messages: u64,
    pub bytes: u64,
    /// The last login through each door that saw one: (door, Unix time),
    /// by door name.
    pub logins: Vec<(String, i64)>,
}

/// Whether a submitted message gets a copy in Sent (or where the user's
/// outgoing script files it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SentCopy {
    Always,
    /// Unless the same Message-ID was put into Sent by the user's client
    /// (an IMAP APPEND) within [`crate::SENT_WINDOW_SECS`]; and an APPEND
    /// of a message the server already filed there is not stored again.
    #[default]
    UnlessAppended,
    /// The client keeps its own Sent copies.
    Never,
}

impl SentCopy {
    pub const ALL: [SentCopy; 3] = [SentCopy::Always, SentCopy::UnlessAppended, SentCopy::Never];

    /// The name in the config, the CLI and the index.
    pub fn as_str(self) -> &'static str {
        match self {
            SentCopy::Always => "always",
            SentCopy::UnlessAppended => "unless-appended",
            SentCopy::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<SentCopy> {
        SentCopy::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// What POP3's QUIT does to the messages a session deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop3Delete {
    /// Remove them for good.
    Expunge,
    /// Move them to Trash.
    Trash,
    /// Keep them for IMAP and the web; POP3 never lists them again.
    Hide,
}

impl Pop3Delete {
    pub const ALL: [Pop3Delete; 3] = [Pop3Delete::Expunge, Pop3Delete::Trash, Pop3Delete::Hide];

    /// The name in the config and the index: `expunge`, `trash`, `hide`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pop3Delete::Expunge => "expunge",
            Pop3Delete::Trash => "trash",
            Pop3Delete::Hide => "hide",
        }
    }

    pub fn parse(s: &str) -> Option<Pop3Delete> {
        Pop3Delete::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
}

impl SpecialUse {
    /// The attribute as IMAP writes it, e.g. `\Junk`.
    pub fn as_imap(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute, case-insensitively, with or without the backslash.
    pub fn parse(s: &str) -> Option<SpecialUse> {
        let s = s.strip_prefix('\\').unwrap_or(s);
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|u| u.as_imap()[1..].eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    pub account_id: AccountId,
    /// UTF-8, levels separated by [`DELIMITER`].
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub subscribed: bool,
}

/// The five system flags a message can carry; `\Recent` is session state, not stored.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);
    /// Hidden from POP3 by `[pop3] delete = "hide"`; never shown over IMAP.
    pub const POP3_HIDDEN: Flags = Flags(32);

    const NAMES: [(Flags, &'static str); 5] = [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ];

    pub const fn empty() -> Flags {
        Flags(0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits & 63)
    }
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// Parses one system flag (`\Seen`, case-insensitive).
    pub fn parse(name: &str) -> Option<Flags> {
        Flags::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }

    /// The IMAP names of the system flags that are set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A point in time as the message's internal date: seconds since the epoch
/// and the zone it was given in, so an APPEND date comes back as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalDate {
    pub unix: i64,
    /// Minutes east of UTC.
    pub tz_minutes: i32,
}

impl InternalDate {
    pub fn now() -> InternalDate {
        InternalDate {
            unix: crate::unix_now(),
            tz_minutes: 0,
        }
    }
}

/// Cached, parsed views of a message, computed once at delivery by the caller
/// (the store does not parse mail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCache {
    /// IMAP ENVELOPE, in IMAP syntax (bytes: headers may hold 8-bit text).
    pub envelope: Option<Vec<u8>>,
    /// IMAP BODYSTRUCTURE with extension data, in IMAP syntax.
    pub bodystructure: Option<Vec<u8>>,
    /// PREVIEW (RFC 8970): the body's first text; None when it has none,
    /// or was stored before previews were kept.
    pub preview: Option<String>,
}

impl From<&mime::Analysis> for MessageCache {
    /// The views as computed at delivery.
    fn from(a: &mime::Analysis) -> MessageCache {
        MessageCache {
            envelope: Some(a.envelope.clone()),
            bodystructure: Some(a.bodystructure.clone()),
            preview: a.preview.clone(),
        }
    }
}

/// A message to put into a mailbox.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// The message exactly as received; stored verbatim.
    pub raw: &'a [u8],
    /// RFC822.SIZE: the octets a client is served (bare LFs counted as CRLF).
    pub size: u64,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: InternalDate,
    pub cache: MessageCache,
    /// The spam verdict it was filed by, for mail that was scored.
    pub spam: Option<SpamNote>,
}

/// A spam score and its reasons as the index keeps them, so the web can
/// show why a message is where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamNote {
    pub score: i64,
    /// `NAME(score)` items separated by spaces, as in `X-Spam-Status:`.
    pub reasons: String,
}

/// An entry of a user's allow or block list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSender {
    /// An address (`bob@example.com`) or a domain (`@example.com`), lower case.
    pub pattern: String,
    /// Allowed (never junk) or blocked (always junk).
    pub allow: bool,
}

/// Where an appended message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub mailbox_id: MailboxId,
    pub uidvalidity: u32,
    pub uid: u32,
    pub modseq: u64,
}

/// One message in a mailbox, as the index knows it (the cached views are
/// fetched separately, by [`crate::Messages::views`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: InternalDate,
    pub size: u64,
    pub blob: BlobHash,
    /// Unix seconds it was saved into this mailbox (SAVEDATE, RFC 8514);
    /// the internal date for messages saved before that was kept.
    pub saved_at: i64,
}

/// What a session keeps of each message while its mailbox is selected:
/// what numbers it and what changes ([`crate::Messages::states`]). Size,
/// dates and body are read when a command asks for them, so that a session
/// holds 32 bytes a message (thousands of idle sessions, big mailboxes);
/// the keywords, mostly none, in a boxed slice (no spare capacity word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub uid: u32,
    pub modseq: u64,
    pub flags: Flags,
    pub keywords: Box<[String]>,
}

impl From<MessageMeta> for MessageState {
    fn from(m: MessageMeta) -> MessageState {
        MessageState {
            uid: m.uid,
            modseq: m.modseq,
            flags: m.flags,
            keywords: m.keywords.into_boxed_slice(),
        }
    }
}

/// What a flag update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// A flag update: system flags and keywords together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub op: FlagOp,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

impl FlagChange {
    /// The flags and keywords after this change; keywords compare without
    /// case, and the POP3 hidden mark survives a replace.
    pub fn apply(&self, flags: Flags, keywords: &[String]) -> (Flags, Vec<String>) {
        let change = self;
        let mut f = flags;
        let mut k: Vec<String> = keywords.to_vec();
        let hidden = flags.contains(Flags::POP3_HIDDEN);
        match change.op {
            FlagOp::Replace => {
                f = change.flags;
                if hidden {
                    f.insert(Flags::POP3_HIDDEN);
                }
                k = Vec::new();
                for kw in &change.keywords {
                    if !k.iter().any(|x| x.eq_ignore_ascii_case(kw)) {
                        k.push(kw.clone());
                    }
                }
            }
            FlagOp::Add => {
                f.insert(change.flags);
                for kw in &change.keywords {
                    if !k.iter().any(|x| x.eq_ignore_ascii_case(kw)) {
                        k.push(kw.clone());
                    }
                }
            }
            FlagOp::Remove => {
                f.remove(change.flags);
                k.retain(|x| !change.keywords.iter().any(|kw| kw.eq_ignore_ascii_case(x)));
            }
        }
        (f, k)
    }
}

/// A message whose flags changed, with its new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: u32,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub modseq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFlagsResult {
    /// Messages whose flags changed.
    pub updated: Vec<FlagUpdate>,
    /// UIDs left alone because they changed after UNCHANGEDSINCE (RFC 7162).
    pub refused: Vec<u32>,
}

/// Which kept keys a caller needs ([`crate::Messages::sort_keys`]); the
/// others come back empty, so a sort by date allocates no text at all (a
/// 100,000-message mailbox is 100,000 rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortParts {
    /// Subject, reply mark, addresses and display names (SORT).
    pub text: bool,
    /// Subject, reply mark, Message-ID and References (THREAD).
    pub threads: bool,
    /// The indexed header fields' text (SEARCH).
    pub fields: bool,
}

/// One message as SORT and THREAD see it ([`crate::Messages::sort_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortEntry {
    pub uid: u32,
    /// Unix seconds (ARRIVAL, and DATE when the message has no Date).
    pub internal_date: i64,
    pub size: u64,
    pub keys: crate::SortKeys,
}

/// What changed in a mailbox after a MODSEQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxDelta {
    pub highestmodseq: u64,
    pub uidnext: u32,
    /// Messages added or changed, in UID order.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged, in UID order.
    pub expunged: Vec<u32>,
    /// Whether `expunged` holds every expunge after the MODSEQ asked
    /// about. False when records from then have been pruned
    /// ([`crate::Upkeep::prune_expunged`]): the caller then takes every
    /// UID it knows and the mailbox lacks as gone.
    pub expunged_complete: bool,
}

/// Counts for STATUS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub recent: u32,
    pub size: u64,
    /// Octets of the messages with \Deleted: what EXPUNGE would free
    /// (STATUS DELETED-STORAGE of the QUOTA extension, RFC 9208).
    pub deleted_size: u64,
}

/// Where COPY or MOVE put the messages (for COPYUID, RFC 4315).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyResult {
    pub uidvalidity: u32,
    /// (source UID, destination UID) in source UID order.
    pub pairs: Vec<(u32, u32)>,
    /// For a move, the source mailbox's MODSEQ once the messages left it
    /// (0 for a copy, or when nothing moved): the moving session's view
    /// takes its own expunge in without reading it back.
    pub source_modseq: u64,
}

/// What an expunge removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expunged {
    /// The UIDs that were there and are gone, in UID order.
    pub uids: Vec<u32>,
    /// The mailbox's MODSEQ after the expunge (0 when nothing went).
    pub modseq: u64,
}

/// SHA-256 of a blob, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobHash(pub String);

/// What one Bayes model knows of some tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCounts {
    /// (spam, ham) messages trained.
    pub totals: (u64, u64),
    /// (spam, ham) messages each token was seen in, in the order asked.
    pub counts: Vec<(u64, u64)>,
}

/// A Bayes model's totals, and its tokens changed since some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChanges {
    /// (spam, ham) messages trained; their sum is the model's generation.
    pub totals: (u64, u64),
    pub tokens: Vec<(String, (u64, u64))>,
}

/// One of a user's Sieve scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    pub name: String,
    pub active: bool,
    /// Octets of its text.
    pub size: u64,
}

/// A user filed a message as spam or as not spam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingEvent {
    /// Names the event to [`crate::SpamData::finish_training`].
    pub id: i64,
    pub account: AccountId,
    pub blob: BlobHash,
    pub spam: bool,
}

/// A mailbox changed: sessions that show it should look again.
///
/// Mailbox 0 (no mailbox has that id) speaks of the account instead: with
/// MODSEQ 0 its subscriptions changed, with [`Change::ACCOUNT_REMOVED`]
/// the account is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub account_id: AccountId,
    pub mailbox_id: MailboxId,
    pub modseq: u64,
}

impl Change {
    /// The MODSEQ that, on mailbox 0, says the account was removed.
    pub const ACCOUNT_REMOVED: u64 = u64::MAX;

    /// Whether this says that the account was removed.
    pub fn removes_account(&self) -> bool {
        self.mailbox_id == MailboxId(0) && self.modseq == Change::ACCOUNT_REMOVED
    }
}

/// A message the server handled, as the message trace keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceEntry {
    /// Unix time.
    pub at: i64,
    /// "in" (to local accounts) or "out" (sent by a user).
    pub direction: String,
    /// The door it came by: smtp, submission, http, deliver.
    pub door: String,
    /// The client: `helo [address]`, or empty.
    pub client: String,
    pub mail_from: String,
    /// Without its angle brackets.
    pub message_id: String,
    pub subject: String,
    /// The SPF, DKIM and DMARC results (`Authentication-Results:`).
    pub auth: String,
    /// The queue ID of what was queued for remote recipients.
    pub qid: String,
    pub recipients: Vec<TraceRecipient>,
    /// What the remote servers answered, oldest first (read back only).
    #[serde(default)]
    pub answers: Vec<TraceAnswer>,
}

/// What happened to one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceRecipient {
    pub rcpt: String,
    /// The local account it went to, if any.
    pub account: String,
    /// The mailboxes its copies went to.
    pub mailboxes: Vec<String>,
    pub score: Option<i64>,
    pub reasons: String,
    /// delivered, queued, rejected, discarded, forwarded, sent-copy.
    pub outcome: String,
    /// Why, when it was not simply delivered: a rejection's reason, where
    /// a filter forwarded it.
    pub note: String,
}

/// A remote server's answer about one recipient of a queued message.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceAnswer {
    pub at: i64,
    pub rcpt: String,
    /// delivered, failed, deferred.
    pub outcome: String,
    pub answer: String,
}

/// What an account stores against its quota (a limit of 0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub messages: u64,
    pub bytes: u64,
    pub quota_messages: u64,
    pub quota_bytes: u64,
}

impl Usage {
    /// Why adding `messages` more of `bytes` in all would pass the quota.
    pub fn refuses(&self, messages: u64, bytes: u64) -> Option<String> {
        if self.quota_messages > 0 && self.messages + messages > self.quota_messages {
            return Some(format!(
                "it holds {} of its {} messages",
                self.messages, self.quota_messages
            ));
        }
        if self.quota_bytes > 0 && self.bytes + bytes > self.quota_bytes {
            return Some(format!(
                "it uses {} of its {} bytes and the message needs {}",
                self.bytes, self.quota_bytes, bytes
            ));
        }
        None
    }

    /// Whether not even a one-byte message fits any more.
    pub fn full(&self) -> Option<String> {
        self.refuses(1, 1)
    }
}

/// A delivery's messages checked (none empty, none over
/// [`MAX_MESSAGE_SIZE`]) and their distinct bodies: the bodies, and which
/// of them each message stores. Recipients whose copies are byte for byte
/// the same share one body (every backend stores it once).
pub(crate) fn distinct_bodies<'a>(
    items: &[(MailboxId, NewMessage<'a>)],
) -> Result<(Vec<&'a [u8]>, Vec<usize>), crate::Error> {
    if items.iter().any(|(_, m)| m.raw.is_empty()) {
        return Err(crate::Error::EmptyMessage);
    }
    if items
        .iter()
        .any(|(_, m)| m.raw.len() as u64 > MAX_MESSAGE_SIZE)
    {
        return Err(crate::Error::TooLarge);
    }
    let mut distinct: Vec<&'a [u8]> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let bodies = items
        .iter()
        .map(|(_, m)| {
            *seen.entry(m.raw).or_insert_with(|| {
                distinct.push(m.raw);
                distinct.len() - 1
            })
        })
        .collect();
    Ok((distinct, bodies))
}

/// The failure count's key of a client address.
pub(crate) fn address_key(ip: std::net::IpAddr) -> String {
    format!("ip:{ip}")
}

/// The failure count's key of an account name, in any case; a name past
/// the longest address (RFC 5321 4.5.3.1) counts under its first 320
/// characters, so a guesser cannot make rows of any size.
pub(crate) fn name_key(name: &str) -> String {
    let name: String = name.chars().take(320).collect();
    format!("name:{}", name.to_lowercase())
}
