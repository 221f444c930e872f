-- +goose Up
-- The calendar's own copy of the cities it has heard of from listings.
CREATE TABLE cities (
    slug     text PRIMARY KEY,
    name     text NOT NULL,
    timezone text NOT NULL,
    version  bigint NOT NULL
);

-- Entries on a city's calendar. Market days come from listings events
-- (source 'listings'); the calendar's own events arrive with a later issue.
CREATE TABLE entries (
    id         uuid PRIMARY KEY,
    city       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('market_day')),
    title      text NOT NULL,
    place_id   uuid,
    place_name text NOT NULL DEFAULT '',
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    status     text NOT NULL,
    source     text NOT NULL,
    version    bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_city_time ON entries (city, starts_at);

-- +goose Down
DROP TABLE entries, cities;
