-- Schema 21: an event is unique by its id alone (issue 22). A job event's id is derived
-- from its account, job, type and reopen count (notifier/delivery/transition.py), so
-- UNIQUE (job_id, type) only got in the way: the same job id on two accounts is two events,
-- and a reopened watch that ends the same way again has a new event (before, the second
-- one was refused while its watch was finished: it was lost). Every row is kept as it was.
-- SQLite cannot drop a table's constraint, and a migration runs in a transaction with
-- foreign keys on: the events table is rebuilt with the two tables that refer to it
-- (deliveries, delivery_attempts), each copied in one INSERT ... SELECT; the children go
-- first, so no row ever refers to a missing one, and the renames carry the references.
CREATE TABLE events_v21 (
    event_id             TEXT PRIMARY KEY,
    job_id               TEXT NOT NULL,
    type                 TEXT NOT NULL,
    created_at           REAL NOT NULL,
    body                 BLOB NOT NULL,
    last_seen_running_at REAL,
    seq                  INTEGER,
    kind                 TEXT,
    account              TEXT
);
INSERT INTO events_v21 (event_id, job_id, type, created_at, body, last_seen_running_at, seq,
    kind, account)
SELECT event_id, job_id, type, created_at, body, last_seen_running_at, seq, kind, account
FROM events;

CREATE TABLE deliveries_v21 (
    id               INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events_v21 (event_id),
    endpoint         TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    next_attempt_at  REAL,
    last_attempt_at  REAL,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     REAL,
    generation       INTEGER NOT NULL DEFAULT 0,
    deferred         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    claimed_by       TEXT,
    claim_expires    REAL,
    claim_token      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, endpoint)
);
INSERT INTO deliveries_v21 (id, event_id, endpoint, state, attempts, created_at,
    next_attempt_at, last_attempt_at, last_status, last_error, delivered_at, generation,
    deferred, first_attempt_at, claimed_by, claim_expires, claim_token)
SELECT id, event_id, endpoint, state, attempts, created_at, next_attempt_at, last_attempt_at,
    last_status, last_error, delivered_at, generation, deferred, first_attempt_at, claimed_by,
    claim_expires, claim_token
FROM deliveries;

CREATE TABLE delivery_attempts_v21 (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries_v21 (id),
    generation  INTEGER NOT NULL DEFAULT 0,
    started_at  REAL NOT NULL,
    duration    REAL,
    status      INTEGER,
    error       TEXT,
    outcome     TEXT NOT NULL,
    claim_token INTEGER,
    applied     INTEGER
);
INSERT INTO delivery_attempts_v21 (id, delivery_id, generation, started_at, duration, status,
    error, outcome, claim_token, applied)
SELECT id, delivery_id, generation, started_at, duration, status, error, outcome, claim_token,
    applied
FROM delivery_attempts;

DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE events_v21 RENAME TO events;
ALTER TABLE deliveries_v21 RENAME TO deliveries;
ALTER TABLE delivery_attempts_v21 RENAME TO delivery_attempts;

CREATE INDEX events_created ON events (created_at);
CREATE UNIQUE INDEX events_seq ON events (seq);
CREATE INDEX events_watch ON events (account, kind, job_id);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_state ON deliveries (state, id);
CREATE INDEX deliveries_state_endpoint ON deliveries (state, endpoint);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
CREATE UNIQUE INDEX delivery_attempts_claim ON delivery_attempts (delivery_id, claim_token);
