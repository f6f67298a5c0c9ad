-- Schema 9: the vendor lease. One row per lease name; the node that
-- holds an unexpired row is the only one that calls the vendor. Its times are unix seconds
-- on the DATABASE's clock (never a node's): every node compares against the same clock.

CREATE TABLE leases (
    name           TEXT PRIMARY KEY,  -- 'vendor'
    owner          TEXT NOT NULL,     -- state.node of the holder (hostname:pid by default)
    expires_at     DOUBLE PRECISION NOT NULL,     -- free once the database's clock reaches it
    acquired_at    DOUBLE PRECISION NOT NULL,     -- when this owner took it (kept across renewals)
    renewed_at     DOUBLE PRECISION NOT NULL,     -- the last take or renewal
    previous_owner TEXT               -- who held it before this owner's tenure (NULL: nobody)
);
