-- Sessions ask for the UIDs expunged since a MODSEQ after every change to
-- their mailbox; by the primary key alone that read every expunge the
-- mailbox ever had (and a row lookup each for its MODSEQ).
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq, uid);
