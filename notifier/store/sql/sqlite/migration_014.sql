-- Schema 14: what the gateway (a vendor-compatible endpoint) needs of the state.
-- A watch's last answer as the vendor sent it (the JSON of its `data`, NULL when not known
-- or too large) and when it was recorded (the store's clock): the gateway answers a detail
-- call from it without calling the vendor.
ALTER TABLE watches ADD COLUMN last_data TEXT;
ALTER TABLE watches ADD COLUMN observed_at REAL;
-- Where the lease holder's gateway is reachable (its URL, written at every take and
-- renewal): a standby node forwards to it.
ALTER TABLE leases ADD COLUMN advertise TEXT;
-- Secrets shared by every node on the state, made once by whoever asks first ('tokens':
-- the key that signs the gateway's access tokens, hex).
CREATE TABLE gateway_keys (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at REAL NOT NULL
);
