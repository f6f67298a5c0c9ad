-- Schema 1. Times are unix seconds (REAL) on the daemon's clock.

-- The intake queue: any program may INSERT here (see README "SQLite queue");
-- the daemon moves rows into `watches` within a second or two and deletes them.
CREATE TABLE watch_queue (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL,
    labels      TEXT,            -- optional JSON object {"key": "value"}
    endpoints   TEXT,            -- optional JSON array of endpoint names
    enqueued_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    rejected    TEXT             -- set by the daemon when the row is invalid; the row is kept
);
CREATE INDEX watch_queue_todo ON watch_queue (seq) WHERE rejected IS NULL;

CREATE TABLE watches (
    job_id       TEXT PRIMARY KEY,
    source       TEXT NOT NULL,                 -- file | queue
    labels       TEXT NOT NULL DEFAULT '{}',    -- JSON object
    endpoints    TEXT,                          -- JSON array, NULL = all matching
    state        TEXT NOT NULL DEFAULT 'active',-- active | succeeded | failed | expired
    status       INTEGER,                       -- last vendor status
    progress     INTEGER,
    msg          TEXT,                          -- last vendor msg, or why the watch failed
    create_time  INTEGER,                       -- vendor's create_time
    added_at     REAL NOT NULL,
    last_poll_at REAL,
    next_poll_at REAL,
    polls        INTEGER NOT NULL DEFAULT 0,
    errors       INTEGER NOT NULL DEFAULT 0,    -- consecutive failed polls
    last_error   TEXT,
    finished_at  REAL
);
CREATE INDEX watches_due ON watches (next_poll_at) WHERE state = 'active';
CREATE INDEX watches_state ON watches (state, job_id);
CREATE INDEX watches_active_added ON watches (added_at) WHERE state = 'active';

CREATE TABLE events (
    event_id   TEXT PRIMARY KEY,
    job_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    created_at REAL NOT NULL,
    body       BLOB NOT NULL,                   -- the exact JSON sent to every endpoint
    UNIQUE (job_id, type)
);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (event_id),
    endpoint        TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    next_attempt_at REAL,
    last_attempt_at REAL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    REAL,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries (state, id);

-- The vendor access token, shared by the daemon and CLI commands: issuing a new one
-- revokes the old, so everyone must reuse the cached one.
CREATE TABLE vendor_token (
    account      TEXT PRIMARY KEY,              -- base_url + app_id
    access_token TEXT NOT NULL,
    expire_at    REAL NOT NULL,
    fetched_at   REAL NOT NULL
);
