-- Schema 6: polling hardening.

-- 40000 ("record not found") answers for a job id since the last good answer, and when the
-- first of them came: a watch fails only after several rejections spread over minutes.
ALTER TABLE watches ADD COLUMN rejections INTEGER NOT NULL DEFAULT 0;
ALTER TABLE watches ADD COLUMN first_rejected_at REAL;
-- When the vendor last answered for this job (detail or list), failed polls excluded: a
-- watch past give_up_after expires only once an answer that late said it is not finished.
ALTER TABLE watches ADD COLUMN answered_at REAL;
UPDATE watches SET answered_at = last_poll_at WHERE state = 'active' AND polls > 0;
