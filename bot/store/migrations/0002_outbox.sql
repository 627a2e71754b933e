-- Messages the bot owes a channel (bot/outbox.py): recorded before they are sent, deleted once the
-- platform confirmed them and what it returned is stored. Only what is owed lives here.
CREATE TABLE outbox (
    key       text PRIMARY KEY,                                -- one message, e.g. slack.summary:T1:R-1001
    seq       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,      -- the order owed; a case's go out in this order
    workspace text NOT NULL,
    case_id   text NOT NULL,
    kind      text NOT NULL,
    body      jsonb NOT NULL,
    owed_at   timestamptz NOT NULL,
    due       timestamptz NOT NULL,
    attempts  integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    tried_at  timestamptz,                                     -- set before each attempt: its outcome is unknown until cleared
    error     text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_by_case ON outbox (workspace, case_id, seq);
