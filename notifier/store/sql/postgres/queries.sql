-- Every statement the PostgreSQL store runs, by name: the same names and parameters as
-- ../sqlite/queries.sql, in PostgreSQL's dialect (psycopg placeholders).

-- name: upsert_watch
INSERT INTO watches (job_id, source, labels, endpoints, added_at, next_poll_at, poll_key)
VALUES (%(job_id)s, %(source)s, %(labels)s, %(endpoints)s, %(now)s, %(now)s, %(now)s)
ON CONFLICT (job_id) DO UPDATE SET labels = excluded.labels, endpoints = excluded.endpoints
WHERE watches.labels IS DISTINCT FROM excluded.labels OR watches.endpoints IS DISTINCT FROM excluded.endpoints;

-- name: watch_exists
SELECT 1 FROM watches WHERE job_id = %s;

-- name: file_watch_ids
SELECT job_id FROM watches WHERE source = 'file' AND state = 'active';

-- name: file_watch_ids_unlisted
-- An active file watch that no node's watch file lists any more.
SELECT job_id FROM watches w WHERE source = 'file' AND state = 'active'
AND NOT EXISTS (SELECT 1 FROM file_listings l WHERE l.job_id = w.job_id);

-- name: file_listing_ids
SELECT job_id FROM file_listings WHERE node = %(node)s;

-- name: file_listing_add
INSERT INTO file_listings (node, job_id) VALUES (%(node)s, %(job_id)s)
ON CONFLICT (node, job_id) DO NOTHING;

-- name: file_listing_remove
DELETE FROM file_listings WHERE node = %(node)s AND job_id = %(job_id)s;

-- name: file_lister_seen
INSERT INTO file_listers (node, seen_at) VALUES (%(node)s, %(now)s)
ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at;

-- name: file_lister_touch
UPDATE file_listers SET seen_at = %(now)s WHERE node = %(node)s;

-- name: file_listings_drop_stale
-- Listings of nodes not seen since the cutoff (gone, or renamed by a restart).
DELETE FROM file_listings WHERE node IN (SELECT node FROM file_listers WHERE seen_at < %(cutoff)s);

-- name: file_listers_drop_stale
DELETE FROM file_listers WHERE seen_at < %(cutoff)s;

-- name: file_listings_clear
-- One daemon on the state (SQLite): its file is the only listing.
DELETE FROM file_listings;

-- name: file_listers_clear
DELETE FROM file_listers;

-- name: delete_watch
DELETE FROM watches WHERE job_id = %s;

-- name: queue_rows
SELECT seq, job_id, labels, endpoints FROM watch_queue WHERE rejected IS NULL ORDER BY seq LIMIT %s
FOR UPDATE SKIP LOCKED;

-- name: queue_delete
DELETE FROM watch_queue WHERE seq = %s;

-- name: queue_reject
UPDATE watch_queue SET rejected = %s WHERE seq = %s;

-- name: queue_insert
INSERT INTO watch_queue (job_id, labels, endpoints, enqueued_at) VALUES (%s, %s, %s, %s);

-- name: queue_rejected
SELECT seq, job_id, labels, endpoints, enqueued_at, rejected FROM watch_queue
WHERE rejected IS NOT NULL ORDER BY seq;

-- name: due_watches
SELECT job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens
FROM watches
WHERE state = 'active' AND poll_key <= %s ORDER BY poll_key LIMIT %s;

-- name: early_watches
SELECT job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens
FROM watches
WHERE state = 'active' AND next_poll_at <= %s ORDER BY next_poll_at LIMIT %s;

-- name: active_watches_among
SELECT job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens
FROM watches WHERE state = 'active' AND job_id IN (SELECT json_array_elements_text(%s::json));

-- name: oldest_active_create_time
SELECT MIN(create_time) FROM watches
WHERE state = 'active' AND create_time > 0;

-- name: newest_active_create_time
SELECT MAX(create_time) FROM watches
WHERE state = 'active' AND create_time > 0;

