-- +goose Up

-- Places: optimistic concurrency and change tracking.
ALTER TABLE places
    ADD COLUMN version    bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz,
    ADD CONSTRAINT places_plan CHECK (plan_w >= 1 AND plan_w <= 1000 AND plan_h >= 1 AND plan_h <= 1000);
CREATE INDEX places_city_name ON places (city, name, id);

-- Pitches are removed softly: past applications keep pointing at the pitch
-- they had (and its code). A code is unique among the pitches still on the plan.
ALTER TABLE pitches
    ADD COLUMN removed_at timestamptz,
    DROP CONSTRAINT pitches_place_id_code_key,
    ADD CONSTRAINT pitches_size CHECK (w >= 0.5 AND h >= 0.5 AND x >= 0 AND y >= 0);
CREATE UNIQUE INDEX pitches_code ON pitches (place_id, code) WHERE removed_at IS NULL;

-- Markets: a weekly schedule with hours per weekday replaces weekdays/opens/closes.
CREATE TABLE market_schedule (
    market_id uuid NOT NULL,
    city      text NOT NULL,
    weekday   smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO, 1 = Monday
    opens     time NOT NULL,
    closes    time NOT NULL,
    PRIMARY KEY (market_id, weekday),
    FOREIGN KEY (city, market_id) REFERENCES markets (city, id) ON DELETE CASCADE,
    CHECK (closes > opens)
);
INSERT INTO market_schedule (market_id, city, weekday, opens, closes)
SELECT m.id, m.city, w.d, m.opens, m.closes FROM markets m, unnest(m.weekdays) AS w(d)
ON CONFLICT DO NOTHING;

ALTER TABLE markets
    DROP COLUMN weekdays,
    DROP COLUMN opens,
    DROP COLUMN closes,
    ADD COLUMN categories  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN exceptions  date[] NOT NULL DEFAULT '{}',
    ADD COLUMN description text NOT NULL DEFAULT '',
    -- read by the application lifecycle: accept at once while a pitch is free
    ADD COLUMN auto_accept boolean NOT NULL DEFAULT false,
    -- read by the application lifecycle: how long an offered stall waits
    ADD COLUMN offer_hours integer NOT NULL DEFAULT 24 CHECK (offer_hours BETWEEN 1 AND 168),
    ADD COLUMN version     bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at  timestamptz,
    ADD CONSTRAINT markets_season CHECK (season_end IS NULL OR season_end >= season_start);
-- Markets that existed before accepted applications at once; keep them so.
UPDATE markets SET auto_accept = true;
CREATE INDEX markets_city_name ON markets (city, name, id);

-- Market days: hours changed by hand, cancellation reason, state timestamps.
ALTER TABLE market_days
    ADD COLUMN hours_changed boolean NOT NULL DEFAULT false,
    ADD COLUMN cancel_reason text,
    ADD COLUMN opened_at     timestamptz,
    ADD COLUMN closed_at     timestamptz,
    ADD COLUMN cancelled_at  timestamptz,
    ADD COLUMN updated_at    timestamptz,
    ADD CONSTRAINT market_days_hours CHECK (ends_at > starts_at);
CREATE INDEX market_days_city_page ON market_days (city, date, starts_at);

-- Vendors: an owner account and the public profile fields.
ALTER TABLE vendors
    ADD COLUMN owner_account_id text,       -- the accounts service's account id (token subject)
    ADD COLUMN categories       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN languages        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN photo_url        text,
    ADD COLUMN contact          jsonb NOT NULL DEFAULT '{}',  -- {email, phone, website}; never public
    ADD COLUMN version          bigint NOT NULL DEFAULT 1,
    ADD COLUMN updated_at       timestamptz,
    ADD CONSTRAINT vendors_city_id UNIQUE (city, id);
CREATE INDEX vendors_owner ON vendors (owner_account_id, created_at, id);
CREATE INDEX vendors_city_name ON vendors (city, name, id);

-- +goose Down
DROP INDEX vendors_city_name, vendors_owner;
ALTER TABLE vendors DROP CONSTRAINT vendors_city_id, DROP COLUMN updated_at, DROP COLUMN version,
    DROP COLUMN contact, DROP COLUMN photo_url, DROP COLUMN languages, DROP COLUMN categories,
    DROP COLUMN owner_account_id;
DROP INDEX market_days_city_page;
ALTER TABLE market_days DROP CONSTRAINT market_days_hours, DROP COLUMN updated_at, DROP COLUMN cancelled_at,
    DROP COLUMN closed_at, DROP COLUMN opened_at, DROP COLUMN cancel_reason, DROP COLUMN hours_changed;
DROP INDEX markets_city_name;
ALTER TABLE markets ADD COLUMN weekdays smallint[] NOT NULL DEFAULT '{}', ADD COLUMN opens time, ADD COLUMN closes time;
UPDATE markets m SET weekdays = s.days, opens = s.opens, closes = s.closes
FROM (SELECT market_id, array_agg(weekday ORDER BY weekday) AS days, min(opens) AS opens, max(closes) AS closes
      FROM market_schedule GROUP BY market_id) s
WHERE s.market_id = m.id;
UPDATE markets SET opens = '08:00', closes = '13:00' WHERE opens IS NULL;
ALTER TABLE markets ALTER COLUMN opens SET NOT NULL, ALTER COLUMN closes SET NOT NULL, ALTER COLUMN weekdays DROP DEFAULT,
    DROP CONSTRAINT markets_season, DROP COLUMN updated_at, DROP COLUMN version, DROP COLUMN offer_hours,
    DROP COLUMN auto_accept, DROP COLUMN description, DROP COLUMN exceptions, DROP COLUMN categories;
DROP TABLE market_schedule;
DROP INDEX pitches_code;
ALTER TABLE pitches DROP CONSTRAINT pitches_size, ADD CONSTRAINT pitches_place_id_code_key UNIQUE (place_id, code),
    DROP COLUMN removed_at;
DROP INDEX places_city_name;
ALTER TABLE places DROP CONSTRAINT places_plan, DROP COLUMN updated_at, DROP COLUMN version;
