//! Parsed IMAP commands (RFC 9051 section 6, RFC 3501, and the extensions
//! Satchel advertises).

use mime::section::Section;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// A mailbox name as sent: modified UTF-7 or UTF-8, depending on what the
/// session enabled; the session decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxArg(pub Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate {
        mechanism: String,
        /// SASL-IR initial response, still base64 ("=" is an empty one).
        initial: Option<Vec<u8>>,
    },
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Enable(Vec<String>),
    Select {
        mailbox: MailboxArg,
        read_only: bool,
        condstore: bool,
        /// The QRESYNC parameter (RFC 7162 3.2.5).
        qresync: Option<Qresync>,
    },
    Create {
        mailbox: MailboxArg,
        special_use: Vec<String>,
    },
    Delete(MailboxArg),
    Rename {
        from: MailboxArg,
        to: MailboxArg,
    },
    Subscribe(MailboxArg),
    Unsubscribe(MailboxArg),
    List(ListCommand),
    Namespace,
    Status {
        mailbox: MailboxArg,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: MailboxArg,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    /// CANCELUPDATE (RFC 5267 4.3): the tags whose updates end.
    CancelUpdate(Vec<String>),
    /// NOTIFY (RFC 5465): `None` for NOTIFY NONE.
    Notify(Option<NotifySet>),
    Expunge {
        /// UID EXPUNGE (RFC 4315).
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        charset: Option<String>,
        /// RETURN (...) of ESEARCH (RFC 4731); `Some(vec![])` is RETURN ().
        ret: Option<Vec<SearchReturn>>,
        key: SearchKey,
    },
    /// SORT (RFC 5256), with RETURN of ESORT (RFC 5267).
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    /// THREAD (RFC 5256).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        /// Macros (ALL, FAST, FULL) come expanded.
        items: Vec<FetchAttr>,
        /// CHANGEDSINCE of CONDSTORE (RFC 7162).
        changed_since: Option<u64>,
        /// The VANISHED modifier of QRESYNC (RFC 7162 3.2.6): UID FETCH
        /// with CHANGEDSINCE only.
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxArg,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: MailboxArg,
    },
    Id(Vec<(String, Option<String>)>),
    /// RFC 4978: COMPRESS and its mechanism.
    Compress(String),
    /// RFC 9208 4.2: the quota root's resources.
    GetQuota(Vec<u8>),
    /// RFC 9208 4.3: the quota roots of a mailbox, and their quotas.
    GetQuotaRoot(MailboxArg),
    /// RFC 9208 4.1 (only with QUOTASET): each (resource, limit).
    SetQuota {
        root: Vec<u8>,
        limits: Vec<(String, u64)>,
    },
}

/// What a QRESYNC client knew of a mailbox when it last had it open
/// (RFC 7162 3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs it may still hold (all, when absent).
    pub known_uids: Option<SequenceSet>,
    /// Message numbers and the UIDs they had, for a server that cannot
    /// answer from `modseq` exactly; Satchel always can, or answers every
    /// UID it lacks, so it checks their shape only.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// LSUB, or XLIST: the old forms that map onto LIST.
    pub kind: ListKind,
    pub selection: Vec<String>,
    pub reference: MailboxArg,
    pub patterns: Vec<MailboxArg>,
    pub ret: Vec<ListReturn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    List,
    Lsub,
    Xlist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    AppendLimit,
    /// RFC 9208 (QUOTA): what EXPUNGE would free, in KiB.
    DeletedStorage,
    /// RFC 8474 4.2: the mailbox's ID.
    MailboxId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<DateTime>,
    pub data: Vec<u8>,
    /// Sent as literal8 (`~{n}`, RFC 3516): may hold NUL bytes.
    pub binary: bool,
    /// Sent as `UTF8 (~{n})` (RFC 6855 4): only once UTF8=ACCEPT is on.
    pub utf8: bool,
    /// `CATENATE (...)` (RFC 4469): the parts the message is made of, in
    /// order; `data` is empty then.
    pub catenate: Vec<CatPart>,
}