-- name: get_watch
SELECT job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens
FROM watches WHERE job_id = %s;

-- name: record_poll
UPDATE watches SET status = %(status)s, progress = %(progress)s, msg = %(msg)s, create_time = %(create_time)s,
    last_poll_at = %(now)s, next_poll_at = %(next_poll_at)s, poll_key = %(poll_key)s, polls = polls + 1,
    errors = 0, last_error = NULL, first_running_at = %(first_running_at)s,
    first_running_progress = %(first_running_progress)s, last_queued_at = %(last_queued_at)s,
    misses = %(misses)s, predicted_at = %(predicted_at)s, answered_at = %(now)s, rejections = 0,
    first_rejected_at = NULL, last_data = %(last_data)s, observed_at = %(now)s
WHERE job_id = %(job_id)s AND state = 'active';

-- name: last_observation
SELECT job_id, state, status, last_data, observed_at FROM watches WHERE job_id = %s;

-- name: record_poll_error
UPDATE watches SET last_poll_at = %(now)s, next_poll_at = %(next_poll_at)s,
    poll_key = %(next_poll_at)s, errors = errors + 1, last_error = %(error)s
WHERE job_id = %(job_id)s AND state = 'active';

-- name: finish_watch
-- observed = 1: an answer ends it (its data is the last observation); 0: the id was refused,
-- and the last answer seen stays the last observation.
UPDATE watches SET state = %(state)s, status = %(status)s, progress = %(progress)s, msg = %(msg)s,
    create_time = %(create_time)s, last_poll_at = %(now)s, next_poll_at = NULL, poll_key = NULL,
    polls = polls + %(polled)s,
    finished_at = %(now)s, last_error = %(error)s,
    last_data = CASE WHEN %(observed)s = 1 THEN %(last_data)s ELSE last_data END,
    observed_at = CASE WHEN %(observed)s = 1 THEN %(now)s ELSE observed_at END
WHERE job_id = %(job_id)s AND state = 'active';

-- name: expirable_watches
SELECT job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens
FROM watches
WHERE state = 'active' AND added_at <= %(cutoff)s AND answered_at >= added_at + %(give_up_after)s;

-- name: expire_watch
UPDATE watches SET state = 'expired', next_poll_at = NULL, poll_key = NULL, finished_at = %(now)s,
    last_error = 'not terminal after give_up_after; no longer polled'
WHERE job_id = %(job_id)s AND state = 'active' AND added_at <= %(cutoff)s;

-- name: due_for_last_look
UPDATE watches SET next_poll_at = LEAST(next_poll_at, %(now)s), poll_key = LEAST(poll_key, %(now)s)
WHERE job_id IN (
    SELECT job_id FROM watches
    WHERE state = 'active' AND added_at <= %(cutoff)s
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
WHERE job_id = %(job_id)s AND state = 'active'
RETURNING rejections, first_rejected_at;

-- name: note_rejection
UPDATE watches SET msg = %(msg)s, last_error = %(msg)s WHERE job_id = %(job_id)s AND state = 'active';

-- name: list_watches
SELECT job_id, state, status, progress, msg, labels, endpoints, source, added_at, last_poll_at,
       next_poll_at, polls, errors, last_error, finished_at, rejections
FROM watches ORDER BY added_at, job_id;

-- name: list_watches_in_state
SELECT job_id, state, status, progress, msg, labels, endpoints, source, added_at, last_poll_at,
       next_poll_at, polls, errors, last_error, finished_at, rejections
FROM watches WHERE state = %s ORDER BY added_at, job_id;

-- name: count_active
SELECT COUNT(*) FROM watches WHERE state = 'active';

-- name: count_pending_deliveries
SELECT COUNT(*) FROM deliveries WHERE state = 'pending';

-- name: watch_counts
SELECT state, COUNT(*) FROM watches GROUP BY state;

-- name: lock_event_order
-- Taken before an event is inserted, so events commit in the order of their seq.
-- Held until COMMIT: a transaction that took seq N commits before any other takes N+1,
-- so a reader paging by seq never sees N+1 while N is still to come (no gaps).
SELECT pg_advisory_xact_lock(4707001);

-- name: insert_event
-- seq: the recorded order (GET /v1/events); lock_event_order first.
INSERT INTO events (event_id, job_id, type, created_at, body, last_seen_running_at, seq)
VALUES (%s, %s, %s, %s, %s, %s, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events))
ON CONFLICT DO NOTHING;

