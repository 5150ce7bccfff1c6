-- What SORT and THREAD (RFC 5256) order by, and the header fields SEARCH
-- looks in most, made from the header once (mime::sort) and kept per body,
-- so copies share them and a sort or header search never reads a message.
-- Bodies stored before this table have none until the first sort or search
-- of their mailbox makes them. Text keys are case-mapped; `fields` holds
-- each kept field's name and folded text (mime::sort::fields reads it;
-- NULL: a field too long to keep).
CREATE TABLE sort_keys (
    blob          TEXT PRIMARY KEY,
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
