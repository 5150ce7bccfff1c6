-- The unseen messages of each mailbox, for unread counts that cost what is
-- unread rather than what the mailbox holds.
CREATE INDEX messages_unseen ON messages (mailbox_id) WHERE (flags & 1) = 0;