/// One part of a CATENATE (RFC 4469 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT {n}`: these bytes.
    Text(Vec<u8>),
    /// `URL "..."`: a stored message or part of one (RFC 5092).
    Url(String),
}

/// A date-time as IMAP writes it: `"dd-Mon-yyyy hh:mm:ss +zzzz"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub unix: i64,
    pub tz_minutes: i32,
}

/// A search date (`1-Feb-1994`): days since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<(SeqNum, SeqNum)>),
    /// `$`: the result saved by SEARCH RETURN (SAVE) (RFC 5182).
    Saved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Value(u32),
    /// `*`: the largest number in use.
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    /// RFC 5267 4.1: keep telling the client how the result changes.
    Update,
    /// RFC 5267 4.2: a hint that updates may follow; changes nothing.
    Context,
    /// RFC 5267 4.4: the results at these 1-based positions, low to high.
    Partial(u32, u32),
}

/// One key of a SORT, maybe reversed (RFC 5256 3, RFC 5957).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    /// Dovecot's REFS: REFERENCES without gathering by subject, threads
    /// ordered by their newest message (Roundcube asks for it when offered).
    Refs,
    References,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Sequence(SequenceSet),
    Uid(SequenceSet),
    /// A system flag or keyword is set (`\Seen`, `$Junk`); `Recent`, `New`
    /// and `Old` are session state and have their own keys.
    Flag(String),
    Unflag(String),
    Recent,
    New,
    Old,
    Before(Date),
    On(Date),
    Since(Date),
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Larger(u64),
    Smaller(u64),
    /// WITHIN (RFC 5032): the internal date more than this many seconds ago.
    Older(u64),
    /// WITHIN: the internal date at most this many seconds ago.
    Younger(u64),
    /// OBJECTID (RFC 8474 6): the message with this EMAILID or THREADID.
    EmailId(String),
    ThreadId(String),
    /// SAVEDATE (RFC 8514 5): the save date's day (UTC).
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    SaveDateSupported,
    /// A header field contains the string (empty: the field exists).
    Header(String, Vec<u8>),
    Body(Vec<u8>),
    Text(Vec<u8>),
    ModSeq(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// OBJECTID (RFC 8474): the message's and its thread's IDs.
    EmailId,
    ThreadId,
    /// RFC 8514: when the message was saved into this mailbox.
    SaveDate,
    /// RFC 8970: the body's first text, in the form asked for.
    Preview(PreviewForm),
    /// BODY[section]<partial> and BODY.PEEK[...].
    Section {
        section: Section,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    /// BINARY[part]<partial> and BINARY.PEEK (RFC 3516).
    Binary {
        part: Vec<u32>,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    BinarySize(Vec<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// NOTIFY SET (RFC 5465 3): which mailboxes to watch for which events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `SET STATUS`: a STATUS of every watched mailbox at once.
    pub status: bool,
    pub groups: Vec<NotifyGroup>,
}

/// One `(filter-mailboxes events)` of NOTIFY SET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    /// Empty for NONE.
    pub events: Vec<NotifyEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    /// Expunges wait for a command that may tell them (RFC 5465 6.1).
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// These mailboxes and every one below them.
    Subtree(Vec<MailboxArg>),
    Mailboxes(Vec<MailboxArg>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the FETCH items to send for each new message (selected only).
    MessageNew(Vec<FetchAttr>),
    MessageExpunge,
    FlagChange,
    MailboxName,
    SubscriptionChange,
    /// An event this server does not watch (AnnotationChange, metadata):
    /// refused with BADEVENT.
    Other(String),
}

/// How a preview was asked for: RFC 8970's PREVIEW, or the drafts before
/// it that Dovecot still answers (PREVIEW=FUZZY, SNIPPET=FUZZY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewForm {
    /// `PREVIEW` or `PREVIEW (LAZY)`: `PREVIEW "text"`.
    Preview,
    /// `PREVIEW (FUZZY)` or `(LAZY=FUZZY)`: `PREVIEW (FUZZY "text")`.
    Fuzzy,
    /// `SNIPPET`, with or without `(FUZZY)`: `SNIPPET (FUZZY "text")`.
    Snippet,
}
