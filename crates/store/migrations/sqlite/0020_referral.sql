-- LOGIN-REFERRALS (RFC 2221): the IMAP URL of the server an account
-- has moved to; IMAP logins to it are referred there (NULL: served here).
ALTER TABLE accounts ADD COLUMN referral TEXT;
