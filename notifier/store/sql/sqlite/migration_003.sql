-- Schema 3: the adaptive polling policy's memory of each job, and its priority order.

ALTER TABLE watches ADD COLUMN first_running_at REAL;        -- first poll that saw status 10
ALTER TABLE watches ADD COLUMN first_running_progress INTEGER;
ALTER TABLE watches ADD COLUMN last_queued_at REAL;          -- last poll that saw status 0
ALTER TABLE watches ADD COLUMN misses INTEGER NOT NULL DEFAULT 0;  -- predictions that were early
ALTER TABLE watches ADD COLUMN predicted_at REAL;            -- predicted completion
-- next_poll_at: the earliest a poll is worth it (spare budget); poll_key: when it is due
-- (under a backlog the smallest keys go first).
ALTER TABLE watches ADD COLUMN poll_key REAL;
UPDATE watches SET poll_key = next_poll_at WHERE state = 'active';
CREATE INDEX watches_key ON watches (poll_key) WHERE state = 'active';
-- The list sweep stops paging once it is past the oldest job still watched.
CREATE INDEX watches_active_created ON watches (create_time) WHERE state = 'active';
