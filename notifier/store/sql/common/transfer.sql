-- What `state migrate` runs the same on both sides (notifier.store.transfer): the rows
-- of each table copied, counted in the source before and in the target after.

-- name: counts
SELECT (SELECT count(*) FROM watch_queue) AS watch_queue,
       (SELECT count(*) FROM watches) AS watches,
       (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM deliveries) AS deliveries,
       (SELECT count(*) FROM delivery_attempts) AS delivery_attempts,
       (SELECT count(*) FROM discovered) AS discovered,
       (SELECT count(*) FROM vendor_token) AS vendor_token,
       (SELECT count(*) FROM state_marks) AS state_marks,
       (SELECT count(*) FROM gateway_keys) AS gateway_keys,
       (SELECT count(*) FROM watch_queue WHERE rejected IS NOT NULL) AS queue_rejected;
