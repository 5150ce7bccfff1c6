-- Token counts of the spam filter's Bayes model. Scope 0 is the server's
-- model; an account id is that user's own (trained by their moves).
CREATE TABLE bayes_totals (
    scope INTEGER PRIMARY KEY,
    spam  INTEGER NOT NULL DEFAULT 0,
    ham   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE bayes_tokens (
    scope INTEGER NOT NULL,
    token TEXT NOT NULL,
    spam  INTEGER NOT NULL DEFAULT 0,
    ham   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, token)
) STRICT, WITHOUT ROWID;
