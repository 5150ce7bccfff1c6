-- Users' Sieve scripts (ManageSieve and `satchel filter`): any number by
-- name, at most one active.
CREATE TABLE sieve_scripts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    content    TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, name)
) STRICT;
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (account_id) WHERE active = 1;

-- Vacation auto-replies sent (RFC 5230 4.2): to whom, for which reply
-- (a hash of its handle), and until when no other goes.
CREATE TABLE vacation_replies (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    handle     TEXT NOT NULL,
    sender     TEXT NOT NULL,
    until      INTEGER NOT NULL,
    PRIMARY KEY (account_id, handle, sender)
) STRICT, WITHOUT ROWID;
