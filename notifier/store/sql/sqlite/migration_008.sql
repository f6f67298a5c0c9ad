-- Schema 8: retention finds finished watches by age without scanning the history.

CREATE INDEX watches_finished ON watches (finished_at) WHERE state != 'active';
