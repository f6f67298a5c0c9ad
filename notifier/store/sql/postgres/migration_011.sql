-- Schema 11: wake-ups. Other nodes and other programs write to a shared database too, so the
-- database says what changed: NOTIFY on the channel chanjing_notifier, with the kind of change
-- as the payload ('queue', 'watch', 'delivery'). Every daemon LISTENs and runs the matching
-- job at once instead of at its next tick (the ticks still run: a notification is a shortcut).
-- pg_notify is sent at COMMIT and folds identical payloads of one transaction into one.

-- Statement-level: one notification per INSERT statement that really inserted rows (an
-- ON CONFLICT that only updated or skipped inserts none).
CREATE FUNCTION chanjing_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('chanjing_notifier', TG_ARGV[0]);
    END IF;
    RETURN NULL;
END
$$;

-- Row-level, for UPDATEs: the WHEN condition is checked without calling the function, so
-- the frequent updates (claims, results, polls) cost next to nothing.
CREATE FUNCTION chanjing_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chanjing_notifier', TG_ARGV[0]);
    RETURN NULL;
END
$$;

-- A producer's plain INSERT into the queue (any host).
CREATE TRIGGER watch_queue_notify AFTER INSERT ON watch_queue
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION chanjing_notify_inserted('queue');

-- A new watch (`watch add`, a watch file, the queue taken by another node).
CREATE TRIGGER watches_notify_added AFTER INSERT ON watches
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION chanjing_notify_inserted('watch');

-- An expired or failed watch made active again (`watch reopen`).
CREATE TRIGGER watches_notify_reopened AFTER UPDATE ON watches
    FOR EACH ROW WHEN (NEW.state = 'active' AND OLD.state <> 'active')
    EXECUTE FUNCTION chanjing_notify_changed('watch');

-- New deliveries (an event recorded on another node).
CREATE TRIGGER deliveries_notify_added AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION chanjing_notify_inserted('delivery');

-- Deliveries pending again from the first step: replay and revive bump the generation.
CREATE TRIGGER deliveries_notify_requeued AFTER UPDATE ON deliveries
    FOR EACH ROW WHEN (NEW.state = 'pending' AND NEW.generation <> OLD.generation)
    EXECUTE FUNCTION chanjing_notify_changed('delivery');
