-- Senders whose remote images the user always wants shown in the web (an
-- address or "@domain", lower case, as in spam_lists).
CREATE TABLE image_senders (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    pattern    TEXT NOT NULL,
    PRIMARY KEY (account_id, pattern)
) STRICT, WITHOUT ROWID;
