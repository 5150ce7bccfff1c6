-- PREVIEW (RFC 8970): each message's first text, made at delivery and
-- kept with its cached ENVELOPE and BODYSTRUCTURE (NULL: none, or stored
-- before previews were kept).
ALTER TABLE messages ADD COLUMN preview TEXT;
