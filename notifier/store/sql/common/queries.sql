-- The statements both dialects run as they are, by name: written once, in SQLite's style
-- (`?` and `:name`); notifier.store.schema hands PostgreSQL their psycopg form (`%s`,
-- `%(name)s`). A name is defined here or in a dialect's queries.sql, never both (the
-- loader refuses it). `{fragment}` stands for the `-- fragment:` of that name, from this
-- file or the dialect's.

-- fragment: watch_columns
-- What WatchRow is read from (notifier.store.rows.watch_from_row).
job_id, labels, endpoints, status, progress, create_time, added_at, last_poll_at,
       next_poll_at, polls, errors, poll_key, first_running_at, first_running_progress,
       last_queued_at, misses, predicted_at, reopens, kind, phase, account

-- name: watch_exists
SELECT 1 FROM watches WHERE account = ? AND kind = ? AND job_id = ?;

-- name: file_watch_ids
SELECT account, kind, job_id FROM watches WHERE source = 'file' AND state = 'active';

-- name: file_watch_ids_unlisted
-- An active file watch that no node's watch file lists any more.
SELECT account, kind, job_id FROM watches w WHERE source = 'file' AND state = 'active'
AND NOT EXISTS (SELECT 1 FROM file_listings l
                WHERE l.account = w.account AND l.kind = w.kind AND l.job_id = w.job_id);

-- name: file_listing_ids
SELECT account, kind, job_id FROM file_listings WHERE node = :node;

-- name: file_listing_add
INSERT INTO file_listings (node, account, kind, job_id) VALUES (:node, :account, :kind, :job_id)
ON CONFLICT (node, account, kind, job_id) DO NOTHING;

-- name: file_listing_remove
DELETE FROM file_listings
WHERE node = :node AND account = :account AND kind = :kind AND job_id = :job_id;

-- name: file_lister_seen
INSERT INTO file_listers (node, seen_at) VALUES (:node, :now)
ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at;

-- name: file_lister_touch
UPDATE file_listers SET seen_at = :now WHERE node = :node;

-- name: file_listings_drop_stale
-- Listings of nodes not seen since the cutoff (gone, or renamed by a restart).
DELETE FROM file_listings WHERE node IN (SELECT node FROM file_listers WHERE seen_at < :cutoff);

-- name: file_listers_drop_stale
DELETE FROM file_listers WHERE seen_at < :cutoff;

-- name: file_listings_clear
-- One daemon on the state (SQLite): its file is the only listing.
DELETE FROM file_listings;

-- name: file_listers_clear
DELETE FROM file_listers;

-- name: delete_watch
DELETE FROM watches WHERE account = ? AND kind = ? AND job_id = ?;

-- name: queue_delete
DELETE FROM watch_queue WHERE seq = ?;

-- name: queue_reject
UPDATE watch_queue SET rejected = ? WHERE seq = ?;

-- name: queue_insert
INSERT INTO watch_queue (job_id, labels, endpoints, enqueued_at, kind, account)
VALUES (?, ?, ?, ?, ?, ?);

-- name: queue_rejected
SELECT seq, account, kind, job_id, labels, endpoints, enqueued_at, rejected FROM watch_queue
WHERE rejected IS NOT NULL ORDER BY seq;

-- name: get_watch
SELECT {watch_columns}
FROM watches WHERE account = ? AND kind = ? AND job_id = ?;

-- name: record_poll
UPDATE watches SET status = :status, phase = :phase, progress = :progress, msg = :msg, create_time = :create_time,
    last_poll_at = :now, next_poll_at = :next_poll_at, poll_key = :poll_key, polls = polls + 1,
    errors = 0, last_error = NULL, first_running_at = :first_running_at,
    first_running_progress = :first_running_progress, last_queued_at = :last_queued_at,
    misses = :misses, predicted_at = :predicted_at, answered_at = :now, rejections = 0,
    first_rejected_at = NULL, last_data = :last_data, observed_at = :now
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active';

-- name: last_observation
SELECT kind, job_id, state, status, phase, last_data, observed_at FROM watches
WHERE account = ? AND kind = ? AND job_id = ?;

-- name: record_poll_error
UPDATE watches SET last_poll_at = :now, next_poll_at = :next_poll_at,
    poll_key = :next_poll_at, errors = errors + 1, last_error = :error
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active';

