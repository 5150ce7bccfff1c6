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
