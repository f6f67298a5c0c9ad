-- Schema 10: delivery claims, so several nodes on one database can
-- deliver without an attempt in flight on two of them at once.

-- The node whose attempt holds the delivery (state.node), NULL when nobody does.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
-- Unix seconds on the DATABASE's clock (not a node's) when the claim lapses: every node
-- compares it with the same clock, so a node's clock error cannot extend or cut a claim.
ALTER TABLE deliveries ADD COLUMN claim_expires REAL;
-- Bumped by every claim: an attempt writes its result only while the row still carries its
-- own claim, so the attempt of a node whose claim lapsed and was taken over writes nothing.
ALTER TABLE deliveries ADD COLUMN claim_token INTEGER NOT NULL DEFAULT 0;
