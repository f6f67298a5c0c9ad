-- Schema 18: a watch has a kind (issue 21): the same id under two kinds is two watches, so
-- a watch is keyed by (kind, job_id); every watch of an older state is lip-sync. The phase
-- last seen (queued, running, succeeded, failed) is stored next to the vendor's own status.
-- The queue takes a kind (a writer that does not name one queues lip-sync); an event names
-- its watch's kind (NULL: the daemon's own events); file listings and discovery's
-- tombstones are per kind too.
ALTER TABLE watches ADD COLUMN kind TEXT NOT NULL DEFAULT 'lip_sync';
ALTER TABLE watches ADD COLUMN phase TEXT;
-- The phase of the lip-sync status each old watch last saw (old data: lip-sync's codes).
UPDATE watches SET phase = CASE status WHEN 0 THEN 'queued' WHEN 10 THEN 'running'
                                       WHEN 20 THEN 'succeeded' WHEN 30 THEN 'failed' END
WHERE status IS NOT NULL;
ALTER TABLE watches DROP CONSTRAINT watches_pkey;
ALTER TABLE watches ADD PRIMARY KEY (kind, job_id);
DROP INDEX watches_active_created;
CREATE INDEX watches_active_created ON watches (kind, create_time) WHERE state = 'active';

ALTER TABLE watch_queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'lip_sync';

ALTER TABLE events ADD COLUMN kind TEXT;
UPDATE events SET kind = 'lip_sync' WHERE substr(type, 1, 9) = 'lip_sync.';
CREATE INDEX events_watch ON events (kind, job_id);

ALTER TABLE file_listings ADD COLUMN kind TEXT NOT NULL DEFAULT 'lip_sync';
ALTER TABLE file_listings DROP CONSTRAINT file_listings_pkey;
ALTER TABLE file_listings ADD PRIMARY KEY (node, kind, job_id);

ALTER TABLE discovered ADD COLUMN kind TEXT NOT NULL DEFAULT 'lip_sync';
ALTER TABLE discovered DROP CONSTRAINT discovered_pkey;
ALTER TABLE discovered ADD PRIMARY KEY (kind, job_id);
