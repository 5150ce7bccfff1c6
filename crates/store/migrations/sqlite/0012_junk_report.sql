-- The junk report (a mail listing what arrived in Junk and Possible Junk,
-- with release links): each account's own choice ('on', 'off'; NULL: on
-- for POP3-only users), and when its last report covered up to.
ALTER TABLE accounts ADD COLUMN junk_report TEXT;
ALTER TABLE accounts ADD COLUMN junk_report_at INTEGER NOT NULL DEFAULT 0;

-- Secrets the server keeps for itself (the key that signs release links),
-- made on first use; shared by every process on the store.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- Single-use links already used, until they would have expired anyway.
CREATE TABLE used_links (
    id      TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
) STRICT;
