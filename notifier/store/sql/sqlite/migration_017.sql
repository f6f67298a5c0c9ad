-- Schema 17: a watch counts its reopens (`watch add --reopen`, intake `"reopen": true`).
-- A job event's id is derived from (job id, event type, this count), so an event made again
-- (a PostgreSQL replica promoted without it) has the id receivers already saw, and a
-- reopened watch's next event has a new one.
ALTER TABLE watches ADD COLUMN reopens INTEGER NOT NULL DEFAULT 0;
