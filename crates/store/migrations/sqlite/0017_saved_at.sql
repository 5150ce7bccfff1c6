-- When each message was saved into its mailbox (SAVEDATE, RFC 8514): by
-- delivery, APPEND, COPY or MOVE. Messages saved before this column read
-- their internal date instead.
ALTER TABLE messages ADD COLUMN saved_at INTEGER;
