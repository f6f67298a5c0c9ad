-- Schema 20: each account's lane reads its own due, early and expirable watches (issue 22).
-- The per-tick indexes lead with the account, so one account's backlog of due watches is
-- never scanned by another account's tick (a saturated account must not slow the others).
DROP INDEX watches_key;
CREATE INDEX watches_key ON watches (account, poll_key) WHERE state = 'active';
DROP INDEX watches_due;
CREATE INDEX watches_due ON watches (account, next_poll_at) WHERE state = 'active';
DROP INDEX watches_active_added;
CREATE INDEX watches_active_added ON watches (account, added_at) WHERE state = 'active';
