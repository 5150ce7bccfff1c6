//! The Satchel mail store: one trait, [`MailStore`], that every door uses, and
//! its backends. The embedded backend keeps the index in SQLite and bodies in
//! content-addressed files; a PostgreSQL backend implements the same trait.
//!
//! Everything a door changes is published on the change feed
//! ([`Feed::subscribe`]) so other sessions, doors and processes see it.

mod blob;
pub mod migrate;
pub mod names;
mod outbound;
mod password;
mod postgres;
mod sqlite;
mod types;

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::sync::broadcast;

/// The sort, thread and header-search keys kept per message ([`Messages::sort_keys`]).
pub use mime::sort::SortKeys;
pub use outbound::*;
pub use postgres::{PgStore, without_password};
pub use sqlite::{CheckReport, Finding, SqliteStore};
pub use types::*;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("account {0} already exists")]
    AccountExists(String),
    #[error("no account {0}; `satchel user list` shows the accounts")]
    NoAccount(String),
    #[error("no alias {0}; `satchel alias list` shows the aliases")]
    NoAlias(String),
    #[error("{0} is already an account or an alias")]
    AliasExists(String),
    #[error("mailbox {0:?} already exists")]
    MailboxExists(String),
    #[error("no mailbox {0:?}")]
    NoMailbox(String),
    #[error("invalid address {0:?}: {1}")]
    InvalidAddress(String, &'static str),
    #[error("invalid mailbox name {0:?}: {1}")]
    InvalidMailboxName(String, &'static str),
    #[error("the message is empty; a message needs at least one byte")]
    EmptyMessage,
    #[error("the message is larger than {} bytes", MAX_MESSAGE_SIZE)]
    TooLarge,
    /// Storing would pass the account's quota (RFC 9208); the address and
    /// how full it is.
    #[error("the mailbox of {0} is full: {1}")]
    OverQuota(String, String),
    #[error("INBOX cannot be deleted")]
    InboxUndeletable,
    /// Junk, Possible Junk, Sent, Drafts and Trash: filing and the spam
    /// training look for them by name and role, so they stay.
    #[error(
        "{0} is one of the default mailboxes mail is filed into; it cannot be deleted or renamed"
    )]
    DefaultMailbox(String),
    #[error("a mailbox cannot be moved under itself")]
    RenameIntoItself,
    #[error("mailbox {0:?} has used up its UIDs; recreate it to start a new UIDVALIDITY")]
    UidsExhausted(String),
    #[error("database error: {0}")]
    Db(String),
    /// The disk (or the filesystem's quota) holding the store is full:
    /// nothing was stored, and the same write can work once space is back.
    #[error("the disk holding the store is full ({0}); free some space or grow it")]
    NoSpace(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password hashing failed: {0}")]
    Password(String),
    #[error(
        "the store in {path} has schema version {found}, newer than this Satchel knows ({known}); run a newer satchel"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no script named {0:?}")]
    NoScript(String),
    #[error("a script named {0:?} already exists")]
    ScriptExists(String),
    #[error("script {0:?} is active; activate another (or none) before deleting it")]
    ScriptActive(String),
    #[error("invalid script name {0:?}: {1}")]
    InvalidScriptName(String, &'static str),
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error("the index could not commit this change ({0}); nothing was changed, try again")]
    Commit(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One mail store: every area's trait, implemented by one backend struct.
/// Doors and the CLI hold a `dyn MailStore` and call any area's methods
/// (`use store::prelude::*` brings the traits into scope). Methods that
/// take an address accept any case; ids come from earlier answers of the
/// same store.
pub trait MailStore:
    Accounts
    + Mailboxes
    + Messages
    + SpamData
    + Scripts
    + Upkeep
    + Feed
    + Outbound
    + Traces
    + Logins
    + WebSessions
{
}

impl<T> MailStore for T where
    T: Accounts
        + Mailboxes
        + Messages
        + SpamData
        + Scripts
        + Upkeep
        + Feed
        + Outbound
        + Traces
        + Logins
        + WebSessions
{
}

/// Every area trait, for `use store::prelude::*`.
pub mod prelude {
    pub use crate::{
        Accounts, Feed, Logins, MailStore, Mailboxes, Messages, Outbound, Scripts, SpamData,
        Traces, Upkeep, WebSessions,
    };
}

/// Accounts, their aliases and settings, and logging in.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates an account with the default mailboxes, all in one transaction.
    async fn create_account(&self, address: &str, password: &str, admin: bool) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    async fn account(&self, address: &str) -> Result<Option<Account>>;
    /// Makes `alias` (an address, or `@domain`: the domain's catch-all)
    /// deliver to the account `account`, which may then also send as it.
    async fn add_alias(&self, alias: &str, account: &str) -> Result<()>;
    async fn remove_alias(&self, alias: &str) -> Result<()>;
    /// Every alias with the address of its account, by alias.
    async fn aliases(&self) -> Result<Vec<(String, String)>>;
    /// The account the domain's catch-all (`@domain`) delivers to.
    async fn catch_all(&self, domain: &str) -> Result<Option<Account>>;
    /// Whether any account or alias has an address in `domain`.
    async fn has_domain(&self, domain: &str) -> Result<bool>;
    async fn set_password(&self, address: &str, password: &str) -> Result<()>;
    /// The account's own POP3 delete mode (`None`: the server's).
    async fn set_pop3_delete(&self, address: &str, mode: Option<Pop3Delete>) -> Result<()>;
    /// The IMAP URL of the server the account has moved to, where IMAP
    /// logins are referred (LOGIN-REFERRALS, RFC 2221); `None`: served
    /// here.
    async fn set_referral(&self, address: &str, url: Option<&str>) -> Result<()>;
    /// The account's own Sent-copy rule (`None`: the server's).
    async fn set_sent_copy(&self, address: &str, rule: Option<SentCopy>) -> Result<()>;
    /// Removes the account, its mailboxes and messages, and the blobs only it used.
    async fn remove_account(&self, address: &str) -> Result<()>;
    /// Whether the account gets the junk report (`None`: the default,
    /// when it reads mail over POP3 only).
    async fn set_junk_report(&self, address: &str, on: Option<bool>) -> Result<()>;
    /// Notes that the account's junk report covered mail up to `up_to`
    /// (Unix time; never moves back).
    async fn junk_report_sent(&self, account: AccountId, up_to: i64) -> Result<()>;
    /// The server's secret `name`: `fresh` the first time it is asked for,
    /// the same bytes ever after, in every process on this store.
    async fn secret(&self, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>>;
    /// Uses the single-use link `id` (kept until `expires`): `true` the first
    /// time, `false` ever after.
    async fn use_link(&self, id: &str, expires: i64) -> Result<bool>;
    /// Sets the account's quota: bytes of stored messages and number of
    /// messages, 0 for none.
    async fn set_quota(&self, address: &str, bytes: u64, messages: u64) -> Result<()>;
    /// What the account stores, and its quota.
    async fn usage(&self, account: AccountId) -> Result<Usage>;
    /// Gives (`true`) or takes the admin role.
    async fn set_admin(&self, address: &str, admin: bool) -> Result<()>;
    /// Every account with what it stores and its last login through each
    /// door, for the admin's list.
    async fn account_overview(&self) -> Result<Vec<AccountOverview>>;
    /// Notes that `account` logged in through `door` now.
    async fn record_login(&self, account: AccountId, door: &str) -> Result<()>;
    /// The account if `password` is right, `None` otherwise (also for unknown
    /// addresses, after the same amount of work).
    async fn authenticate(&self, address: &str, password: &str) -> Result<Option<Account>>;
    /// Takes the account's POP3 maildrop lock (RFC 1939 8: one session
    /// at a time) for every process serving this store: `false` when
    /// another holds it. The holder gives it back with
    /// [`Accounts::release_maildrop`]; a process that dies gives back its
    /// locks with it.
    async fn take_maildrop(&self, account: AccountId) -> Result<bool>;
    async fn release_maildrop(&self, account: AccountId) -> Result<()>;
}

/// Mailboxes: the folder tree, subscriptions, status and \Recent.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>>;
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>>;
    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox>;
    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<Mailbox>>;
    /// Deletes a mailbox and its messages; INBOX cannot be deleted.
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()>;
    /// Renames a mailbox and the mailboxes under it, keeping UIDVALIDITY.
    /// Renaming INBOX moves its messages to the new mailbox instead and
    /// leaves INBOX empty (RFC 9051 6.3.6).
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// Adds or removes a subscription; names need not exist (RFC 9051 6.3.7).
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()>;
    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;
    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus>;
    /// Unseen messages per mailbox of the account, in one read (mailboxes
    /// with none are left out).
    async fn unseen_counts(&self, account: AccountId) -> Result<Vec<(MailboxId, u32)>>;
    /// The messages nobody has seen as \Recent yet, as a UID range. With
    /// `claim`, they become \Recent for the caller alone (RFC 3501 2.3.2);
    /// without (EXAMINE), the caller sees them and so will the next one.
    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<std::ops::Range<u32>>;
}

/// Messages in mailboxes: appending, reading, flags, expunge, copy and
/// move, and the bodies.
#[async_trait]
pub trait Messages: Send + Sync {
    /// Stores the message durably (blob fsync'd, index committed) and returns
    /// its UID. Only after this returns may a door acknowledge the message.
    async fn append(&self, mailbox: MailboxId, message: NewMessage<'_>) -> Result<Appended>;
    /// Appends many messages to one mailbox in one transaction (import).
    async fn append_batch(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<Vec<Appended>>;
    /// [`Messages::append_batch`] by the session that has `mailbox`
    /// selected read-write: in the same transaction it takes \Recent for
    /// everything not yet claimed (its own messages included, RFC 3501
    /// 2.3.2), and answers the UID range it claimed, so the session needs
    /// no claim of its own when it sees them.
    async fn append_claiming(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage<'_>>,
    ) -> Result<(Vec<Appended>, std::ops::Range<u32>)>;
    /// Stores a delivery to several recipients: each message into its
    /// mailbox, in one transaction, all or nothing. Recipients whose copies
    /// are byte for byte the same share one blob.
    async fn append_copies(
        &self,
        copies: Vec<(MailboxId, NewMessage<'_>)>,
    ) -> Result<Vec<Appended>>;
    /// The spam verdict a message was filed by (None: it was not scored).
    async fn spam_note(&self, mailbox: MailboxId, uid: u32) -> Result<Option<SpamNote>>;
    /// The messages of a mailbox in UID order.
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>>;
    /// A page of a mailbox's messages, newest (highest UID) first: `limit`
    /// of them after skipping `offset`; and how many the mailbox holds.
    /// A list page reads only what it shows.
    async fn newest(
        &self,
        mailbox: MailboxId,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageMeta>, u32)>;
    /// The index entries of some messages (those still there), in UID
    /// order: for commands that need their size, date or body.
    async fn details(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<MessageMeta>>;
    /// What SORT, THREAD and header SEARCH need of every message of a
    /// mailbox, in UID order, from the index alone: the internal date, the
    /// size, the sent date and the kept keys `parts` asks for. A message
    /// stored before keys were kept has them made from its body here, once.
    /// Every message's UID, MODSEQ and flags, in UID order: what a view of
    /// the mailbox starts from. Shared: the store may keep the list for the
    /// next caller and bring it up to date from its changes.
    async fn states(&self, mailbox: MailboxId) -> Result<std::sync::Arc<Vec<MessageState>>>;
    /// Shared: the store may keep the same entries for the next caller.
    async fn sort_keys(
        &self,
        mailbox: MailboxId,
        parts: SortParts,
    ) -> Result<std::sync::Arc<Vec<SortEntry>>>;
    /// The cached ENVELOPE and BODYSTRUCTURE of some messages, by UID.
    async fn views(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<(u32, MessageCache)>>;
    /// Messages added or changed, and UIDs expunged, after `modseq`: all
    /// that was committed before the call, or with `covering`, at least
    /// every change up to that MODSEQ (the newest change notice the caller
    /// acts on), which lets a read already under way answer it too.
    async fn changes_since(
        &self,
        mailbox: MailboxId,
        modseq: u64,
        covering: Option<u64>,
    ) -> Result<MailboxDelta>;
    /// Changes flags; one new MODSEQ for every message that changed.
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult>;
    /// Removes messages; answers the UIDs that were there and the MODSEQ
    /// the removal made. With
    /// `only_deleted`, only those that still carry \Deleted at that moment
    /// (IMAP EXPUNGE: another session may have undeleted one meanwhile).
    async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        only_deleted: bool,
    ) -> Result<Expunged>;
    /// Copies messages (same blobs, flags kept) into another mailbox.
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<CopyResult>;
    /// Moves messages atomically: copied and expunged in one transaction.
    /// A copy or move into or out of Junk records its training events in
    /// the same transaction (see [`training`]).
    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<CopyResult>;
    /// The stored bytes of a message, exactly as received.
    async fn read_blob(&self, blob: &BlobHash) -> Result<Vec<u8>>;
    /// Several messages' bytes, each answered on its own, in one trip to
    /// the disk threads (a FETCH of a page of headers reads twenty).
    async fn read_blobs(&self, blobs: &[BlobHash]) -> Result<Vec<Result<Vec<u8>>>>;
}

/// What the spam filter keeps: the Bayes models, the training events
/// users cause, allow and block lists, and whom each account writes to.
#[async_trait]
pub trait SpamData: Send + Sync {
    /// What the Bayes models of `scopes` (0: the server's, else an account
    /// id) know of `tokens`: one answer per scope, read at one moment.
    async fn bayes_counts(&self, scopes: &[i64], tokens: &[String]) -> Result<Vec<ModelCounts>>;
    /// The model of `scope` as it is now: its totals, and every token that
    /// changed after it had `since` messages trained (0: all of them). A
    /// reader holding the model catches up with what others trained.
    async fn bayes_changes(&self, scope: i64, since: u64) -> Result<ModelChanges>;
    /// Teaches the model of `scope` one message's tokens.
    async fn bayes_train(&self, scope: i64, tokens: &[String], spam: bool) -> Result<()>;
    /// Teaches the model of `scope` many messages' tokens at once, all or
    /// none (`satchel spam train`: one durable write for a batch instead
    /// of one per message).
    async fn bayes_train_many(
        &self,
        scope: i64,
        messages: &[Vec<String>],
        spam: bool,
    ) -> Result<()>;
    /// Up to `limit` training events users caused, oldest first; each stays
    /// until [`SpamData::finish_training`] consumes it.
    async fn pending_training(&self, limit: usize) -> Result<Vec<TrainingEvent>>;
    /// Teaches the event's tokens to the models of `scopes` and removes the
    /// event, in one transaction: a crash leaves it untaught and pending,
    /// never taught twice. `None`: the message is gone, drop the event.
    /// A taught event is logged with the message's `subject`
    /// ([`SpamData::training_log`]).
    async fn finish_training(
        &self,
        event: &TrainingEvent,
        scopes: &[i64],
        tokens: Option<&[String]>,
        subject: &str,
    ) -> Result<()>;

    /// The server's model (scope 0): its tokens and the messages trained.
    async fn model_summary(&self) -> Result<ModelSummary>;
    /// The size of the model of `scope` (the server's, or an account's own).
    async fn model_summary_of(&self, scope: i64) -> Result<ModelSummary>;
    /// The last `limit` training events from users' moves, newest first;
    /// of one account, or of all.
    async fn training_log(
        &self,
        account: Option<AccountId>,
        limit: usize,
    ) -> Result<Vec<TrainingLogEntry>>;
    /// The account's allow and block list.
    async fn spam_lists(&self, account: AccountId) -> Result<Vec<ListedSender>>;
    /// Puts an address or `@domain` on the allow (or block) list, replacing
    /// what the list said of it; `None` takes it off.
    async fn set_spam_list(
        &self,
        account: AccountId,
        pattern: &str,
        allow: Option<bool>,
    ) -> Result<()>;
    /// The senders (addresses and `@domain`s) whose remote images the user
    /// always wants shown.
    async fn image_senders(&self, account: AccountId) -> Result<Vec<String>>;
    /// Puts a sender on (`true`) or takes it off the image list.
    async fn set_image_sender(&self, account: AccountId, pattern: &str, on: bool) -> Result<()>;
    /// Notes that the account sent a message to `addresses` (lower case).
    async fn record_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()>;
    /// How many messages the account has sent to `address`.
    async fn sent_to(&self, account: AccountId, address: &str) -> Result<u64>;
    /// The addresses the account has written to, most written to first,
    /// at most `limit` (the webmail's address completion).
    async fn correspondents(&self, account: AccountId, limit: usize) -> Result<Vec<String>>;
}

/// Sieve scripts (RFC 5228, managed as RFC 5804 describes) and the
/// vacation replies they sent.
#[async_trait]
pub trait Scripts: Send + Sync {
    /// The account's scripts, by name.
    async fn sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScript>>;
    async fn sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>>;
    /// The active script's name and text, if one is active.
    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>>;
    /// Stores a script (replacing one of that name); the caller has
    /// checked that it compiles.
    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()>;
    /// Makes `name` the active script (None: no script is active).
    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()>;
    /// Deletes a script; the active one cannot be deleted (RFC 5804 2.10).
    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()>;
    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// Whether a vacation reply (`handle`) may go to `sender` now: none
    /// went within the last `days`. When it may, it is noted as sent now,
    /// in the same transaction (RFC 5230 4.2).
    async fn vacation_due(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        days: u64,
    ) -> Result<bool>;
}

/// The message trace.
#[async_trait]
pub trait Traces: Send + Sync {
    /// Keeps what happened to a message.
    async fn record_trace(&self, entry: &TraceEntry) -> Result<()>;
    /// The newest entries at or after `since` (Unix time) whose sender,
    /// recipients, Message-ID (brackets or not) or subject contain `query`
    /// (any, when empty), at most `limit`, newest first, each with the
    /// remote answers its queue ID got.
    async fn search_trace(&self, query: &str, since: i64, limit: usize) -> Result<Vec<TraceEntry>>;
    /// Forgets entries (and answers) older than `before`; how many went.
    async fn prune_trace(&self, before: i64) -> Result<usize>;
}

/// Failed logins, kept in the store so that a restart forgets no guesser
/// and every node behind a load balancer counts the same guesses (a count
/// per node would let an attacker spread them over the nodes). The doors'
/// throttle (`door::LoginThrottle`) decides the delays from these counts.
/// Account names are compared in any case; names that are no account are
/// counted too, since guessing names is guessing.
#[async_trait]
pub trait Logins: Send + Sync {
    /// Counts a failed login from `ip` and, when the client named one, at
    /// `name`. Each count starts again after `window` without a failure.
    /// Answers the address's failures, this one included.
    async fn login_failed(
        &self,
        name: Option<&str>,
        ip: std::net::IpAddr,
        window: std::time::Duration,
    ) -> Result<u32>;
    /// What is known before a password for `name` from `ip` is checked.
    async fn login_guard(
        &self,
        name: &str,
        ip: std::net::IpAddr,
        window: std::time::Duration,
    ) -> Result<LoginGuard>;
    /// Takes the next turn for an attempt at `name`: `spacing` after the
    /// turn taken before it, or now if that is past. Answers how long from
    /// now the turn is.
    async fn login_turn(
        &self,
        name: &str,
        spacing: std::time::Duration,
    ) -> Result<std::time::Duration>;
    /// Remembers that `name` logged in from `ip`, keeping the newest `keep`
    /// addresses of each name.
    async fn login_succeeded(&self, name: &str, ip: std::net::IpAddr, keep: usize) -> Result<()>;
    /// Forgets failures counted longer than `failures` ago and addresses
    /// not logged in from for `known`; how many rows went.
    async fn prune_logins(
        &self,
        failures: std::time::Duration,
        known: std::time::Duration,
    ) -> Result<usize>;
}

/// Web sessions, kept in the store so that a restart logs nobody out and a
/// session opened on one node works on every other. A session is found by
/// a key the web door derives from the cookie's token (its SHA-256), never
/// the token itself.
#[async_trait]
pub trait WebSessions: Send + Sync {
    /// Keeps a new session. The account's sessions past `max_per_account`
    /// end, the least recently seen first.
    async fn open_web_session(
        &self,
        session: &NewWebSession<'_>,
        max_per_account: usize,
    ) -> Result<()>;
    /// The session `key` with its account, unless it was idle longer than
    /// `idle` (it is ended then). Marks it seen, at most once per
    /// [`WEB_SEEN_EVERY`] (a write per page would be a write per click).
    async fn web_session(&self, key: &str, idle: std::time::Duration)
    -> Result<Option<WebSession>>;
    /// The account's sessions, the most recently seen first.
    async fn web_sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>>;
    /// Ends the session `key`; whether there was one.
    async fn end_web_session(&self, key: &str) -> Result<bool>;
    /// Ends every session of `account` but `keep`; how many ended.
    async fn end_web_sessions(&self, account: AccountId, keep: Option<&str>) -> Result<usize>;
    /// Ends the sessions idle longer than `idle`; how many ended.
    async fn prune_web_sessions(&self, idle: std::time::Duration) -> Result<usize>;
}

/// How stale a web session's last-seen time may get.
pub const WEB_SEEN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Housekeeping.
#[async_trait]
pub trait Upkeep: Send + Sync {
    /// Housekeeping a server runs now and then: unreferenced and orphaned
    /// blobs, leftovers of writers that died.
    async fn maintenance(&self) -> Result<()>;
    /// From now on, bodies that expunges and deletions leave unreferenced
    /// are removed by a task of their own, shortly after, instead of by
    /// each expunge before it answers (a server; one-shot commands keep
    /// collecting inline, since they may exit before a task would run).
    fn collect_in_background(&self);
    /// Forgets expunge records QRESYNC no longer needs exactly (RFC 7162
    /// 3.2.5.2): those from before `before` (Unix seconds) and, in each
    /// mailbox, all but the newest `keep`. Each mailbox remembers the
    /// highest MODSEQ it forgot, so a later question from before then is
    /// answered in full ([`MailboxDelta::expunged_complete`]), never
    /// wrongly. Answers how many records went.
    async fn prune_expunged(&self, before: i64, keep: u32) -> Result<usize>;
    /// Message bodies read (from disk or the cache) since the store was
    /// opened: what shows that a command was answered from the index.
    fn body_reads(&self) -> u64;
    /// Bytes the store takes: (the index, the message bodies).
    async fn disk_use(&self) -> Result<(u64, u64)>;
}

/// The change feed: what changed, for sessions that show it live.
pub trait Feed: Send + Sync {
    /// Changes made by this process, and by other processes once the store's
    /// watcher is running ([`Feed::watch_other_processes`]).
    fn subscribe(&self) -> broadcast::Receiver<Change>;
    /// Starts relaying changes made by other processes on the same store to
    /// [`Feed::subscribe`]rs, within [`WATCH_INTERVAL`].
    fn watch_other_processes(&self);
}

/// How often the embedded store looks for changes made by other processes.
pub const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(150);

/// Milliseconds since 1970 now (0 if the clock is before 1970).
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration in milliseconds, for the store's columns.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
