-- Header fields sent in front of the queued copy (our Received: and the
-- DKIM signatures), kept in the row so that the copy itself can be the
-- blob of the sender's Sent copy: one body file per sent message, and
-- none to create and delete per message in the queue.
ALTER TABLE queue ADD COLUMN prefix BLOB NOT NULL DEFAULT x'';
