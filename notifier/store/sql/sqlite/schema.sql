-- The SQLite state as the migrations leave it, to read: every table, column and index in one
-- place. The migrations (migration_NNN.sql) are what make and upgrade a state; this file is
-- never run by the program. tests/unit/store/test_schema_files.py applies both to empty
-- databases and holds them to the same catalog.
-- schema_version: 21
-- Times are unix seconds (REAL): the daemon's clock, except where the DATABASE's is named.

-- The intake queue: any program may INSERT here; the daemon moves rows into `watches` within
-- a second or two and deletes them (a row it cannot read stays, with the reason).
CREATE TABLE watch_queue (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    labels      TEXT,             -- optional JSON object {"key": "value"}
    endpoints   TEXT,             -- optional JSON array of endpoint names
    enqueued_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    rejected    TEXT,             -- why the daemon could not take the row; the row is kept
    kind        TEXT NOT NULL DEFAULT 'lip_sync', -- the job's kind (notifier/kinds.py)
    account     TEXT NOT NULL DEFAULT 'default'    -- the vendor account (issue 22)
);
CREATE INDEX watch_queue_todo ON watch_queue (seq) WHERE rejected IS NULL;

-- One row per watched job: a vendor account, a kind and the vendor's id of it (the same id
-- under two kinds, or two accounts, is two watches; rows older than schema 19: 'default').
CREATE TABLE watches (
    account                TEXT NOT NULL DEFAULT 'default',  -- the vendor account (issue 22)
    kind                   TEXT NOT NULL DEFAULT 'lip_sync', -- notifier/kinds.py
    job_id                 TEXT NOT NULL,
    source                 TEXT NOT NULL,                  -- file | queue | discovery
    labels                 TEXT NOT NULL DEFAULT '{}',     -- JSON object
    endpoints              TEXT,                           -- JSON array, NULL = all matching
    state                  TEXT NOT NULL DEFAULT 'active', -- active | succeeded | failed | expired | rejected
    status                 INTEGER,                        -- last vendor status
    progress               INTEGER,
    msg                    TEXT,                           -- last vendor msg, or why it ended
    create_time            INTEGER,                        -- the vendor's create_time
    added_at               REAL NOT NULL,
    last_poll_at           REAL,
    next_poll_at           REAL,                           -- the earliest a poll is worth it
    polls                  INTEGER NOT NULL DEFAULT 0,
    errors                 INTEGER NOT NULL DEFAULT 0,     -- consecutive failed polls
    last_error             TEXT,
    finished_at            REAL,
    -- the polling policy's memory of the job
    first_running_at       REAL,                           -- first poll that saw status 10
    first_running_progress INTEGER,
    last_queued_at         REAL,                           -- last poll that saw status 0
    misses                 INTEGER NOT NULL DEFAULT 0,     -- predictions that were early
    predicted_at           REAL,                           -- predicted completion
    poll_key               REAL,                           -- when it is due (smallest first)
    -- 40000 answers ("record not found") since the last good one, and when the first came
    rejections             INTEGER NOT NULL DEFAULT 0,
    first_rejected_at      REAL,
    answered_at            REAL,                           -- the vendor's last answer for it
    -- the last answer as the vendor sent it (JSON of `data`; NULL: unknown or too large)
    last_data              TEXT,
    observed_at            REAL,
    reopens                INTEGER NOT NULL DEFAULT 0,     -- part of its next event's id
    phase                  TEXT,                           -- queued | running | succeeded | failed (last seen)
    PRIMARY KEY (account, kind, job_id)
);
CREATE INDEX watches_due ON watches (account, next_poll_at) WHERE state = 'active';
CREATE INDEX watches_state ON watches (state, job_id);
CREATE INDEX watches_active_added ON watches (account, added_at) WHERE state = 'active';
CREATE INDEX watches_key ON watches (account, poll_key) WHERE state = 'active';
CREATE INDEX watches_active_created ON watches (account, kind, create_time) WHERE state = 'active';
CREATE INDEX watches_finished ON watches (finished_at) WHERE state != 'active';

