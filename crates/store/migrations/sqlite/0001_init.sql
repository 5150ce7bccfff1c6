-- Satchel embedded store, schema 1.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    address       TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    quota_bytes   INTEGER NOT NULL DEFAULT 0,
    -- What POP3's QUIT does to deleted mail for this account: 'expunge',
    -- 'trash' or 'hide'; NULL follows the server's [pop3] delete.
    pop3_delete   TEXT,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE aliases (
    address    TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
) STRICT;

CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    special_use   TEXT,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    -- Messages from this UID on are \Recent to the next session that
    -- claims them (RFC 3501 2.3.2: in exactly one session).
    first_recent  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
) STRICT;

-- Subscriptions are names, not mailboxes: RFC 9051 6.3.7 keeps a name
-- subscribed after its mailbox is gone.
CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) STRICT;

-- Messages users moved into or out of Junk, for the spam filter to learn
-- from; consumed (and deleted) by the trainer.
CREATE TABLE training (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    blob       TEXT NOT NULL,
    spam       INTEGER NOT NULL,
    at         INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    modseq        INTEGER NOT NULL,
    flags         INTEGER NOT NULL DEFAULT 0,
    keywords      TEXT NOT NULL DEFAULT '',
    internal_date INTEGER NOT NULL,
    internal_tz   INTEGER NOT NULL DEFAULT 0,
    size          INTEGER NOT NULL,
    blob          TEXT NOT NULL,
    envelope      BLOB,
    bodystructure BLOB,
    UNIQUE (mailbox_id, uid)
) STRICT;
CREATE INDEX messages_blob ON messages (blob);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);

-- Expunged UIDs, kept for QRESYNC VANISHED (RFC 7162).
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) STRICT;

-- Blobs that may have lost their last reference; swept by collect_garbage.
CREATE TABLE blob_gc (
    hash TEXT PRIMARY KEY
) STRICT;

-- Wake-ups for change feed subscribers in other processes; trimmed often.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    origin     INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
