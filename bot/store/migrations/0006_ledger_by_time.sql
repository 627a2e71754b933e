-- A window of a workspace's ledger (the digest, the Home tab's spend, an export), read by when it was given.
CREATE INDEX ledger_by_time ON ledger (workspace, at);
