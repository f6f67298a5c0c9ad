-- The statements only PostgreSQL runs this way (row locks, casts, json_array_elements_text,
-- LEAST/GREATEST, notifications, one-statement forms), by name, in psycopg's placeholders;
-- the others are ../common/queries.sql.

-- fragment: db_now
-- The database's clock, unix seconds.
extract(epoch from clock_timestamp())::double precision

-- name: upsert_watch
INSERT INTO watches (account, kind, job_id, source, labels, endpoints, added_at, next_poll_at, poll_key)
VALUES (%(account)s, %(kind)s, %(job_id)s, %(source)s, %(labels)s, %(endpoints)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (account, kind, job_id) DO UPDATE SET labels = excluded.labels, endpoints = excluded.endpoints
WHERE watches.labels IS DISTINCT FROM excluded.labels OR watches.endpoints IS DISTINCT FROM excluded.endpoints;

-- name: queue_rows
SELECT seq, account, kind, job_id, labels, endpoints FROM watch_queue WHERE rejected IS NULL ORDER BY seq LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: due_watches
SELECT {watch_columns}
FROM watches
WHERE state = 'active' AND account = %s AND poll_key <= %s ORDER BY poll_key LIMIT %s;

-- name: early_watches
SELECT {watch_columns}
FROM watches
WHERE state = 'active' AND account = %s AND next_poll_at <= %s ORDER BY next_poll_at LIMIT %s;

-- name: active_watches_among
SELECT {watch_columns}
FROM watches WHERE state = 'active' AND account = %s AND kind = %s
  AND job_id IN (SELECT json_array_elements_text(%s::json));

-- name: oldest_active_create_time
SELECT MIN(create_time) FROM watches
WHERE state = 'active' AND account = %s AND kind = %s AND create_time > 0;

-- name: newest_active_create_time
SELECT MAX(create_time) FROM watches
WHERE state = 'active' AND account = %s AND kind = %s AND create_time > 0;

-- name: expirable_watches
SELECT {watch_columns}
FROM watches
WHERE state = 'active' AND account = %(account)s AND added_at <= %(cutoff)s
  AND answered_at >= added_at + %(give_up_after)s;

-- name: due_for_last_look
UPDATE watches SET next_poll_at = LEAST(next_poll_at, %(now)s), poll_key = LEAST(poll_key, %(now)s)
WHERE (account, kind, job_id) IN (
    SELECT account, kind, job_id FROM watches
    WHERE state = 'active' AND account = %(account)s AND added_at <= %(cutoff)s
      AND (answered_at IS NULL OR answered_at < added_at + %(give_up_after)s)
      AND poll_key > %(now)s
);

-- name: record_rejection
-- The second look soon (retry_at), later ones no sooner than window after the first.
UPDATE watches SET last_poll_at = %(now)s,
    next_poll_at = CASE WHEN rejections = 0 THEN %(retry_at)s
                        ELSE GREATEST(%(retry_at)s, first_rejected_at + %(window)s) END,
    poll_key = CASE WHEN rejections = 0 THEN %(retry_at)s
                    ELSE GREATEST(%(retry_at)s, first_rejected_at + %(window)s) END,
    rejections = rejections + 1, first_rejected_at = COALESCE(first_rejected_at, %(now)s)
WHERE account = %(account)s AND kind = %(kind)s AND job_id = %(job_id)s AND state = 'active'
RETURNING rejections, first_rejected_at;

-- name: lock_event_order
-- Taken before an event is inserted, so events commit in the order of their seq.
-- Held until COMMIT: a transaction that took seq N commits before any other takes N+1,
-- so a reader paging by seq never sees N+1 while N is still to come (no gaps).
SELECT pg_advisory_xact_lock(4707001);

-- name: due_deliveries
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, e.account
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE d.state = 'pending' AND d.endpoint = %s AND d.next_attempt_at <= %s
ORDER BY d.next_attempt_at LIMIT %s;

-- name: delivery_succeeded
-- A row reset since the attempt started (other generation) is left as the reset made it.
UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_attempt_at = %(now)s,
    last_status = %(status)s, last_error = NULL, delivered_at = %(now)s, next_attempt_at = NULL,
    first_attempt_at = COALESCE(first_attempt_at, %(started)s),
    claimed_by = NULL, claim_expires = NULL
WHERE id = %(id)s AND (%(generation)s::bigint IS NULL OR generation = %(generation)s)
  AND (%(claim)s::bigint IS NULL OR (claim_token = %(claim)s AND claimed_by IS NOT NULL));

-- name: delivery_failed
-- Only a pending row takes a failure: one parked meanwhile (endpoint removed) stays parked.
UPDATE deliveries SET state = %(state)s, attempts = attempts + 1, last_attempt_at = %(now)s,
    last_status = %(status)s, last_error = %(error)s, next_attempt_at = %(next_attempt_at)s,
    deferred = deferred + %(deferred)s, first_attempt_at = COALESCE(first_attempt_at, %(started)s),
    claimed_by = NULL, claim_expires = NULL
WHERE id = %(id)s AND state = 'pending' AND (%(generation)s::bigint IS NULL OR generation = %(generation)s)
  AND (%(claim)s::bigint IS NULL OR (claim_token = %(claim)s AND claimed_by IS NOT NULL));

-- name: pending_endpoints
-- The distinct endpoints of pending rows by one index seek each (runs every dispatch tick;
-- DISTINCT would walk every pending row).
WITH RECURSIVE eps (endpoint) AS (
    SELECT MIN(endpoint) FROM deliveries
    WHERE state = 'pending'
    UNION ALL
    SELECT (SELECT MIN(endpoint) FROM deliveries
            WHERE state = 'pending' AND endpoint > eps.endpoint)
    FROM eps WHERE eps.endpoint IS NOT NULL
)
SELECT endpoint FROM eps WHERE endpoint IS NOT NULL;

-- name: insert_attempt
INSERT INTO delivery_attempts
    (delivery_id, generation, started_at, duration, status, error, outcome, claim_token, applied)
SELECT id, generation, %(started)s, %(now)s - %(started)s, %(status)s::integer, %(error)s::text,
       %(outcome)s, %(claim)s::bigint, %(applied)s::integer
FROM deliveries WHERE id = %(id)s;

-- name: make_due
-- Other nodes hear of it: the vendor lease holder polls the watch at once.
WITH moved AS (
    UPDATE watches SET next_poll_at = LEAST(next_poll_at, %(now)s),
        poll_key = LEAST(poll_key, %(now)s)
    WHERE account = %(account)s AND kind = %(kind)s AND job_id = %(job_id)s AND state = 'active'
    RETURNING job_id
)
SELECT pg_notify('chanjing_notifier', 'watch') FROM moved;

-- name: list_watches_filtered
SELECT {listed_watch_columns}
FROM watches
WHERE (%(state)s::text IS NULL OR state = %(state)s) AND (%(job)s::text IS NULL OR job_id = %(job)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
  AND (%(since)s::double precision IS NULL OR added_at >= %(since)s)
  AND (%(account)s::text IS NULL OR account = %(account)s)
ORDER BY added_at DESC, account DESC, kind DESC, job_id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: list_events_filtered
SELECT event_id, account, kind, job_id, type, created_at FROM events
WHERE (%(job)s::text IS NULL OR job_id = %(job)s) AND (%(kind)s::text IS NULL OR kind = %(kind)s) AND (%(since)s::double precision IS NULL OR created_at >= %(since)s)
  AND (%(account)s::text IS NULL OR account = %(account)s)
ORDER BY created_at DESC, event_id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: event_seq
-- A cursor of GET /v1/events; %(accounts)s (a JSON array, NULL: every event) limits the
-- events a token sees: another account's event is no cursor, as if never recorded.
SELECT seq FROM events WHERE event_id = %(event_id)s
  AND (%(accounts)s::json IS NULL
       OR account IN (SELECT json_array_elements_text(%(accounts)s::json)));

-- name: events_after
-- GET /v1/events: a page in recorded order, after a cursor's seq (0: from the first); only
-- the accounts' events (see event_seq), filtered before the page is cut.
SELECT seq, event_id, type, created_at, body FROM events
WHERE seq > %(seq)s AND (%(accounts)s::json IS NULL
       OR account IN (SELECT json_array_elements_text(%(accounts)s::json)))
ORDER BY seq LIMIT %(limit)s;

-- name: list_deliveries_filtered
SELECT d.id, d.event_id, e.kind, e.job_id, e.type, d.endpoint, d.state, d.attempts,
       d.created_at, d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error,
       d.delivered_at,
       CASE WHEN d.claim_expires > {db_now}
            THEN d.claimed_by END AS claimed_by
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE (%(state)s::text IS NULL OR d.state = %(state)s) AND (%(job)s::text IS NULL OR e.job_id = %(job)s)
  AND (%(kind)s::text IS NULL OR e.kind = %(kind)s) AND (%(since)s::double precision IS NULL OR d.created_at >= %(since)s)
ORDER BY d.id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: old_settled_events
SELECT event_id FROM events
WHERE created_at < %(cutoff)s
  AND NOT EXISTS (
      SELECT 1 FROM deliveries WHERE deliveries.event_id = events.event_id AND state = 'pending')
ORDER BY created_at LIMIT %(batch)s;

-- name: prune_attempts
DELETE FROM delivery_attempts WHERE delivery_id IN (
    SELECT id FROM deliveries WHERE event_id IN (SELECT json_array_elements_text(%(ids)s::json)));

-- name: prune_deliveries
DELETE FROM deliveries WHERE event_id IN (SELECT json_array_elements_text(%(ids)s::json));

-- name: prune_events
DELETE FROM events WHERE event_id IN (SELECT json_array_elements_text(%(ids)s::json));

-- name: prune_watches
DELETE FROM watches WHERE (kind, job_id) IN (
    SELECT kind, job_id FROM watches
    WHERE state != 'active' AND finished_at < %(cutoff)s LIMIT %(batch)s);

-- -- delivery claims ------------------------------------------------------------------------
-- As in SQLite, with the database's clock as {db_now}; the rows are chosen with FOR UPDATE
-- SKIP LOCKED, so two nodes claiming at once skip each other's rows instead of waiting (or
-- claiming the same row twice).

-- fragment: claimable
-- The rows a claim takes (claim_due_deliveries, claim_and_read_deliveries): due rows of
-- :endpoint nobody holds or whose claim lapsed, not in flight here, oldest due first.
SELECT d.id FROM deliveries d
WHERE d.state = 'pending' AND d.endpoint = %(endpoint)s AND d.next_attempt_at <= %(now)s
  AND (d.claim_expires IS NULL OR d.claim_expires <= (SELECT db_now FROM clock))
  AND d.id NOT IN (SELECT json_array_elements_text(%(exclude)s::json)::bigint)
ORDER BY d.next_attempt_at LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: claim_due_deliveries
WITH clock (db_now) AS (SELECT {db_now})
UPDATE deliveries SET claimed_by = %(node)s, claim_token = claim_token + 1,
    claim_expires = (SELECT db_now FROM clock) + %(ttl)s
WHERE id IN ({claimable})
RETURNING id, claim_token, claim_expires - (SELECT db_now FROM clock) AS claim_left;

-- name: any_claimable
SELECT 1 FROM deliveries d
WHERE d.state = 'pending' AND d.endpoint = %(endpoint)s AND d.next_attempt_at <= %(now)s
  AND (d.claim_expires IS NULL
       OR d.claim_expires <= {db_now})
  AND d.id NOT IN (SELECT json_array_elements_text(%(exclude)s::json)::bigint)
LIMIT 1;

-- name: claimed_deliveries
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, e.account
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE d.id IN (SELECT json_array_elements_text(%(ids)s::json)::bigint)
ORDER BY d.next_attempt_at, d.id;

-- -- one round trip where SQLite needs a transaction of several statements ------------------
-- The store runs these instead of their several-statement forms when the dialect has them:
-- one statement is atomic on its own (autocommit), and each saved round trip is time on the
-- daemon's loop (measured: 9.4 statements per delivery before, 2 after).

-- fragment: prior_attempt
-- The *_with_attempt statements' look for the attempt already written under this claim.
prior AS (
    SELECT applied FROM delivery_attempts
    WHERE delivery_id = %(id)s AND claim_token = %(claim)s::bigint
)

-- fragment: new_attempt
-- The *_with_attempt statements' attempt row (kept even when the delivery was not updated)
-- and their answer: what the claim's write did.
attempt AS (
    INSERT INTO delivery_attempts (delivery_id, generation, started_at, duration, status,
        error, outcome, claim_token, applied)
    SELECT id, generation, %(started)s, %(now)s - %(started)s, %(status)s::integer,
           %(error)s::text, %(outcome)s, %(claim)s::bigint, (SELECT count(*) FROM updated)
    FROM deliveries WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT DO NOTHING
)
SELECT COALESCE((SELECT applied FROM prior), (SELECT count(*) FROM updated))

-- name: claim_and_read_deliveries
-- claim_due_deliveries and claimed_deliveries in one: the claimed rows with their events.
WITH clock (db_now) AS (SELECT {db_now}),
claimed AS (
    UPDATE deliveries SET claimed_by = %(node)s, claim_token = claim_token + 1,
        claim_expires = (SELECT db_now FROM clock) + %(ttl)s
    WHERE id IN ({claimable})
    RETURNING id, attempts, generation, deferred, first_attempt_at, event_id, next_attempt_at,
        claim_token, claim_expires - (SELECT db_now FROM clock) AS claim_left
)
SELECT c.id, c.attempts, c.generation, c.deferred, c.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, e.account, c.claim_token, c.claim_left
FROM claimed c JOIN events e ON e.event_id = c.event_id
ORDER BY c.next_attempt_at, c.id;

-- name: delivery_succeeded_with_attempt
-- delivery_succeeded and insert_attempt in one; 1 when the delivery row was updated, else 0.
-- The attempt is kept even when the row was not updated (it was sent: replays keep history).
-- A write retried after its answer was lost (the statement committed, the connection did
-- not bring the answer back) finds the attempt of its claim (`prior`), changes nothing and
-- returns what the first write did. All parts see one snapshot: a retry that meets a first
-- write still running (its client gone) waits on the row lock, then no longer matches
-- (claimed_by is NULL) and its attempt row conflicts: 0, which the store checks with a
-- fresh read of attempt_of_claim.
WITH {prior_attempt}, updated AS (
    UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
        last_attempt_at = %(now)s, last_status = %(status)s, last_error = NULL,
        delivered_at = %(now)s, next_attempt_at = NULL,
        first_attempt_at = COALESCE(first_attempt_at, %(started)s),
        claimed_by = NULL, claim_expires = NULL
    WHERE id = %(id)s AND (%(generation)s::bigint IS NULL OR generation = %(generation)s)
      AND (%(claim)s::bigint IS NULL OR (claim_token = %(claim)s AND claimed_by IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING id
), {new_attempt};

-- name: delivery_failed_with_attempt
-- delivery_failed and insert_attempt in one (see delivery_succeeded_with_attempt).
WITH {prior_attempt}, updated AS (
    UPDATE deliveries SET state = %(state)s, attempts = attempts + 1,
        last_attempt_at = %(now)s, last_status = %(status)s, last_error = %(error)s,
        next_attempt_at = %(next_attempt_at)s, deferred = deferred + %(deferred)s,
        first_attempt_at = COALESCE(first_attempt_at, %(started)s),
        claimed_by = NULL, claim_expires = NULL
    WHERE id = %(id)s AND state = 'pending'
      AND (%(generation)s::bigint IS NULL OR generation = %(generation)s)
      AND (%(claim)s::bigint IS NULL OR (claim_token = %(claim)s AND claimed_by IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING id
), {new_attempt};

-- name: active_accounts
-- The accounts that have an active watch, by one index seek each (the status line's look
-- for watches of accounts no longer configured).
WITH RECURSIVE accts (account) AS (
    SELECT MIN(account) FROM watches WHERE state = 'active'
    UNION ALL
    SELECT (SELECT MIN(account) FROM watches WHERE state = 'active' AND account > accts.account)
    FROM accts WHERE accts.account IS NOT NULL
)
SELECT account FROM accts WHERE account IS NOT NULL;

-- name: discovered_among
SELECT job_id FROM discovered WHERE account = %(account)s AND kind = %(kind)s
  AND job_id IN (SELECT json_array_elements_text(%(ids)s::json))
UNION SELECT job_id FROM watches WHERE account = %(account)s AND kind = %(kind)s
  AND job_id IN (SELECT json_array_elements_text(%(ids)s::json));
