-- Schema 19: a watch belongs to a vendor account (issue 22): the same id and kind under two
-- accounts is two watches, so a watch is keyed by (account, kind, job_id); every row of an
-- older state belongs to the account named 'default' (the `chanjing:` section). The queue
-- takes an account (a writer that does not name one queues for 'default'); an event names
-- the account it concerns (NULL: none); file listings and discovery's tombstones are per
-- account too. Discovery marks are per account by name (see schema.sql), not by column.
ALTER TABLE watches ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE watches DROP CONSTRAINT watches_pkey;
ALTER TABLE watches ADD PRIMARY KEY (account, kind, job_id);
DROP INDEX watches_active_created;
CREATE INDEX watches_active_created ON watches (account, kind, create_time) WHERE state = 'active';

ALTER TABLE watch_queue ADD COLUMN account TEXT NOT NULL DEFAULT 'default';

ALTER TABLE events ADD COLUMN account TEXT;
UPDATE events SET account = 'default';
DROP INDEX events_watch;
CREATE INDEX events_watch ON events (account, kind, job_id);

ALTER TABLE file_listings ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE file_listings DROP CONSTRAINT file_listings_pkey;
ALTER TABLE file_listings ADD PRIMARY KEY (node, account, kind, job_id);

ALTER TABLE discovered ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE discovered DROP CONSTRAINT discovered_pkey;
ALTER TABLE discovered ADD PRIMARY KEY (account, kind, job_id);
