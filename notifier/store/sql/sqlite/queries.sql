-- The statements only SQLite runs this way (index hints, json_each, MIN/MAX of two
-- values, julianday), by name; the others are ../common/queries.sql.

-- fragment: db_now
-- The database's clock, unix seconds.
(julianday('now') - 2440587.5) * 86400.0

-- name: upsert_watch
INSERT INTO watches (account, kind, job_id, source, labels, endpoints, added_at, next_poll_at, poll_key)
VALUES (:account, :kind, :job_id, :source, :labels, :endpoints, :now, :now, :now)
ON CONFLICT (account, kind, job_id) DO UPDATE SET labels = excluded.labels, endpoints = excluded.endpoints
WHERE watches.labels IS NOT excluded.labels OR watches.endpoints IS NOT excluded.endpoints;

-- name: queue_rows
SELECT seq, account, kind, job_id, labels, endpoints FROM watch_queue WHERE rejected IS NULL ORDER BY seq LIMIT ?;

-- name: due_watches
SELECT {watch_columns}
FROM watches INDEXED BY watches_key
WHERE state = 'active' AND account = ? AND poll_key <= ? ORDER BY poll_key LIMIT ?;

-- name: early_watches
SELECT {watch_columns}
FROM watches INDEXED BY watches_due
WHERE state = 'active' AND account = ? AND next_poll_at <= ? ORDER BY next_poll_at LIMIT ?;

-- name: active_watches_among
SELECT {watch_columns}
FROM watches WHERE state = 'active' AND account = ? AND kind = ?
  AND job_id IN (SELECT value FROM json_each(?));

-- name: oldest_active_create_time
SELECT MIN(create_time) FROM watches INDEXED BY watches_active_created
WHERE state = 'active' AND account = ? AND kind = ? AND create_time > 0;

-- name: newest_active_create_time
SELECT MAX(create_time) FROM watches INDEXED BY watches_active_created
WHERE state = 'active' AND account = ? AND kind = ? AND create_time > 0;

-- name: expirable_watches
SELECT {watch_columns}
FROM watches INDEXED BY watches_active_added
WHERE state = 'active' AND account = :account AND added_at <= :cutoff
  AND answered_at >= added_at + :give_up_after;

-- name: due_for_last_look
UPDATE watches SET next_poll_at = MIN(next_poll_at, :now), poll_key = MIN(poll_key, :now)
WHERE (account, kind, job_id) IN (
    SELECT account, kind, job_id FROM watches INDEXED BY watches_active_added
    WHERE state = 'active' AND account = :account AND added_at <= :cutoff
      AND (answered_at IS NULL OR answered_at < added_at + :give_up_after)
      AND poll_key > :now
);

-- name: record_rejection
-- The second look soon (:retry_at), later ones no sooner than :window after the first.
UPDATE watches SET last_poll_at = :now,
    next_poll_at = CASE WHEN rejections = 0 THEN :retry_at
                        ELSE MAX(:retry_at, first_rejected_at + :window) END,
    poll_key = CASE WHEN rejections = 0 THEN :retry_at
                    ELSE MAX(:retry_at, first_rejected_at + :window) END,
    rejections = rejections + 1, first_rejected_at = COALESCE(first_rejected_at, :now)
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active'
RETURNING rejections, first_rejected_at;

-- name: lock_event_order
-- Taken before an event is inserted, so events commit in the order of their seq.
-- SQLite has one writer at a time: the order of seq is the order of commits already.
SELECT 1;

-- name: due_deliveries
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, e.account
FROM deliveries d INDEXED BY deliveries_due JOIN events e ON e.event_id = d.event_id
WHERE d.state = 'pending' AND d.endpoint = ? AND d.next_attempt_at <= ?
ORDER BY d.next_attempt_at LIMIT ?;

-- name: delivery_succeeded
-- A row reset since the attempt started (other generation) is left as the reset made it.
-- claims: nor is a row another node claimed since (other claim_token); writing releases
-- (consumes) it: a second write under the same claim finds claimed_by NULL and changes nothing.
UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = :now,
    last_status = :status, last_error = NULL, delivered_at = :now, next_attempt_at = NULL,
    first_attempt_at = COALESCE(first_attempt_at, :started),
    claimed_by = NULL, claim_expires = NULL
