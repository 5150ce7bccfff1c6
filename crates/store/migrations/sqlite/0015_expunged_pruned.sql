-- Expunge records are kept for QRESYNC (RFC 7162 3.2.5) for a while, then
-- pruned (Upkeep::prune_expunged). `at` says when the message went;
-- rows from before this migration count from now. A mailbox's
-- `vanished_floor` is the highest MODSEQ pruned from it: expunges after it
-- are all still recorded, so only a question from before it needs the
-- longer answer (every UID not there any more).
ALTER TABLE expunged ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
UPDATE expunged SET at = CAST(strftime('%s', 'now') AS INTEGER);
ALTER TABLE mailboxes ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;
