-- Schema 2: what the metrics need.

-- When the job was last seen unfinished: completion happened after this, so
-- (first delivery attempt - this) bounds the detection latency from above.
ALTER TABLE events ADD COLUMN last_seen_running_at REAL;

-- Deliveries by state and endpoint for /metrics, from the index alone.
CREATE INDEX deliveries_state_endpoint ON deliveries (state, endpoint);