-- One per job event (an account's job, its type and reopen: the id says which; schema 21)
-- or event of the daemon's own: what every endpoint of it receives.
CREATE TABLE events (
    event_id             TEXT PRIMARY KEY,
    job_id               TEXT NOT NULL,
    type                 TEXT NOT NULL,
    created_at           REAL NOT NULL,
    body                 BLOB NOT NULL,   -- the exact JSON sent to every endpoint
    last_seen_running_at REAL,            -- when the job was last seen unfinished
    seq                  INTEGER,         -- the recorded order (GET /v1/events)
    kind                 TEXT,            -- the watch's kind; NULL: the daemon's own event
    account              TEXT             -- the account it concerns; NULL: none
);
CREATE INDEX events_created ON events (created_at);
CREATE UNIQUE INDEX events_seq ON events (seq);
CREATE INDEX events_watch ON events (account, kind, job_id);

-- One per event and endpoint.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id),
    endpoint         TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    next_attempt_at  REAL,
    last_attempt_at  REAL,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     REAL,
    generation       INTEGER NOT NULL DEFAULT 0,  -- bumped by every reset (replay, revive)
    deferred         INTEGER NOT NULL DEFAULT 0,  -- failures that followed a Retry-After
    first_attempt_at REAL,                        -- since the last reset
    -- the claim of the node whose attempt holds it (expiry on the DATABASE's clock)
    claimed_by       TEXT,
    claim_expires    REAL,
    claim_token      INTEGER NOT NULL DEFAULT 0,  -- bumped by every claim
    UNIQUE (event_id, endpoint)
);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_state_endpoint ON deliveries (state, endpoint);

-- Every attempt of a delivery (deliveries show), kept when a replay resets the delivery.
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    generation  INTEGER NOT NULL DEFAULT 0,  -- which reset of the delivery it belonged to
    started_at  REAL NOT NULL,
    duration    REAL,                        -- seconds
    status      INTEGER,                     -- HTTP status, NULL when no answer came
    error       TEXT,                        -- NULL for a success
    outcome     TEXT NOT NULL,               -- delivered | failed | dead
    claim_token INTEGER,                     -- the claim its result was written under
    applied     INTEGER                      -- whether that write changed the delivery
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
CREATE UNIQUE INDEX delivery_attempts_claim ON delivery_attempts (delivery_id, claim_token);

-- The vendor access token, shared by every process: issuing one revokes the previous.
CREATE TABLE vendor_token (
    account      TEXT PRIMARY KEY,  -- base_url + app_id
    access_token TEXT NOT NULL,
    expire_at    REAL NOT NULL,
    fetched_at   REAL NOT NULL
);

-- A one-row table the daemon writes to find out whether the state can be written.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL
);

-- The vendor lease: the node holding the unexpired row is the one that calls the vendor.
-- Times on the DATABASE's clock.
CREATE TABLE leases (
    name           TEXT PRIMARY KEY,  -- 'vendor'
    owner          TEXT NOT NULL,     -- the holder's node name and process id
    expires_at     REAL NOT NULL,
    acquired_at    REAL NOT NULL,     -- when this owner took it (kept across renewals)
    renewed_at     REAL NOT NULL,
    previous_owner TEXT,              -- who held it before this tenure (NULL: nobody)
    advertise      TEXT               -- where the holder's gateway is reachable
);

-- Marks of the state itself: 'created_at', 'discovery_since', 'discovery_covered' (those two
-- of lip-sync's list; another kind's are suffixed ':<kind>', e.g. 'discovery_covered:video').
-- Those are account 'default''s; another account's marks end in '@<account>', e.g.
-- 'discovery_covered@acme', 'discovery_covered:video@acme'.
CREATE TABLE state_marks (
    name  TEXT PRIMARY KEY,
    value REAL NOT NULL
);

-- Ids discovery must not make a watch of (again): the ones it made, and removed watches.
CREATE TABLE discovered (
    account     TEXT NOT NULL DEFAULT 'default',
    kind        TEXT NOT NULL DEFAULT 'lip_sync',
    job_id      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (account, kind, job_id)
);

-- Secrets every node shares ('tokens': the key that signs the gateway's tokens, hex).
CREATE TABLE gateway_keys (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at REAL NOT NULL
);

-- Which file-sourced ids each node's watch file lists, and when each node was last seen.
CREATE TABLE file_listings (
    node    TEXT NOT NULL,
    account TEXT NOT NULL DEFAULT 'default',
    kind    TEXT NOT NULL DEFAULT 'lip_sync',
    job_id  TEXT NOT NULL,
    PRIMARY KEY (node, account, kind, job_id)
);
CREATE TABLE file_listers (
    node    TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
