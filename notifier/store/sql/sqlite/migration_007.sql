-- Schema 7: every delivery attempt is kept (deliveries show), apart from the delivery row
-- that a replay resets.

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    generation  INTEGER NOT NULL DEFAULT 0,   -- which reset of the delivery it belonged to
    started_at  REAL NOT NULL,
    duration    REAL,                         -- seconds
    status      INTEGER,                      -- HTTP status, NULL when no answer came
    error       TEXT,                         -- NULL for a success
    outcome     TEXT NOT NULL                 -- delivered | failed | dead
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
