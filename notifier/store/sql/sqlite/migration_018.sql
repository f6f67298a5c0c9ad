-- Schema 18: a watch has a kind (issue 21): the same id under two kinds is two watches, so
-- a watch is keyed by (kind, job_id); every watch of an older state is lip-sync. The phase
-- last seen (queued, running, succeeded, failed) is stored next to the vendor's own status.
-- The queue takes a kind (a writer that does not name one queues lip-sync); an event names
-- its watch's kind (NULL: the daemon's own events); file listings and discovery's
-- tombstones are per kind too.
-- SQLite cannot change a primary key: each keyed table is rebuilt, every column copied, its
-- indexes made again. One INSERT ... SELECT per table (thousands of watches are one pass).
CREATE TABLE watches_v18 (
    kind                   TEXT NOT NULL DEFAULT 'lip_sync',
    job_id                 TEXT NOT NULL,
    source                 TEXT NOT NULL,
    labels                 TEXT NOT NULL DEFAULT '{}',
    endpoints              TEXT,
    state                  TEXT NOT NULL DEFAULT 'active',
    status                 INTEGER,
    progress               INTEGER,
    msg                    TEXT,
    create_time            INTEGER,
    added_at               REAL NOT NULL,
    last_poll_at           REAL,
    next_poll_at           REAL,
    polls                  INTEGER NOT NULL DEFAULT 0,
    errors                 INTEGER NOT NULL DEFAULT 0,
    last_error             TEXT,
    finished_at            REAL,
    first_running_at       REAL,
    first_running_progress INTEGER,
    last_queued_at         REAL,
    misses                 INTEGER NOT NULL DEFAULT 0,
    predicted_at           REAL,
    poll_key               REAL,
    rejections             INTEGER NOT NULL DEFAULT 0,
    first_rejected_at      REAL,
    answered_at            REAL,
    last_data              TEXT,
    observed_at            REAL,
    reopens                INTEGER NOT NULL DEFAULT 0,
    phase                  TEXT,
    PRIMARY KEY (kind, job_id)
);
-- The phase of the lip-sync status each old watch last saw (old data: lip-sync's codes).
INSERT INTO watches_v18 (kind, job_id, source, labels, endpoints, state, status, progress, msg,
    create_time, added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at,
    first_running_at, first_running_progress, last_queued_at, misses, predicted_at, poll_key,
    rejections, first_rejected_at, answered_at, last_data, observed_at, reopens, phase)
SELECT 'lip_sync', job_id, source, labels, endpoints, state, status, progress, msg,
    create_time, added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at,
    first_running_at, first_running_progress, last_queued_at, misses, predicted_at, poll_key,
    rejections, first_rejected_at, answered_at, last_data, observed_at, reopens,
    CASE status WHEN 0 THEN 'queued' WHEN 10 THEN 'running' WHEN 20 THEN 'succeeded'
                WHEN 30 THEN 'failed' END
FROM watches;
DROP TABLE watches;
ALTER TABLE watches_v18 RENAME TO watches;
CREATE INDEX watches_due ON watches (next_poll_at) WHERE state = 'active';
CREATE INDEX watches_state ON watches (state, job_id);
CREATE INDEX watches_active_added ON watches (added_at) WHERE state = 'active';
CREATE INDEX watches_key ON watches (poll_key) WHERE state = 'active';
CREATE INDEX watches_active_created ON watches (kind, create_time) WHERE state = 'active';
CREATE INDEX watches_finished ON watches (finished_at) WHERE state != 'active';

ALTER TABLE watch_queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'lip_sync';

ALTER TABLE events ADD COLUMN kind TEXT;
UPDATE events SET kind = 'lip_sync' WHERE substr(type, 1, 9) = 'lip_sync.';
CREATE INDEX events_watch ON events (kind, job_id);

CREATE TABLE file_listings_v18 (
    node   TEXT NOT NULL,
    kind   TEXT NOT NULL DEFAULT 'lip_sync',
    job_id TEXT NOT NULL,
    PRIMARY KEY (node, kind, job_id)
);
INSERT INTO file_listings_v18 (node, kind, job_id) SELECT node, 'lip_sync', job_id FROM file_listings;
DROP TABLE file_listings;
ALTER TABLE file_listings_v18 RENAME TO file_listings;

CREATE TABLE discovered_v18 (
    kind        TEXT NOT NULL DEFAULT 'lip_sync',
    job_id      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (kind, job_id)
);
INSERT INTO discovered_v18 (kind, job_id, create_time, at)
SELECT 'lip_sync', job_id, create_time, at FROM discovered;
DROP TABLE discovered;
ALTER TABLE discovered_v18 RENAME TO discovered;
