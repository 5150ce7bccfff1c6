-- The message trace: every message the server handled, in or out, with
-- what happened to each recipient (JSON), searchable by address,
-- Message-ID and time; pruned by age. `qid` ties an outgoing message to
-- the answers the remote servers gave (trace_answers, written as the
-- queue records its attempts).
CREATE TABLE trace (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    direction  TEXT NOT NULL,
    door       TEXT NOT NULL,
    client     TEXT NOT NULL,
    mail_from  TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject    TEXT NOT NULL,
    auth       TEXT NOT NULL,
    qid        TEXT NOT NULL,
    recipients TEXT NOT NULL
) STRICT;
CREATE INDEX trace_at ON trace (at);
CREATE INDEX trace_message_id ON trace (message_id);
CREATE INDEX trace_qid ON trace (qid) WHERE qid != '';

CREATE TABLE trace_answers (
    qid     TEXT NOT NULL,
    at      INTEGER NOT NULL,
    rcpt    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    answer  TEXT NOT NULL
) STRICT;
CREATE INDEX trace_answers_qid ON trace_answers (qid);
