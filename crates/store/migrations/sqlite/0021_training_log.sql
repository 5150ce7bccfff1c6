-- What the spam filter was taught from users' moves in and out of Junk,
-- newest last, for `satchel spam stats` and the admin: the last
-- TRAINING_LOG_KEPT events are kept.
CREATE TABLE training_log (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    spam       INTEGER NOT NULL,
    subject    TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX training_log_account ON training_log (account_id, id);
