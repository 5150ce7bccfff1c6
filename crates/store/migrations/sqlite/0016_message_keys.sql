-- What SORT and THREAD (RFC 5256) order by, and the header fields SEARCH
-- looks in most, made from the header once (mime::sort) and kept beside
-- each message row (a copy copies them), so a sort or header search reads
-- the index and never a message, and joins it on the row id (a join on
-- the body's hash cost ten times as much on 100,000 messages). Messages
-- stored before this table have none until the first sort or search of
-- their mailbox makes them. Text keys are case-mapped; `fields` holds each
-- kept field's name and folded text (mime::sort::fields reads it; NULL: a
-- field too long to keep).
CREATE TABLE message_keys (
    id            INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    sent          INTEGER,
    subject       TEXT NOT NULL,
    reply         INTEGER NOT NULL,
    from_key      TEXT NOT NULL,
    to_key        TEXT NOT NULL,
    cc_key        TEXT NOT NULL,
    display_from  TEXT NOT NULL,
    display_to    TEXT NOT NULL,
    message_id    TEXT,
    refs          TEXT NOT NULL,
    sent_day      INTEGER,
    fields        TEXT
) STRICT;