-- name: finish_watch
-- observed = 1: an answer ends it (its data is the last observation); 0: the id was refused,
-- and the last answer seen stays the last observation.
UPDATE watches SET state = :state, status = :status, phase = :phase, progress = :progress,
    msg = :msg,
    create_time = :create_time, last_poll_at = :now, next_poll_at = NULL, poll_key = NULL,
    polls = polls + :polled,
    finished_at = :now, last_error = :error,
    last_data = CASE WHEN :observed = 1 THEN :last_data ELSE last_data END,
    observed_at = CASE WHEN :observed = 1 THEN :now ELSE observed_at END
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active';

-- name: expire_watch
UPDATE watches SET state = 'expired', next_poll_at = NULL, poll_key = NULL, finished_at = :now,
    last_error = 'not terminal after give_up_after; no longer polled'
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active'
  AND added_at <= :cutoff;

-- name: note_rejection
UPDATE watches SET msg = :msg, last_error = :msg
WHERE account = :account AND kind = :kind AND job_id = :job_id AND state = 'active';

-- fragment: listed_watch_columns
-- A row of watch list (and GET /v1/watches/{id}).
account, kind, job_id, state, phase, status, progress, msg, labels, endpoints, source,
       added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at, rejections

-- name: list_watches
SELECT {listed_watch_columns}
FROM watches ORDER BY added_at, account, kind, job_id;

-- name: list_watches_in_state
SELECT {listed_watch_columns}
FROM watches WHERE state = ? ORDER BY added_at, account, kind, job_id;

-- name: count_active
SELECT COUNT(*) FROM watches WHERE state = 'active';

-- name: count_active_of
SELECT COUNT(*) FROM watches WHERE state = 'active' AND account = ?;

-- name: active_counts_by_kind
SELECT kind, COUNT(*) FROM watches WHERE state = 'active' AND account = ? GROUP BY kind;

-- name: active_ids
-- A kind's active ids in id order, after :after ('' from the first): kinds listed by ids.
SELECT job_id FROM watches WHERE state = 'active' AND account = :account AND kind = :kind
  AND job_id > :after
ORDER BY job_id LIMIT :limit;

-- name: count_pending_deliveries
SELECT COUNT(*) FROM deliveries WHERE state = 'pending';

-- name: watch_counts
SELECT state, COUNT(*) FROM watches GROUP BY state;

-- name: insert_event
-- seq: the recorded order (GET /v1/events); lock_event_order first.
INSERT INTO events (event_id, job_id, type, created_at, body, last_seen_running_at, kind,
    account, seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events))
ON CONFLICT DO NOTHING;

-- name: insert_delivery
INSERT INTO deliveries (event_id, endpoint, created_at, next_attempt_at) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING;

-- name: list_events
SELECT event_id, account, kind, job_id, type, created_at FROM events
ORDER BY created_at, event_id;

-- name: replay_event
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = :now, delivered_at = NULL, generation = generation + 1
WHERE event_id = :event_id;

-- name: replay_dead
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = :now, generation = generation + 1
WHERE state = 'dead';

-- name: get_event
SELECT e.event_id, e.account, e.kind, e.job_id, e.type, e.created_at, e.body,
       e.last_seen_running_at, w.endpoints AS watch_endpoints
FROM events e
LEFT JOIN watches w ON w.account = e.account AND w.kind = e.kind AND w.job_id = e.job_id
WHERE e.event_id = ?;

-- name: park_endpoint
-- Pending deliveries of an endpoint the daemon does not run: dead, replayable, and revived
-- by `revive_endpoint` when it is configured again.
UPDATE deliveries SET state = 'dead', last_error = :reason, next_attempt_at = NULL
WHERE state = 'pending' AND endpoint = :endpoint;

-- name: revive_endpoint
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = :now, last_error = NULL, generation = generation + 1
WHERE state = 'dead' AND endpoint = :endpoint
  AND last_error IN ('endpoint removed', 'endpoint not configured');

-- name: list_deliveries
SELECT d.id, d.event_id, e.job_id, e.type, d.endpoint, d.state, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d JOIN events e ON e.event_id = d.event_id ORDER BY d.id;

-- name: list_deliveries_in_state
SELECT d.id, d.event_id, e.job_id, e.type, d.endpoint, d.state, d.attempts, d.created_at,
       d.last_attempt_at, d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d JOIN events e ON e.event_id = d.event_id WHERE d.state = ? ORDER BY d.id;

-- name: delivery_counts
SELECT state, COUNT(*) FROM deliveries GROUP BY state;

-- name: delivery_counts_by_endpoint
SELECT state, endpoint, COUNT(*) FROM deliveries GROUP BY state, endpoint;

-- name: get_token
SELECT access_token, expire_at FROM vendor_token WHERE account = ?;

