-- Schema 21: an event is unique by its id alone (issue 22). A job event's id is derived
-- from its account, job, type and reopen count (notifier/delivery/transition.py), so
-- UNIQUE (job_id, type) only got in the way: the same job id on two accounts is two events,
-- and a reopened watch that ends the same way again has a new event (before, the second
-- one was refused while its watch was finished: it was lost). Every row is kept as it was.
ALTER TABLE events DROP CONSTRAINT events_job_id_type_key;