-- name: insert_delivery
INSERT INTO deliveries (event_id, endpoint, created_at, next_attempt_at) VALUES (%s, %s, %s, %s)
ON CONFLICT DO NOTHING;

-- name: list_events
SELECT event_id, job_id, type, created_at FROM events ORDER BY created_at, event_id;

-- name: due_deliveries
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at
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

-- name: replay_event
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = %(now)s, delivered_at = NULL, generation = generation + 1
WHERE event_id = %(event_id)s;

-- name: replay_dead
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = %(now)s, generation = generation + 1
WHERE state = 'dead';

-- name: get_event
SELECT e.event_id, e.job_id, e.type, e.created_at, e.body, e.last_seen_running_at,
       w.endpoints AS watch_endpoints
FROM events e LEFT JOIN watches w ON w.job_id = e.job_id WHERE e.event_id = %s;

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

-- name: park_endpoint
-- Pending deliveries of an endpoint the daemon does not run: dead, replayable, and revived
-- by `revive_endpoint` when it is configured again.
UPDATE deliveries SET state = 'dead', last_error = %(reason)s, next_attempt_at = NULL
WHERE state = 'pending' AND endpoint = %(endpoint)s;

-- name: revive_endpoint
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = %(now)s, last_error = NULL, generation = generation + 1
WHERE state = 'dead' AND endpoint = %(endpoint)s
  AND last_error IN ('endpoint removed', 'endpoint not configured');

-- name: list_deliveries
SELECT d.id, d.event_id, e.job_id, e.type, d.endpoint, d.state, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d JOIN events e ON e.event_id = d.event_id ORDER BY d.id;

-- name: list_deliveries_in_state
SELECT d.id, d.event_id, e.job_id, e.type, d.endpoint, d.state, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d JOIN events e ON e.event_id = d.event_id WHERE d.state = %s ORDER BY d.id;

-- name: delivery_counts
SELECT state, COUNT(*) FROM deliveries GROUP BY state;

-- name: delivery_counts_by_endpoint
SELECT state, endpoint, COUNT(*) FROM deliveries GROUP BY state, endpoint;

-- name: get_token
SELECT access_token, expire_at FROM vendor_token WHERE account = %s;

