-- Scheduled messages (reminders, digests, retention runs) keep the outbox holding thousands of rows due
-- later; finding what is due now, or the next due time, walks this index from `now` instead of every row.
CREATE INDEX outbox_by_due ON outbox (due);
