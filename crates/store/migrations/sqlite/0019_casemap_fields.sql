-- The header texts kept for SEARCH are folded with i;unicode-casemap now
-- (I18NLEVEL=1, RFC 5255), not lower case: every message's keys are made
-- again from its body at its mailbox's next sort or search, as for mail
-- stored before keys were kept (their sort keys do not change).
DELETE FROM message_keys;
