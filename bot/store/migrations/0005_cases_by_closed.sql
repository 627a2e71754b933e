-- "Recoveries this week" (the digest, the Home tab) are the cases closed in a window, whenever they opened.
CREATE INDEX cases_by_closed ON cases (workspace, closed_at) WHERE closed_at IS NOT NULL;
