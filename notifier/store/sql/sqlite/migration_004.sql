-- Schema 4: a one-row table the daemon writes to find out whether the state can be written
-- (a full disk, a read-only file, another writer's lock), so it can pause and resume by itself.

CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL
);
