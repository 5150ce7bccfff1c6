-- Each account's own rule for the Sent copy of what it submits
-- ('always', 'unless-appended', 'never'); NULL follows the server's.
ALTER TABLE accounts ADD COLUMN sent_copy TEXT;
