-- Schema 16: which file-sourced ids each node's watch file lists (issue 19, item 6). With
-- several nodes on one state, each node's file is that node's listing: a sync replaces only
-- its own node's rows, and a file-sourced active watch is removed only once no listing has
-- it. A node's listing lives while the node is seen (seen_at, written at each sync and watch
-- file tick); one not seen for a while is dropped by the next sync of another node.
CREATE TABLE file_listings (
    node   TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (node, job_id)
);
CREATE TABLE file_listers (
    node    TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
-- File watches from before: listed by the files of the nodes that ran then (unknown), so
-- kept under the listing '' until it goes stale like a gone node's (or, on SQLite, until
-- the one daemon's first sync, which replaces every listing).
INSERT INTO file_listings (node, job_id)
SELECT '', job_id FROM watches WHERE source = 'file' AND state = 'active';
INSERT INTO file_listers (node, seen_at) VALUES ('', CAST(strftime('%s', 'now') AS REAL));
