-- Schema 13: discovery (watch.discover). Marks of the state itself, by name: when it was
-- first created ('created_at', written by the program once the migrations ran) and how far
-- back discovery has covered the vendor's list ('discovery_since', 'discovery_covered').
CREATE TABLE state_marks (
    name  TEXT PRIMARY KEY,
    value REAL NOT NULL
);
-- Ids discovery must not make a watch of (again): the ones it made, and removed watches.
-- Rows older than the covered mark are dropped (the list sweep never looks there again).
CREATE TABLE discovered (
    job_id      TEXT PRIMARY KEY,
    create_time INTEGER NOT NULL,
    at          REAL NOT NULL
);
