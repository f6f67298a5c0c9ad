-- Schema 19: a watch belongs to a vendor account (issue 22): the same id and kind under two
-- accounts is two watches, so a watch is keyed by (account, kind, job_id); every row of an
-- older state belongs to the account named 'default' (the `chanjing:` section). The queue
-- takes an account (a writer that does not name one queues for 'default'); an event names
-- the account it concerns (NULL: none); file listings and discovery's tombstones are per
-- account too. Discovery marks are per account by name (see schema.sql), not by column.
-- SQLite cannot change a primary key: each keyed table is rebuilt, every column copied, its
-- indexes made again. One INSERT ... SELECT per table (thousands of watches are one pass).
CREATE TABLE watches_v19 (
    account                TEXT NOT NULL DEFAULT 'default',
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
    PRIMARY KEY (account, kind, job_id)
);
INSERT INTO watches_v19 (account, kind, job_id, source, labels, endpoints, state, status, progress, msg, create_time,
    added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at,
    first_running_at, first_running_progress, last_queued_at, misses, predicted_at, poll_key,
    rejections, first_rejected_at, answered_at, last_data, observed_at, reopens, phase)
SELECT 'default', kind, job_id, source, labels, endpoints, state, status, progress, msg, create_time,
    added_at, last_poll_at, next_poll_at, polls, errors, last_error, finished_at,
    first_running_at, first_running_progress, last_queued_at, misses, predicted_at, poll_key,
    rejections, first_rejected_at, answered_at, last_data, observed_at, reopens, phase
FROM watches;
DROP TABLE watches;
ALTER TABLE watches_v19 RENAME TO watches;
CREATE INDEX watches_due ON watches (next_poll_at) WHERE state = 'active';
CREATE INDEX watches_state ON watches (state, job_id);
CREATE INDEX watches_active_added ON watches (added_at) WHERE state = 'active';
CREATE INDEX watches_key ON watches (poll_key) WHERE state = 'active';
CREATE INDEX watches_active_created ON watches (account, kind, create_time) WHERE state = 'active';
CREATE INDEX watches_finished ON watches (finished_at) WHERE state != 'active';

ALTER TABLE watch_queue ADD COLUMN account TEXT NOT NULL DEFAULT 'default';

ALTER TABLE events ADD COLUMN account TEXT;
UPDATE events SET account = 'default';
DROP INDEX events_watch;
CREATE INDEX events_watch ON events (account, kind, job_id);

CREATE TABLE file_listings_v19 (
    node    TEXT NOT NULL,
    account TEXT NOT NULL DEFAULT 'default',
    kind    TEXT NOT NULL DEFAULT 'lip_sync',
    job_id  TEXT NOT NULL,
    PRIMARY KEY (node, account, kind, job_id)
);
INSERT INTO file_listings_v19 (node, account, kind, job_id)
SELECT node, 'default', kind, job_id FROM file_listings;
DROP TABLE file_listings;
ALTER TABLE file_listings_v19 RENAME TO file_listings;

CREATE TABLE discovered_v19 (
    account     TEXT NOT NULL DEFAULT 'default',
    kind        TEXT NOT NULL DEFAULT 'lip_sync',
    job_id      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (account, kind, job_id)
);
INSERT INTO discovered_v19 (account, kind, job_id, create_time, at)
SELECT 'default', kind, job_id, create_time, at FROM discovered;
DROP TABLE discovered;
ALTER TABLE discovered_v19 RENAME TO discovered;
