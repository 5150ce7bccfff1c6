-- Failed logins and web sessions live in the store, so a restart forgets
-- neither a guesser's count nor a user's login (and, on PostgreSQL, every
-- node sees the same).

-- Failures per client address ('ip:...') and per account name ('user:...'),
-- counted in a window that restarts after a quiet spell; next_slot spaces
-- out attempts at an account being guessed at (milliseconds since 1970).
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    next_slot    INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_last ON login_failures (last_failure);

-- Addresses each account logged in from, which its throttle never holds back.
CREATE TABLE login_known (
    name TEXT NOT NULL,
    ip   TEXT NOT NULL,
    at   INTEGER NOT NULL,
    PRIMARY KEY (name, ip)
) STRICT;
CREATE INDEX login_known_at ON login_known (at);

-- Web sessions by the SHA-256 of their cookie's token (the token itself is
-- never stored: a copy of the database opens no session).
CREATE TABLE web_sessions (
    key        TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    started    INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    client     TEXT NOT NULL,
    agent      TEXT NOT NULL
) STRICT;
CREATE INDEX web_sessions_account ON web_sessions (account_id);
CREATE INDEX web_sessions_seen ON web_sessions (last_seen);

-- Whether a domain has an account or an alias is asked for every message
-- (the sender's domain, a recipient's): by an index on the part after the
-- '@', not a scan of every account (addresses are stored in lower case,
-- with one '@').
CREATE INDEX accounts_domain ON accounts (substr(address, instr(address, '@') + 1));
CREATE INDEX aliases_domain ON aliases (substr(address, instr(address, '@') + 1));