WHERE id = :id AND (:generation IS NULL OR generation = :generation)
  AND (:claim IS NULL OR (claim_token = :claim AND claimed_by IS NOT NULL));

-- name: delivery_failed
-- Only a pending row takes a failure: one parked meanwhile (endpoint removed) stays parked.
-- claims: as delivery_succeeded.
UPDATE deliveries SET state = :state, attempts = attempts + 1, last_attempt_at = :now,
    last_status = :status, last_error = :error, next_attempt_at = :next_attempt_at,
    deferred = deferred + :deferred, first_attempt_at = COALESCE(first_attempt_at, :started),
    claimed_by = NULL, claim_expires = NULL
WHERE id = :id AND state = 'pending' AND (:generation IS NULL OR generation = :generation)
  AND (:claim IS NULL OR (claim_token = :claim AND claimed_by IS NOT NULL));

-- name: pending_endpoints
-- The distinct endpoints of pending rows by one index seek each (runs every dispatch tick;
-- DISTINCT would walk every pending row).
WITH RECURSIVE eps (endpoint) AS (
    SELECT MIN(endpoint) FROM deliveries INDEXED BY deliveries_state_endpoint
    WHERE state = 'pending'
    UNION ALL
    SELECT (SELECT MIN(endpoint) FROM deliveries INDEXED BY deliveries_state_endpoint
            WHERE state = 'pending' AND endpoint > eps.endpoint)
    FROM eps WHERE eps.endpoint IS NOT NULL
)
SELECT endpoint FROM eps WHERE endpoint IS NOT NULL;

-- name: insert_attempt
-- :claim and :applied: the claim the result was written under and whether it changed the
-- delivery (see attempt_of_claim).
INSERT INTO delivery_attempts
    (delivery_id, generation, started_at, duration, status, error, outcome, claim_token, applied)
SELECT id, generation, :started, :now - :started, :status, :error, :outcome, :claim, :applied
FROM deliveries WHERE id = :id;

-- name: make_due
UPDATE watches SET next_poll_at = MIN(next_poll_at, :now), poll_key = MIN(poll_key, :now)
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active';

-- name: list_watches_filtered
SELECT {listed_watch_columns}
FROM watches
WHERE (:state IS NULL OR state = :state) AND (:job IS NULL OR job_id = :job)
  AND (:kind IS NULL OR kind = :kind) AND (:since IS NULL OR added_at >= :since)
  AND (:account IS NULL OR account = :account)
ORDER BY added_at DESC, account DESC, kind DESC, job_id DESC LIMIT :limit;

-- name: list_events_filtered
SELECT event_id, account, kind, job_id, type, created_at FROM events
WHERE (:job IS NULL OR job_id = :job) AND (:kind IS NULL OR kind = :kind) AND (:since IS NULL OR created_at >= :since)
  AND (:account IS NULL OR account = :account)
ORDER BY created_at DESC, event_id DESC LIMIT :limit;

-- name: event_seq
-- A cursor of GET /v1/events; :accounts (a JSON array, NULL: every event) limits the
-- events a token sees: another account's event is no cursor, as if never recorded.
SELECT seq FROM events WHERE event_id = :event_id
  AND (:accounts IS NULL OR account IN (SELECT value FROM json_each(:accounts)));

-- name: events_after
-- GET /v1/events: a page in recorded order, after a cursor's seq (0: from the first); only
-- the accounts' events (see event_seq), filtered before the page is cut.
SELECT seq, event_id, type, created_at, body FROM events INDEXED BY events_seq
WHERE seq > :seq AND (:accounts IS NULL OR account IN (SELECT value FROM json_each(:accounts)))
ORDER BY seq LIMIT :limit;

-- name: list_deliveries_filtered
-- claims: claimed_by (--json only) names the node while its claim is live (db_now: see
-- claim_due_deliveries).
SELECT d.id, d.event_id, e.kind, e.job_id, e.type, d.endpoint, d.state, d.attempts,
       d.created_at, d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error,
       d.delivered_at,
       CASE WHEN d.claim_expires > {db_now}
            THEN d.claimed_by END AS claimed_by
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE (:state IS NULL OR d.state = :state) AND (:job IS NULL OR e.job_id = :job)
  AND (:kind IS NULL OR e.kind = :kind) AND (:since IS NULL OR d.created_at >= :since)
