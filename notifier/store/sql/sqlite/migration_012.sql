-- Schema 12: events carry the order they were recorded in (GET /v1/events pages by it).
-- A number, not a time: two events may share a timestamp and a clock may step back.
ALTER TABLE events ADD COLUMN seq INTEGER;
-- Older events: in the order of their times (rowids may have been renumbered by VACUUM).
UPDATE events SET seq = o.n
FROM (SELECT event_id, row_number() OVER (ORDER BY created_at, event_id) AS n FROM events) AS o
WHERE o.event_id = events.event_id;
CREATE UNIQUE INDEX events_seq ON events (seq);
