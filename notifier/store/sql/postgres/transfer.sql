-- `state migrate` writes a SQLite state into PostgreSQL with these
-- (notifier.store.transfer), all in one transaction: a failure leaves the database as it was.
-- Each `copy_<table>` takes the columns of the SQLite `read_<table>`, in that order.

-- name: lock_tables
-- Nobody writes (or reads a half-copied state) until the copy commits; a daemon or producer
-- that started meanwhile waits, then sees the whole state.
LOCK TABLE watch_queue, watches, events, deliveries, delivery_attempts, discovered,
    state_marks, gateway_keys IN ACCESS EXCLUSIVE MODE;

-- name: empty_tables
-- --replace: the target's state goes, inside the same transaction as the copy.
TRUNCATE delivery_attempts, deliveries, events, watches, watch_queue, discovered, state_marks;

-- name: copy_watch_queue
COPY watch_queue (seq, job_id, labels, endpoints, enqueued_at, rejected, kind, account) FROM STDIN;

-- name: copy_watches
COPY watches (job_id, source, labels, endpoints, state, status, progress, msg, create_time,
    added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at,
    first_running_at, first_running_progress, last_queued_at, misses, predicted_at, poll_key,
    rejections, first_rejected_at, answered_at, last_data, observed_at, reopens, kind, phase, account)
    FROM STDIN;

-- name: copy_events
COPY events (event_id, job_id, type, created_at, body, last_seen_running_at, seq, kind, account)
    FROM STDIN;

-- name: copy_deliveries
COPY deliveries (id, event_id, endpoint, state, attempts, created_at, next_attempt_at,
    last_attempt_at, last_status, last_error, delivered_at, generation, deferred,
    first_attempt_at, claimed_by, claim_expires, claim_token) FROM STDIN;

-- name: copy_delivery_attempts
COPY delivery_attempts (id, delivery_id, generation, started_at, duration, status, error,
    outcome, claim_token, applied) FROM STDIN;

-- name: copy_vendor_token
-- The token is a cache of the vendor's newest one (issuing a token revokes the older):
-- of two for one account, the one fetched last is kept.
INSERT INTO vendor_token (account, access_token, expire_at, fetched_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (account) DO UPDATE SET access_token = excluded.access_token,
    expire_at = excluded.expire_at, fetched_at = excluded.fetched_at
WHERE excluded.fetched_at > vendor_token.fetched_at;

-- name: copy_discovered
COPY discovered (kind, job_id, create_time, at, account) FROM STDIN;

-- name: copy_state_marks
-- The source's marks win: its state began first, and discovery covered what it says.
INSERT INTO state_marks (name, value) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value;

-- name: copy_gateway_keys
-- The source's key wins: the gateway's tokens it signed stay valid after the move.
INSERT INTO gateway_keys (name, secret, created_at) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at;

-- name: restart_identities
-- New rows are numbered after the copied ones.
SELECT setval(pg_get_serial_sequence('watch_queue', 'seq'),
              (SELECT coalesce(max(seq), 0) + 1 FROM watch_queue), false),
       setval(pg_get_serial_sequence('deliveries', 'id'),
              (SELECT coalesce(max(id), 0) + 1 FROM deliveries), false),
       setval(pg_get_serial_sequence('delivery_attempts', 'id'),
              (SELECT coalesce(max(id), 0) + 1 FROM delivery_attempts), false);
