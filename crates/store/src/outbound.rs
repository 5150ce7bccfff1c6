//! What sending mail keeps in the store: the outbound queue (one row per
//! message, one per recipient with its own state, RFC 5321 4.5.4.1), the
//! DKIM keys of the local domains, and the Message-IDs of recent Sent
//! copies. In the store, not on one node's disk, so that every node of a
//! shared backend sees the same queue.

use async_trait::async_trait;

use crate::{AccountId, BlobHash, MailboxId, Result};

/// How long a runner holds recipients it took before another may take
/// them (it died, or its connection hangs past every SMTP timeout).
pub const LEASE_SECS: i64 = 30 * 60;

/// How long a Sent copy the server filed and a client's APPEND of the same
/// Message-ID count as one message.
pub const SENT_WINDOW_SECS: i64 = 10 * 60;

/// A message handed to the queue.
pub struct NewQueued<'a> {
    /// The id shown by `satchel queue` and the logs.
    pub qid: &'a str,
    /// The envelope sender; empty for the null sender of a bounce.
    pub sender: &'a str,
    /// The account that sent it, whose INBOX a bounce goes to.
    pub account: Option<AccountId>,
    /// Header fields that travel in front of `raw` (our `Received:`, the
    /// DKIM signatures). Kept apart so that `raw` can share the blob of a
    /// stored copy of the same bytes, the sender's Sent copy.
    pub prefix: &'a [u8],
    pub raw: &'a [u8],
    pub recipients: &'a [String],
}

/// A queued message and its recipients still to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub qid: String,
    pub sender: String,
    pub account: Option<AccountId>,
    /// What travels in front of the blob's bytes ([`NewQueued::prefix`]).
    pub prefix: Vec<u8>,
    pub blob: BlobHash,
    /// Of the whole message as it travels, prefix included.
    pub size: u64,
    /// Octets above 127: the far end must offer 8BITMIME.
    pub eight_bit: bool,
    /// Unix seconds.
    pub created: i64,
    pub recipients: Vec<QueuedRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub address: String,
    pub state: RecipientState,
    pub attempts: u32,
    /// Unix seconds.
    pub next_try: i64,
    pub last_answer: Option<String>,
    /// The sender was told it is delayed.
    pub delayed: bool,
}

/// Where a recipient stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Waits for its next try.
    Queued,
    /// A runner holds it now (until `next_try`).
    Sending,
    /// Given up on; kept until the other recipients taken with it are
    /// settled, so that one DSN names them all.
    Failed,
}

impl RecipientState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Queued => "queued",
            RecipientState::Sending => "sending",
            RecipientState::Failed => "failed",
        }
    }
}

/// How one recipient's attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub address: String,
    pub outcome: Outcome,
    /// The far end's reply, or what went wrong before there was one.
    pub answer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the far end: the recipient leaves the queue.
    Delivered,
    /// Given up (a 5xx, or expired): never tried again; the bounce goes
    /// once the round's other recipients are settled.
    Failed,
    /// Tried again at `at` (Unix seconds); `delayed` says a delay notice
    /// has gone to the sender by now.
    Retry { at: i64, delayed: bool },
}

/// One DKIM key of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// DER: PKCS#8 for Ed25519, PKCS#1 for RSA (as mail-auth makes and
    /// reads them).
    pub private: Vec<u8>,
    /// The public key as the TXT record's `p=` gives it (base64; for RSA
    /// a SubjectPublicKeyInfo, the form every verifier reads).
    pub public: String,
    pub created: i64,
    /// When a rotation replaced it (Unix seconds): it no longer signs,
    /// and stays published a while.
    pub retired: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// RFC 8463.
    Ed25519,
    Rsa,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }
}

/// The queue, the DKIM keys and the Sent copies' Message-IDs.
#[async_trait]
pub trait Outbound: Send + Sync {
    /// Stores the message (blob fsync'd) and its recipients, due now, in
    /// one transaction: only after this returns may a door say yes.
    async fn enqueue(&self, message: NewQueued<'_>) -> Result<()>;
    /// The queued message as it travels: its prefix, then its blob.
    async fn read_queued(&self, message: &Queued) -> Result<Vec<u8>>;
    /// Every queued message with its recipients, oldest first.
    async fn queue(&self) -> Result<Vec<Queued>>;
    /// Takes up to `limit` recipients due at `now` (or whose runner's
    /// lease ran out), for [`LEASE_SECS`]: each message with just those.
    async fn claim_due(&self, now: i64, limit: usize) -> Result<Vec<Queued>>;
    /// Gives back every lease (a server starting: no runner of the
    /// embedded store is left from before).
    async fn release_leases(&self) -> Result<()>;
    /// Records attempts on a message's recipients. Once every recipient
    /// taken in this round is settled, the answer is those it failed for,
    /// with the last answer, for one DSN (RFC 3464: one report may name
    /// many recipients); empty until then, or when none failed. They stay
    /// until [`Outbound::reported`]: a report is never lost to a crash.
    /// The message leaves the queue when no recipient is left.
    async fn record_attempts(
        &self,
        message: i64,
        attempts: &[Attempt],
    ) -> Result<Vec<(String, String)>>;
    /// The DSN about `addresses` went (`sent`): they leave the queue, and
    /// the message when it has no recipient left; or it could not go, and
    /// they are tried again later.
    async fn reported(&self, message: i64, addresses: &[String], sent: bool) -> Result<()>;
    /// Makes every recipient of the message due now; false: no such id.
    async fn retry_now(&self, qid: &str) -> Result<bool>;
    /// Removes the message from the queue; false: no such id.
    async fn dequeue(&self, qid: &str) -> Result<bool>;

    /// The domain's keys, signing ones first (oldest first within each).
    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>>;
    /// Adds keys; with `retire`, the domain's earlier signing keys stop
    /// signing (a rotation), in the same transaction. Without it the keys
    /// are a domain's first: false, and nothing added, when it has signing
    /// keys already (another process made them first).
    async fn add_dkim_keys(&self, keys: &[DkimKey], retire: bool) -> Result<bool>;

    /// Notes that the account's message `message_id` is at `uid` in
    /// `mailbox` (a Sent copy), replacing an older note.
    async fn note_sent(
        &self,
        account: AccountId,
        message_id: &str,
        mailbox: MailboxId,
        uid: u32,
    ) -> Result<()>;
    /// Where the account's message `message_id` was noted after `since`
    /// (Unix seconds), if it is still there.
    async fn sent_copy(
        &self,
        account: AccountId,
        message_id: &str,
        since: i64,
    ) -> Result<Option<(MailboxId, u32)>>;
}
