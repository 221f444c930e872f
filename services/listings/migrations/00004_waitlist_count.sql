-- +goose Up
-- How many applications a market day has on its waitlist, kept by triggers,
-- so that a registration that joins the waitlist learns its place without
-- counting the waitlist. Every change of an application's status holds its
-- day's row lock already, so the count's update waits for nothing new.
ALTER TABLE market_days ADD COLUMN waitlisted integer NOT NULL DEFAULT 0 CHECK (waitlisted >= 0);
UPDATE market_days d SET waitlisted = w.n
FROM (SELECT market_day_id, count(*) AS n FROM applications WHERE status = 'waitlisted' GROUP BY market_day_id) w
WHERE w.market_day_id = d.id;

-- +goose StatementBegin
CREATE FUNCTION applications_count_waitlisted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'waitlisted' THEN
        UPDATE market_days SET waitlisted = waitlisted - 1 WHERE id = OLD.market_day_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'waitlisted' THEN
        UPDATE market_days SET waitlisted = waitlisted + 1 WHERE id = NEW.market_day_id;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER applications_waitlisted_insert AFTER INSERT ON applications
    FOR EACH ROW WHEN (NEW.status = 'waitlisted') EXECUTE FUNCTION applications_count_waitlisted();
CREATE TRIGGER applications_waitlisted_update AFTER UPDATE OF status, market_day_id ON applications
    FOR EACH ROW WHEN ((OLD.status = 'waitlisted' OR NEW.status = 'waitlisted')
                       AND (OLD.status, OLD.market_day_id) IS DISTINCT FROM (NEW.status, NEW.market_day_id))
    EXECUTE FUNCTION applications_count_waitlisted();
CREATE TRIGGER applications_waitlisted_delete AFTER DELETE ON applications
    FOR EACH ROW WHEN (OLD.status = 'waitlisted') EXECUTE FUNCTION applications_count_waitlisted();

-- +goose Down
DROP TRIGGER applications_waitlisted_delete ON applications;
DROP TRIGGER applications_waitlisted_update ON applications;
DROP TRIGGER applications_waitlisted_insert ON applications;
DROP FUNCTION applications_count_waitlisted();
ALTER TABLE market_days DROP COLUMN waitlisted;
