-- +goose Up
CREATE TABLE cities (
    slug       text PRIMARY KEY CHECK (slug ~ '^[a-z][a-z0-9-]{1,40}$'),
    name       text NOT NULL,
    country    char(2) NOT NULL,
    timezone   text NOT NULL,
    languages  text[] NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE places (
    id         uuid PRIMARY KEY,
    city       text NOT NULL REFERENCES cities,
    name       text NOT NULL,
    lat        double precision NOT NULL,
    lon        double precision NOT NULL,
    -- size of the pitch plan, in metres
    plan_w     real NOT NULL,
    plan_h     real NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (city, id)
);

CREATE TABLE pitches (
    id       uuid PRIMARY KEY,
    city     text NOT NULL,
    place_id uuid NOT NULL,
    code     text NOT NULL,
    x        real NOT NULL,
    y        real NOT NULL,
    w        real NOT NULL,
    h        real NOT NULL,
    power    boolean NOT NULL DEFAULT false,
    water    boolean NOT NULL DEFAULT false,
    cover    boolean NOT NULL DEFAULT false,
    FOREIGN KEY (city, place_id) REFERENCES places (city, id),
    UNIQUE (place_id, code)
);

CREATE TABLE markets (
    id           uuid PRIMARY KEY,
    city         text NOT NULL,
    place_id     uuid NOT NULL,
    name         text NOT NULL,
    weekdays     smallint[] NOT NULL,  -- ISO weekdays, 1 = Monday
    opens        time NOT NULL,
    closes       time NOT NULL,
    season_start date NOT NULL,
    season_end   date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (city, place_id) REFERENCES places (city, id),
    UNIQUE (city, id),
    CHECK (closes > opens)
);

CREATE TABLE market_days (
    id         uuid PRIMARY KEY,
    city       text NOT NULL,
    market_id  uuid NOT NULL,
    date       date NOT NULL,       -- local date in the city's timezone
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'scheduled'
               CHECK (status IN ('scheduled', 'open', 'closed', 'cancelled')),
    version    bigint NOT NULL DEFAULT 1,
    FOREIGN KEY (city, market_id) REFERENCES markets (city, id),
    UNIQUE (market_id, date),
    UNIQUE (city, id)
);
CREATE INDEX market_days_city_date ON market_days (city, date);

CREATE TABLE vendors (
    id          uuid PRIMARY KEY,
    city        text NOT NULL REFERENCES cities,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('farmer', 'artisan', 'food', 'other')),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE applications (
    id            uuid PRIMARY KEY,
    city          text NOT NULL,
    market_day_id uuid NOT NULL,
    vendor_id     uuid NOT NULL REFERENCES vendors,
    pitch_id      uuid REFERENCES pitches,
    status        text NOT NULL CHECK (status IN ('pending', 'accepted', 'waitlisted', 'rejected', 'withdrawn')),
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (city, market_day_id) REFERENCES market_days (city, id),
    -- one application per vendor per market day
    UNIQUE (market_day_id, vendor_id),
    CHECK ((status = 'accepted') = (pitch_id IS NOT NULL))
);
-- a pitch is never given twice on one market day
CREATE UNIQUE INDEX applications_one_stall_per_pitch ON applications (market_day_id, pitch_id) WHERE status = 'accepted';

-- +goose Down
DROP TABLE applications, vendors, market_days, markets, pitches, places, cities;