-- name: save_token
INSERT INTO vendor_token (account, access_token, expire_at, fetched_at) VALUES (?, ?, ?, ?)
ON CONFLICT (account) DO UPDATE SET access_token = excluded.access_token,
    expire_at = excluded.expire_at, fetched_at = excluded.fetched_at;

-- name: save_token_fenced
-- A token fetched under the vendor lease: stored only while that lease is held by the
-- process that fetched it (its owner, unexpired on the database's clock), and only over a
-- token whose fetch was sent earlier (fetched_at: the database's clock before the fetch was
-- sent): newest wins. A node thawed after losing the lease writes nothing back. RETURNING:
-- no row when refused.
WITH clock (db_now) AS (SELECT {db_now})
INSERT INTO vendor_token (account, access_token, expire_at, fetched_at)
SELECT :account, :token, :expire_at, :sent FROM clock
WHERE EXISTS (SELECT 1 FROM leases WHERE name = :lease AND owner = :owner
              AND expires_at > clock.db_now)
ON CONFLICT (account) DO UPDATE SET access_token = excluded.access_token,
    expire_at = excluded.expire_at, fetched_at = excluded.fetched_at
WHERE vendor_token.fetched_at < excluded.fetched_at
RETURNING account;

-- name: database_clock
-- The database's clock (unix seconds): the time leases, fenced token saves and (on a
-- shared PostgreSQL state) every node's schedule keep.
SELECT {db_now};

-- name: drop_token
DELETE FROM vendor_token WHERE account = ? AND access_token = ?;

-- name: probe_write
INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at;

