-- The message-count half of an account's quota (0: none); quota_bytes
-- (from the start) is the storage half.
ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;
