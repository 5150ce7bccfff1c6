-- Why a message is where it is: the spam score and its reasons at
-- delivery ("BAYES_99(100) HTML_ONLY(10)"), for the web to show. NULL for
-- mail that was never scored (IMAP APPEND, import).
ALTER TABLE messages ADD COLUMN spam_score INTEGER;
ALTER TABLE messages ADD COLUMN spam_reasons TEXT;

-- A user's own allow and block list: an address or a whole domain
-- ("@example.com"), always lower case.
CREATE TABLE spam_lists (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    pattern    TEXT NOT NULL,
    allow      INTEGER NOT NULL,
    PRIMARY KEY (account_id, pattern)
) STRICT, WITHOUT ROWID;

-- The people a user writes to: each message sent to an address earns its
-- replies a credit (trusted correspondents).
CREATE TABLE correspondents (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    sent       INTEGER NOT NULL,
    last_sent  INTEGER NOT NULL,
    PRIMARY KEY (account_id, address)
) STRICT, WITHOUT ROWID;

-- When each token last changed, as its model's count of trained messages
-- then: a scorer holding a model in memory catches up by reading only the
-- tokens changed since the count it saw.
ALTER TABLE bayes_tokens ADD COLUMN gen INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bayes_tokens_gen ON bayes_tokens (scope, gen);