ORDER BY d.id DESC LIMIT :limit;

-- name: old_settled_events
SELECT event_id FROM events INDEXED BY events_created
WHERE created_at < :cutoff
  AND NOT EXISTS (
      SELECT 1 FROM deliveries WHERE deliveries.event_id = events.event_id AND state = 'pending')
ORDER BY created_at LIMIT :batch;

-- name: prune_attempts
DELETE FROM delivery_attempts WHERE delivery_id IN (
    SELECT id FROM deliveries WHERE event_id IN (SELECT value FROM json_each(:ids)));

-- name: prune_deliveries
DELETE FROM deliveries WHERE event_id IN (SELECT value FROM json_each(:ids));

-- name: prune_events
DELETE FROM events WHERE event_id IN (SELECT value FROM json_each(:ids));

-- name: prune_watches
DELETE FROM watches WHERE (kind, job_id) IN (
    SELECT kind, job_id FROM watches INDEXED BY watches_finished
    WHERE state != 'active' AND finished_at < :cutoff LIMIT :batch);

-- name: claim_due_deliveries
-- -- delivery claims: several nodes deliver from one database; a due delivery is claimed
-- before its attempt. Claim expiry is on the DATABASE's clock, always {db_now}.
-- Due rows of :endpoint that nobody holds, or whose claim lapsed, become :node's for :ttl
-- seconds; :exclude (JSON array; PG: an array, `d.id <> ALL(...)`) are this node's attempts
-- in flight. The row selection is the subquery, so PostgreSQL can lock it: add
-- FOR UPDATE SKIP LOCKED after its LIMIT.
UPDATE deliveries SET claimed_by = :node, claim_token = claim_token + 1,
    claim_expires = {db_now} + :ttl
WHERE id IN (
    SELECT d.id FROM deliveries d INDEXED BY deliveries_due
    WHERE d.state = 'pending' AND d.endpoint = :endpoint AND d.next_attempt_at <= :now
      AND (d.claim_expires IS NULL
           OR d.claim_expires <= {db_now})
      AND d.id NOT IN (SELECT value FROM json_each(:exclude))
    ORDER BY d.next_attempt_at LIMIT :limit
)
RETURNING id, claim_token, claim_expires - {db_now} AS claim_left;

-- name: any_claimable
-- The claim's row selection as a read: a fill with nothing to claim takes no write lock.
SELECT 1 FROM deliveries d INDEXED BY deliveries_due
WHERE d.state = 'pending' AND d.endpoint = :endpoint AND d.next_attempt_at <= :now
  AND (d.claim_expires IS NULL OR d.claim_expires <= {db_now})
  AND d.id NOT IN (SELECT value FROM json_each(:exclude))
LIMIT 1;

-- name: claimed_deliveries
-- What the attempts of the rows just claimed (:ids, a JSON array) need, oldest due first.
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, e.account
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE d.id IN (SELECT value FROM json_each(:ids))
ORDER BY d.next_attempt_at, d.id;

-- name: active_accounts
-- The accounts that have an active watch, by one index seek each (the status line's look
-- for watches of accounts no longer configured).
WITH RECURSIVE accts (account) AS (
    SELECT MIN(account) FROM watches INDEXED BY watches_active_created WHERE state = 'active'
    UNION ALL
    SELECT (SELECT MIN(account) FROM watches INDEXED BY watches_active_created
            WHERE state = 'active' AND account > accts.account)
    FROM accts WHERE accts.account IS NOT NULL
)
SELECT account FROM accts WHERE account IS NOT NULL;

-- name: discovered_among
SELECT job_id FROM discovered WHERE account = :account AND kind = :kind
  AND job_id IN (SELECT value FROM json_each(:ids))
UNION SELECT job_id FROM watches WHERE account = :account AND kind = :kind
  AND job_id IN (SELECT value FROM json_each(:ids));
