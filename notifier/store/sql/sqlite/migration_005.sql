-- Schema 5: delivery bookkeeping for replays, Retry-After and removed endpoints.

-- Bumped whenever a delivery is reset (replay, an endpoint coming back): the result of an
-- attempt started before is then not written over the reset row.
ALTER TABLE deliveries ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
-- Failed attempts that followed the receiver's Retry-After: they use up no retry step.
ALTER TABLE deliveries ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0;
-- When the first attempt (since the last reset) was made: bounds the Retry-After steps.
ALTER TABLE deliveries ADD COLUMN first_attempt_at REAL;
