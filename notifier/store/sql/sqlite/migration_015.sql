-- Schema 15: a result write is applied once, even when it is retried.
-- The claim an attempt's result was written under (deliveries.claim_token at its claim), and
-- whether that write changed the delivery (1) or found it superseded (0: a replay, a park,
-- or another node's claim). One row per delivery and claim: a write retried because its
-- acknowledgement was lost (the COMMIT went through) finds its own row and returns what the
-- first write did, instead of counting the attempt twice. NULL for rows written before, and
-- for writes made without a claim (CLI, tests): NULLs never collide in a unique index.
ALTER TABLE delivery_attempts ADD COLUMN claim_token INTEGER;
ALTER TABLE delivery_attempts ADD COLUMN applied INTEGER;
CREATE UNIQUE INDEX delivery_attempts_claim ON delivery_attempts (delivery_id, claim_token);