-- name: shift_watch_schedule
-- SQLite only (its one daemon's clock is the database's): a step of the system clock moves
-- every time of an active watch that the due, expiry, rejection and polling-policy decisions
-- compare with now (not create_time: that is the vendor's clock). A shared PostgreSQL
-- schedule is on the database's time and is shifted by nobody.
UPDATE watches SET added_at = added_at + :delta, next_poll_at = next_poll_at + :delta,
    poll_key = poll_key + :delta, answered_at = answered_at + :delta,
    last_poll_at = last_poll_at + :delta, first_running_at = first_running_at + :delta,
    last_queued_at = last_queued_at + :delta, predicted_at = predicted_at + :delta,
    first_rejected_at = first_rejected_at + :delta
WHERE state = 'active';

-- name: shift_delivery_schedule
-- As shift_watch_schedule: when a pending delivery is due, and since when it is retried.
UPDATE deliveries SET next_attempt_at = next_attempt_at + :delta,
    first_attempt_at = first_attempt_at + :delta
WHERE state = 'pending';

-- name: attempt_of_claim
-- The result already written under this claim (a write retried after its COMMIT went
-- through but the answer was lost): whether it changed the delivery; no row: not written.
SELECT applied FROM delivery_attempts WHERE delivery_id = :id AND claim_token = :claim;

-- name: attempts_of_event
SELECT a.delivery_id, d.endpoint, a.generation, a.started_at, a.duration, a.status, a.error,
       a.outcome
FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.event_id = ? ORDER BY a.id;

-- name: deliveries_of_event
SELECT d.id, d.endpoint, d.state, d.attempts, d.generation, d.created_at, d.last_attempt_at,
       d.next_attempt_at, d.last_status, d.last_error, d.delivered_at
FROM deliveries d WHERE d.event_id = ? ORDER BY d.endpoint;

-- name: event_summary
SELECT event_id, account, kind, job_id, type, created_at, body FROM events WHERE event_id = ?;

-- name: replay_event_endpoint
UPDATE deliveries SET state = 'pending', attempts = 0, deferred = 0, first_attempt_at = NULL,
    next_attempt_at = :now, delivered_at = NULL, generation = generation + 1
WHERE event_id = :event_id AND endpoint = :endpoint;

-- name: watch_summary
SELECT kind, job_id, state, phase, source, labels, endpoints, finished_at, account FROM watches
WHERE account = ? AND kind = ? AND job_id = ?;

-- name: reopen_watch
-- reopens: a new count, so the watch's next event is a new one (with an id of its own).
UPDATE watches SET state = 'active', added_at = :now, next_poll_at = :now, poll_key = :now,
    finished_at = NULL, errors = 0, last_error = NULL, misses = 0, predicted_at = NULL,
    rejections = 0, first_rejected_at = NULL, reopens = reopens + 1
WHERE account = :account AND kind = :kind AND job_id = :job_id
  AND state IN ('expired', 'failed', 'rejected');

-- name: queue_clear_rejected
DELETE FROM watch_queue WHERE rejected IS NOT NULL;

-- name: prune_rejected
DELETE FROM watch_queue WHERE seq IN (
    SELECT seq FROM watch_queue WHERE rejected IS NOT NULL AND enqueued_at < :cutoff
    LIMIT :batch);

-- name: release_every_claim
-- A daemon that holds the SQLite file's instance lock is the only one: claims left in the
-- file are a dead predecessor's.
UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL WHERE claimed_by IS NOT NULL;

-- name: release_claim
-- Only the claim it names: one that lapsed and was taken over belongs to the other node now.
UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL
WHERE id = :id AND claim_token = :claim AND claimed_by IS NOT NULL;

-- -- lease ------------------------------------------------------------------------------------
-- The database's clock is ONE expression per statement, in the `clock` CTE: {db_now}, the
-- dialect's fragment.

-- name: acquire_lease
-- Take the lease if it is free (no row, or expired on the database's clock) or already ours,
-- or in any case with :force = 1 (a daemon that knows it is alone: SQLite's instance lock,
-- so a restart after a crash does not wait out its own dead lease); no row comes back while
-- another owner holds it. A renewal keeps acquired_at and previous_owner; a take (from
-- someone else, or ours again after it lapsed) resets them. Both write advertise: where the
-- holder's gateway is reachable now. WHERE true: SQLite's parser needs a WHERE before an
-- upsert's ON CONFLICT (a no-op on PostgreSQL).
WITH clock (db_now) AS (SELECT {db_now})
INSERT INTO leases (name, owner, expires_at, acquired_at, renewed_at, previous_owner,
    advertise)
SELECT :name, :owner, db_now + :ttl, db_now, db_now, NULL, :advertise FROM clock WHERE true
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
WHERE :force = 1 OR leases.owner = excluded.owner OR leases.expires_at <= excluded.renewed_at
RETURNING expires_at - renewed_at AS seconds_left, previous_owner;

-- name: release_lease
-- Let it expire :holdoff seconds from now, never later than it would have (the row stays: the
-- next holder learns who held it before). RETURNING, as a cursor's rowcount does not count
-- an UPDATE that starts WITH.
WITH clock (db_now) AS (SELECT {db_now})
UPDATE leases SET expires_at = (SELECT db_now FROM clock) + :holdoff
WHERE name = :name AND owner = :owner AND expires_at > (SELECT db_now FROM clock) + :holdoff
RETURNING owner;

-- name: lease_holder
WITH clock (db_now) AS (SELECT {db_now})
SELECT owner, expires_at - db_now AS seconds_left FROM leases, clock
WHERE name = :name AND expires_at > db_now;

-- name: lease_advertise
WITH clock (db_now) AS (SELECT {db_now})
SELECT advertise FROM leases, clock
WHERE name = :name AND expires_at > db_now;

-- name: lease_census
-- Every unexpired lease and presence row: who holds what now, and for how much longer
-- (the database's clock).
WITH clock (db_now) AS (SELECT {db_now})
SELECT name, owner, expires_at - db_now FROM leases, clock WHERE expires_at > db_now
ORDER BY name;


-- name: get_mark
SELECT value FROM state_marks WHERE name = ?;

-- name: set_mark
INSERT INTO state_marks (name, value) VALUES (:name, :value)
ON CONFLICT (name) DO UPDATE SET value = excluded.value;

-- name: add_mark
INSERT INTO state_marks (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING;

-- name: add_discovered
INSERT INTO discovered (account, kind, job_id, create_time, at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (account, kind, job_id) DO NOTHING;

-- name: tombstone_watch
-- A removed watch is not made again by discovery.
INSERT INTO discovered (account, kind, job_id, create_time, at)
SELECT account, kind, job_id, coalesce(create_time, 0), :now FROM watches
WHERE account = :account AND kind = :kind AND job_id = :job_id
ON CONFLICT (account, kind, job_id) DO NOTHING;

-- name: prune_discovered
DELETE FROM discovered WHERE account = ? AND kind = ? AND create_time < ?;

-- name: prune_discovered_before
-- Retention: a removed watch's row, kept even without discovery, goes with the history.
DELETE FROM discovered WHERE at < :cutoff;

-- name: add_gateway_key
-- The first node to ask makes the key; another asking at once waits for its commit (the
-- primary key) and keeps it.
INSERT INTO gateway_keys (name, secret, created_at) VALUES (:name, :secret, :now)
ON CONFLICT (name) DO NOTHING;

-- name: get_gateway_key
SELECT secret FROM gateway_keys WHERE name = ?;
