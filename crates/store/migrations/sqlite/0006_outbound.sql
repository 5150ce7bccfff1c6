-- The outbound queue: messages users sent to remote recipients, bounces,
-- and what Sieve redirects outside. One row per message, one per
-- recipient with its own state (RFC 5321 4.5.4.1: each recipient is
-- retried on its own).
CREATE TABLE queue (
    id         INTEGER PRIMARY KEY,
    -- The id `satchel queue` and the logs show (16 hex digits).
    qid        TEXT NOT NULL UNIQUE,
    -- The envelope sender; '' is the null sender of a bounce (RFC 5321 4.5.5).
    sender     TEXT NOT NULL,
    -- The account that sent it, whose INBOX a bounce goes to (NULL: none).
    account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL,
    blob       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    -- The message has octets above 127 (needs 8BITMIME at the far end).
    eight_bit  INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL
) STRICT;
CREATE INDEX queue_blob ON queue (blob);

CREATE TABLE queue_rcpt (
    message_id  INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address     TEXT NOT NULL,
    -- 'queued': waits for next_try; 'sending': a runner holds it until
    -- next_try (a lease, so that a runner that died gives it back).
    state       TEXT NOT NULL DEFAULT 'queued',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    INTEGER NOT NULL,
    last_answer TEXT,
    -- A delay notice went to the sender already.
    delayed     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, address)
) STRICT;
CREATE INDEX queue_rcpt_due ON queue_rcpt (next_try);

-- DKIM keys per domain (RFC 6376), made on first use; a rotated key stays
-- published (retired set) until it is removed.
CREATE TABLE dkim_keys (
    id        INTEGER PRIMARY KEY,
    domain    TEXT NOT NULL,
    selector  TEXT NOT NULL,
    -- 'ed25519' (RFC 8463) or 'rsa'.
    algorithm TEXT NOT NULL,
    -- PKCS#8 DER of the private key.
    private   BLOB NOT NULL,
    -- What goes after p= in the TXT record (base64).
    public    TEXT NOT NULL,
    created   INTEGER NOT NULL,
    -- Set when a rotation replaced it: it no longer signs.
    retired   INTEGER,
    UNIQUE (domain, selector)
) STRICT;

-- Message-IDs of what each account sent or put into Sent recently, so that
-- a client that both submits and APPENDs its Sent copy gets one copy.
CREATE TABLE sent_ids (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (account_id, message_id)
) STRICT;
