-- Failed logins, web sessions, and notes of bodies that may be unreferenced.
-- Failed logins and web sessions live in the store, so a restart forgets
-- neither a guesser's count nor a user's login (and, on PostgreSQL, every
-- node sees the same).

-- Failures per client address ('ip:...') and per account name ('user:...'),
-- counted in a window that restarts after a quiet spell; next_slot spaces
-- out attempts at an account being guessed at (milliseconds since 1970).
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure BIGINT NOT NULL,
    next_slot    BIGINT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure);

-- Addresses each account logged in from, which its throttle never holds back.
CREATE TABLE login_known (
    name TEXT NOT NULL,
    ip   TEXT NOT NULL,
    at   BIGINT NOT NULL,
    PRIMARY KEY (name, ip)
);
CREATE INDEX login_known_at ON login_known (at);

-- Web sessions by the SHA-256 of their cookie's token (the token itself is
-- never stored: a copy of the database opens no session).
CREATE TABLE web_sessions (
    key        TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    started    BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    client     TEXT NOT NULL,
    agent      TEXT NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);
CREATE INDEX web_sessions_seen ON web_sessions (last_seen);

-- A note in blob_gc is a row of its own, not one per body: noting a body is
-- then a plain insert, which locks nothing that another writer freeing the
-- same body would wait on, and the collector never sees a note before its
-- writer's commit (upkeep.rs says why that is enough).
ALTER TABLE blob_gc DROP CONSTRAINT blob_gc_pkey;
ALTER TABLE blob_gc ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
CREATE INDEX blob_gc_hash ON blob_gc (hash);

-- Whether a domain has an account or an alias is asked for every message:
-- by an index on the part after the '@', not a scan of every account.
CREATE INDEX accounts_domain ON accounts (split_part(address, '@', 2));
CREATE INDEX aliases_domain ON aliases (split_part(address, '@', 2));
