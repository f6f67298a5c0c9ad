-- `state migrate` reads a SQLite state with these (notifier.store.transfer), inside one
-- BEGIN IMMEDIATE: a consistent snapshot, and no other writer slips a row past the copy.
-- Each `read_<table>` names every column of the table in the order of the PostgreSQL
-- `copy_<table>`; tests/unit/store/test_state_transfer.py checks both against the schemas.
-- Not copied: leases (a fresh database has no holder), write_probe (the daemon's own).

-- name: read_watch_queue
SELECT seq, job_id, labels, endpoints, enqueued_at, rejected, kind, account FROM watch_queue ORDER BY seq;

-- name: read_watches
SELECT job_id, source, labels, endpoints, state, status, progress, msg, create_time, added_at,
       last_poll_at, next_poll_at, polls, errors, last_error, finished_at, first_running_at,
       first_running_progress, last_queued_at, misses, predicted_at, poll_key, rejections,
       first_rejected_at, answered_at, last_data, observed_at, reopens, kind, phase, account
FROM watches ORDER BY account, kind, job_id;

-- name: read_events
-- CAST: a body is bytes (BYTEA) even if some program stored it as text.
SELECT event_id, job_id, type, created_at, CAST(body AS BLOB) AS body, last_seen_running_at,
       seq, kind, account
FROM events ORDER BY seq;

-- name: read_deliveries
-- A claim belongs to a daemon that is gone (the source's instance lock is ours): the copy
-- starts unclaimed, so the first node on PostgreSQL need not wait for it to lapse.
SELECT id, event_id, endpoint, state, attempts, created_at, next_attempt_at, last_attempt_at,
       last_status, last_error, delivered_at, generation, deferred, first_attempt_at,
       NULL AS claimed_by, NULL AS claim_expires, claim_token
FROM deliveries ORDER BY id;

-- name: read_delivery_attempts
SELECT id, delivery_id, generation, started_at, duration, status, error, outcome,
       claim_token, applied
FROM delivery_attempts ORDER BY id;

-- name: read_vendor_token
SELECT account, access_token, expire_at, fetched_at FROM vendor_token ORDER BY account;

-- name: read_discovered
SELECT kind, job_id, create_time, at, account FROM discovered ORDER BY account, kind, job_id;

-- name: read_state_marks
SELECT name, value FROM state_marks ORDER BY name;

-- name: read_gateway_keys
SELECT name, secret, created_at FROM gateway_keys ORDER BY name;
