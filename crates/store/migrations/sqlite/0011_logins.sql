-- When each account last logged in through each door ("imap", "pop3",
-- "smtp", "http", ...): the admin's account list, and who counts as a
-- POP3-only user (the junk report). Written at most about once an hour
-- per account and door (the door kit coalesces).
CREATE TABLE logins (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    door       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (account_id, door)
) STRICT, WITHOUT ROWID;
