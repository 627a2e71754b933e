-- Managers and follow-through (issues 6 and 7): who approved a top-up over a person's allowance, and
-- the lookups the digest, the export and "3rd recovery for this guest in 90 days" make.
ALTER TABLE ledger ADD COLUMN approved_by text NOT NULL DEFAULT '';

-- The customer reference as matched (bot.store.base.customer_key); set by the store on every save.
ALTER TABLE cases ADD COLUMN customer_key text NOT NULL DEFAULT '';
UPDATE cases SET customer_key = lower(btrim(doc->>'customer')) WHERE doc->>'customer' IS NOT NULL;
CREATE INDEX cases_by_customer ON cases (workspace, customer_key, opened_at) WHERE customer_key <> '';
CREATE INDEX cases_by_opened ON cases (workspace, opened_at);
