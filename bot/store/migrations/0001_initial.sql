-- The tables every Amends process shares. One row per thing; money as numeric, instants as timestamptz.

-- The next case number of each workspace. Taken with a row lock in the transaction that saves the
-- case, so two processes never hand out the same number and a failed open hands out none.
CREATE TABLE counters (
    workspace   text PRIMARY KEY,
    next_number integer NOT NULL CHECK (next_number > 0)
);

-- A case is a document (bot.store.codec's shape); the columns beside it are what we search on.
CREATE TABLE cases (
    seq       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,  -- insertion order, the tie-break for equal opened_at
    workspace text NOT NULL,
    id        text NOT NULL,
    owner     text NOT NULL,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    doc       jsonb NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX cases_open_by_owner ON cases (workspace, owner, opened_at) WHERE closed_at IS NULL;

-- Every compensation given: what budgets are summed from. A case is compensated once (its checklist
-- moves past the step in the same transaction), and the unique key makes that a database fact too.
CREATE TABLE ledger (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order recorded
    workspace text NOT NULL,
    case_id   text NOT NULL,
    employee  text NOT NULL,
    role      text NOT NULL,
    kind      text NOT NULL,
    amount    numeric NOT NULL CHECK (amount > 0),
    currency  text NOT NULL,
    at        timestamptz NOT NULL,
    UNIQUE (workspace, case_id),
    FOREIGN KEY (workspace, case_id) REFERENCES cases (workspace, id)
);
CREATE INDEX ledger_by_employee ON ledger (workspace, employee, at);

CREATE TABLE roles (
    workspace     text NOT NULL,
    name          text NOT NULL,
    per_case      numeric NOT NULL CHECK (per_case >= 0),
    budget_amount numeric CHECK (budget_amount >= 0),
    budget_period text CHECK (budget_period IN ('day', 'week', 'month')),  -- bot.periods.Period
    CHECK ((budget_amount IS NULL) = (budget_period IS NULL)),
    PRIMARY KEY (workspace, name)
);

-- No foreign key to roles: the default role is shown before an admin ever stores it.
CREATE TABLE people (
    workspace text NOT NULL,
    person    text NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (workspace, person)
);

CREATE TABLE workspaces (
    workspace        text PRIMARY KEY,
    recovery_channel text
);

-- Platform addresses for proactive messages (a Teams ConversationReference, say).
CREATE TABLE platform_references (
    workspace text NOT NULL,
    key       text NOT NULL,
    value     jsonb NOT NULL,
    PRIMARY KEY (workspace, key)
);

CREATE TABLE admins (
    workspace text NOT NULL,
    person    text NOT NULL,
    PRIMARY KEY (workspace, person)
);

-- Deliveries already handled (Slack retries, double submits), so a repeat that lands on another
-- process is still recognised. Old keys are swept; the index makes the sweep cheap.
CREATE TABLE seen (
    key text PRIMARY KEY,
    at  timestamptz NOT NULL
);
CREATE INDEX seen_by_age ON seen (at);