-- name: save_token
INSERT INTO vendor_token (account, access_token, expire_at, fetched_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (account) DO UPDATE SET access_token = excluded.access_token,
    expire_at = excluded.expire_at, fetched_at = excluded.fetched_at;

-- name: save_token_fenced
-- A token fetched under the vendor lease: stored only while that lease is held by the
-- process that fetched it (its owner, unexpired on the database's clock), and only over a
-- token whose fetch was sent earlier (fetched_at: the database's clock before the fetch was
-- sent): newest wins. A node thawed after losing the lease writes nothing back. RETURNING:
-- no row when refused.
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
INSERT INTO vendor_token (account, access_token, expire_at, fetched_at)
SELECT %(account)s, %(token)s, %(expire_at)s, %(sent)s FROM clock
WHERE EXISTS (SELECT 1 FROM leases WHERE name = %(lease)s AND owner = %(owner)s
              AND expires_at > clock.db_now)
ON CONFLICT (account) DO UPDATE SET access_token = excluded.access_token,
    expire_at = excluded.expire_at, fetched_at = excluded.fetched_at
WHERE vendor_token.fetched_at < excluded.fetched_at
RETURNING account;

-- name: database_clock
-- The database's clock (unix seconds): the time leases, fenced token saves and (on a
-- shared PostgreSQL state) every node's schedule keep.
SELECT extract(epoch from clock_timestamp())::double precision;

-- name: drop_token
DELETE FROM vendor_token WHERE account = %s AND access_token = %s;

-- name: probe_write
INSERT INTO write_probe (id, at) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET at = excluded.at;

-- name: shift_watch_schedule
-- SQLite only (its one daemon's clock is the database's): a step of the system clock moves
-- every time of an active watch that the due, expiry, rejection and polling-policy decisions
-- compare with now (not create_time: that is the vendor's clock). A shared PostgreSQL
-- schedule is on the database's time and is shifted by nobody.
UPDATE watches SET added_at = added_at + %(delta)s, next_poll_at = next_poll_at + %(delta)s,
    poll_key = poll_key + %(delta)s, answered_at = answered_at + %(delta)s,
    last_poll_at = last_poll_at + %(delta)s, first_running_at = first_running_at + %(delta)s,
    last_queued_at = last_queued_at + %(delta)s, predicted_at = predicted_at + %(delta)s,
    first_rejected_at = first_rejected_at + %(delta)s
WHERE state = 'active';

-- name: shift_delivery_schedule
-- As shift_watch_schedule: when a pending delivery is due, and since when it is retried.
UPDATE deliveries SET next_attempt_at = next_attempt_at + %(delta)s,
    first_attempt_at = first_attempt_at + %(delta)s
WHERE state = 'pending';

-- name: insert_attempt
INSERT INTO delivery_attempts
    (delivery_id, generation, started_at, duration, status, error, outcome, claim_token, applied)
SELECT id, generation, %(started)s, %(now)s - %(started)s, %(status)s::integer, %(error)s::text,
       %(outcome)s, %(claim)s::bigint, %(applied)s::integer
FROM deliveries WHERE id = %(id)s;

-- name: attempt_of_claim
SELECT applied FROM delivery_attempts WHERE delivery_id = %(id)s AND claim_token = %(claim)s;

-- name: attempts_of_event
SELECT a.delivery_id, d.endpoint, a.generation, a.started_at, a.duration, a.status, a.error,
       a.outcome
FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.event_id = %s ORDER BY a.id;

-- name: deliveries_of_event
SELECT d.id, d.endpoint, d.state, d.attempts, d.generation, d.created_at, d.last_attempt_at,
       d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d WHERE d.event_id = %s ORDER BY d.endpoint;

-- name: event_summary
SELECT event_id, job_id, type, created_at, body FROM events WHERE event_id = %s;

-- name: replay_event_endpoint
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = %(now)s, delivered_at = NULL, generation = generation + 1
WHERE event_id = %(event_id)s AND endpoint = %(endpoint)s;

-- name: watch_summary
SELECT job_id, state, source, labels, endpoints, finished_at FROM watches WHERE job_id = %s;

-- name: reopen_watch
-- reopens: a new count, so the watch's next event is a new one (with an id of its own).
UPDATE watches SET state = 'active', added_at = %(now)s, next_poll_at = %(now)s, poll_key = %(now)s,
    finished_at = NULL, errors = 0, last_error = NULL, misses = 0, predicted_at = NULL,
    rejections = 0, first_rejected_at = NULL, reopens = reopens + 1
WHERE job_id = %(job_id)s AND state IN ('expired', 'failed', 'rejected');

-- name: make_due
-- Other nodes hear of it: the vendor lease holder polls the watch at once.
WITH moved AS (
    UPDATE watches SET next_poll_at = LEAST(next_poll_at, %(now)s),
        poll_key = LEAST(poll_key, %(now)s)
    WHERE job_id = %(job_id)s AND state = 'active' RETURNING job_id
)
SELECT pg_notify('chanjing_notifier', 'watch') FROM moved;

-- name: list_watches_filtered
SELECT job_id, state, status, progress, msg, labels, endpoints, source, added_at, last_poll_at,
       next_poll_at, polls, errors, last_error, finished_at, rejections
FROM watches
WHERE (%(state)s::text IS NULL OR state = %(state)s) AND (%(job)s::text IS NULL OR job_id = %(job)s)
  AND (%(since)s::double precision IS NULL OR added_at >= %(since)s)
ORDER BY added_at DESC, job_id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: list_events_filtered
SELECT event_id, job_id, type, created_at FROM events
WHERE (%(job)s::text IS NULL OR job_id = %(job)s) AND (%(since)s::double precision IS NULL OR created_at >= %(since)s)
ORDER BY created_at DESC, event_id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: list_deliveries_filtered
SELECT d.id, d.event_id, e.job_id, e.type, d.endpoint, d.state, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at,
       CASE WHEN d.claim_expires > extract(epoch from clock_timestamp())::double precision
            THEN d.claimed_by END AS claimed_by
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE (%(state)s::text IS NULL OR d.state = %(state)s) AND (%(job)s::text IS NULL OR e.job_id = %(job)s)
  AND (%(since)s::double precision IS NULL OR d.created_at >= %(since)s)
ORDER BY d.id DESC LIMIT NULLIF(%(limit)s, -1);

-- name: queue_clear_rejected
DELETE FROM watch_queue WHERE rejected IS NOT NULL;

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
DELETE FROM watches WHERE job_id IN (
    SELECT job_id FROM watches
    WHERE state != 'active' AND finished_at < %(cutoff)s LIMIT %(batch)s);

-- name: prune_rejected
DELETE FROM watch_queue WHERE seq IN (
    SELECT seq FROM watch_queue WHERE rejected IS NOT NULL AND enqueued_at < %(cutoff)s
    LIMIT %(batch)s);

-- -- lease ------------------------------------------------------------------------------------
-- The database's clock is ONE expression per statement, in the `clock` CTE:
--   SQLite:     (julianday('now') - 2440587.5) * 86400.0
--   PostgreSQL: extract(epoch from clock_timestamp())

-- name: acquire_lease
-- Take the lease if it is free (no row, or expired on the database's clock) or already ours,
-- or in any case with force = 1 (a daemon that knows it is alone: SQLite's instance lock,
-- so a restart after a crash does not wait out its own dead lease); no row comes back while
-- another owner holds it. A renewal keeps acquired_at and previous_owner; a take (from
-- someone else, or ours again after it lapsed) resets them. Both write advertise: where the
-- holder's gateway is reachable now.
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
INSERT INTO leases (name, owner, expires_at, acquired_at, renewed_at, previous_owner,
    advertise)
SELECT %(name)s, %(owner)s, db_now + %(ttl)s, db_now, db_now, NULL, %(advertise)s FROM clock
ON CONFLICT (name) DO UPDATE SET
    owner = excluded.owner,
    expires_at = excluded.expires_at,
    renewed_at = excluded.renewed_at,
    advertise = excluded.advertise,
    acquired_at = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > excluded.renewed_at
                       THEN leases.acquired_at ELSE excluded.renewed_at END,
    previous_owner = CASE WHEN leases.owner = excluded.owner
                               AND leases.expires_at > excluded.renewed_at
                          THEN leases.previous_owner ELSE leases.owner END
WHERE %(force)s = 1 OR leases.owner = excluded.owner OR leases.expires_at <= excluded.renewed_at
RETURNING expires_at - renewed_at AS seconds_left, previous_owner;

-- name: release_lease
-- Let it expire holdoff seconds from now, never later than it would have (the row stays: the
-- next holder learns who held it before). RETURNING, as a cursor's rowcount does not count
-- an UPDATE that starts WITH.
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
UPDATE leases SET expires_at = (SELECT db_now FROM clock) + %(holdoff)s
WHERE name = %(name)s AND owner = %(owner)s AND expires_at > (SELECT db_now FROM clock) + %(holdoff)s
RETURNING owner;

-- name: lease_holder
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
SELECT owner, expires_at - db_now AS seconds_left FROM leases, clock
WHERE name = %(name)s AND expires_at > db_now;

-- name: lease_advertise
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
SELECT advertise FROM leases, clock
WHERE name = %(name)s AND expires_at > db_now;

-- -- delivery claims ------------------------------------------------------------------------
-- As in SQLite, with the database's clock as extract(epoch from clock_timestamp()); the rows
-- are chosen with FOR UPDATE SKIP LOCKED, so two nodes claiming at once skip each other's
-- rows instead of waiting (or claiming the same row twice).

-- name: claim_due_deliveries
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision)
UPDATE deliveries SET claimed_by = %(node)s, claim_token = claim_token + 1,
    claim_expires = (SELECT db_now FROM clock) + %(ttl)s
WHERE id IN (
    SELECT d.id FROM deliveries d
    WHERE d.state = 'pending' AND d.endpoint = %(endpoint)s AND d.next_attempt_at <= %(now)s
      AND (d.claim_expires IS NULL OR d.claim_expires <= (SELECT db_now FROM clock))
      AND d.id NOT IN (SELECT json_array_elements_text(%(exclude)s::json)::bigint)
    ORDER BY d.next_attempt_at LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id, claim_token, claim_expires - (SELECT db_now FROM clock) AS claim_left;

-- name: any_claimable
SELECT 1 FROM deliveries d
WHERE d.state = 'pending' AND d.endpoint = %(endpoint)s AND d.next_attempt_at <= %(now)s
  AND (d.claim_expires IS NULL
       OR d.claim_expires <= extract(epoch from clock_timestamp())::double precision)
  AND d.id NOT IN (SELECT json_array_elements_text(%(exclude)s::json)::bigint)
LIMIT 1;

-- name: claimed_deliveries
SELECT d.id, d.attempts, d.generation, d.deferred, d.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at
FROM deliveries d JOIN events e ON e.event_id = d.event_id
WHERE d.id IN (SELECT json_array_elements_text(%(ids)s::json)::bigint)
ORDER BY d.next_attempt_at, d.id;

-- name: release_every_claim
-- Same name as SQLite's; never used on a shared state (a claim may be a live node's).
UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL WHERE claimed_by IS NOT NULL;

-- name: release_claim
UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL
WHERE id = %(id)s AND claim_token = %(claim)s AND claimed_by IS NOT NULL;

-- name: event_seq
SELECT seq FROM events WHERE event_id = %s;

-- name: events_after
-- GET /v1/events: a page in recorded order, after a cursor's seq (0: from the first).
SELECT seq, event_id, type, created_at, body FROM events WHERE seq > %s ORDER BY seq LIMIT %s;

-- -- one round trip where SQLite needs a transaction of several statements ------------------
-- The store runs these instead of their several-statement forms when the dialect has them:
-- one statement is atomic on its own (autocommit), and each saved round trip is time on the
-- daemon's loop (measured: 9.4 statements per delivery before, 2 after).

-- name: claim_and_read_deliveries
-- claim_due_deliveries and claimed_deliveries in one: the claimed rows with their events.
WITH clock (db_now) AS (SELECT extract(epoch from clock_timestamp())::double precision),
claimed AS (
    UPDATE deliveries SET claimed_by = %(node)s, claim_token = claim_token + 1,
        claim_expires = (SELECT db_now FROM clock) + %(ttl)s
    WHERE id IN (
        SELECT d.id FROM deliveries d
        WHERE d.state = 'pending' AND d.endpoint = %(endpoint)s AND d.next_attempt_at <= %(now)s
          AND (d.claim_expires IS NULL OR d.claim_expires <= (SELECT db_now FROM clock))
          AND d.id NOT IN (SELECT json_array_elements_text(%(exclude)s::json)::bigint)
        ORDER BY d.next_attempt_at LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, attempts, generation, deferred, first_attempt_at, event_id, next_attempt_at,
        claim_token, claim_expires - (SELECT db_now FROM clock) AS claim_left
)
SELECT c.id, c.attempts, c.generation, c.deferred, c.first_attempt_at, e.event_id, e.job_id,
       e.type, e.created_at, e.body, e.last_seen_running_at, c.claim_token, c.claim_left
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
WITH prior AS (
    SELECT applied FROM delivery_attempts
    WHERE delivery_id = %(id)s AND claim_token = %(claim)s::bigint
), updated AS (
    UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
        last_attempt_at = %(now)s, last_status = %(status)s, last_error = NULL,
        delivered_at = %(now)s, next_attempt_at = NULL,
        first_attempt_at = COALESCE(first_attempt_at, %(started)s),
        claimed_by = NULL, claim_expires = NULL
    WHERE id = %(id)s AND (%(generation)s::bigint IS NULL OR generation = %(generation)s)
      AND (%(claim)s::bigint IS NULL OR (claim_token = %(claim)s AND claimed_by IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING id
), attempt AS (
    INSERT INTO delivery_attempts (delivery_id, generation, started_at, duration, status,
        error, outcome, claim_token, applied)
    SELECT id, generation, %(started)s, %(now)s - %(started)s, %(status)s::integer,
           %(error)s::text, %(outcome)s, %(claim)s::bigint, (SELECT count(*) FROM updated)
    FROM deliveries WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT DO NOTHING
)
SELECT COALESCE((SELECT applied FROM prior), (SELECT count(*) FROM updated));

-- name: delivery_failed_with_attempt
-- delivery_failed and insert_attempt in one (see delivery_succeeded_with_attempt).
WITH prior AS (
    SELECT applied FROM delivery_attempts
    WHERE delivery_id = %(id)s AND claim_token = %(claim)s::bigint
), updated AS (
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
), attempt AS (
    INSERT INTO delivery_attempts (delivery_id, generation, started_at, duration, status,
        error, outcome, claim_token, applied)
    SELECT id, generation, %(started)s, %(now)s - %(started)s, %(status)s::integer,
           %(error)s::text, %(outcome)s, %(claim)s::bigint, (SELECT count(*) FROM updated)
    FROM deliveries WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT DO NOTHING
)
SELECT COALESCE((SELECT applied FROM prior), (SELECT count(*) FROM updated));

-- name: get_mark
SELECT value FROM state_marks WHERE name = %s;

-- name: set_mark
INSERT INTO state_marks (name, value) VALUES (%(name)s, %(value)s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value;

-- name: add_mark
INSERT INTO state_marks (name, value) VALUES (%(name)s, %(value)s) ON CONFLICT (name) DO NOTHING;

-- name: discovered_among
SELECT job_id FROM discovered WHERE job_id IN (SELECT json_array_elements_text(%s::json))
UNION SELECT job_id FROM watches WHERE job_id IN (SELECT json_array_elements_text(%s::json));

-- name: add_discovered
INSERT INTO discovered (job_id, create_time, at) VALUES (%s, %s, %s)
ON CONFLICT (job_id) DO NOTHING;

-- name: tombstone_watch
-- A removed watch is not made again by discovery.
INSERT INTO discovered (job_id, create_time, at)
SELECT job_id, coalesce(create_time, 0), %(now)s FROM watches WHERE job_id = %(job_id)s
ON CONFLICT (job_id) DO NOTHING;

-- name: prune_discovered
DELETE FROM discovered WHERE create_time < %s;

-- name: prune_discovered_before
-- Retention: a removed watch's row, kept even without discovery, goes with the history.
DELETE FROM discovered WHERE at < %(cutoff)s;

-- name: add_gateway_key
-- The first node to ask makes the key; another asking at once waits for its commit (the
-- primary key) and keeps it.
INSERT INTO gateway_keys (name, secret, created_at) VALUES (%(name)s, %(secret)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: get_gateway_key
SELECT secret FROM gateway_keys WHERE name = %s;
