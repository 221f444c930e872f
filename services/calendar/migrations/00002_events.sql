-- +goose Up
-- The calendar's copy of the cities' places (from place.upserted and from
-- market days), so that an event can name one of the city's places.
CREATE TABLE places (
    id      uuid PRIMARY KEY,
    city    text NOT NULL,
    name    text NOT NULL,
    version bigint NOT NULL DEFAULT 0
);
CREATE INDEX places_city ON places (city);

ALTER TABLE entries ADD COLUMN cancel_reason text NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN market_id uuid;

-- The calendar's own events: one row per series. Occurrences are never
-- stored: they are expanded from the recurrence on every read. Local times
-- (start_local, end_local, exdates, rdates) are wall-clock times in the
-- event's timezone, stored without a zone; starts_at/ends_at are the first
-- occurrence's instants; window_start/window_end bound every occurrence of
-- the series (window_end NULL: it never ends) so that a range query need not
-- expand series that cannot overlap it.
CREATE TABLE events (
    id              uuid PRIMARY KEY,
    city            text NOT NULL,
    uid             text NOT NULL UNIQUE,
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    place_id        uuid,
    place_name      text NOT NULL DEFAULT '',
    address         text NOT NULL DEFAULT '',
    category        text NOT NULL,
    organiser       text NOT NULL DEFAULT '',
    image_url       text NOT NULL DEFAULT '',
    links           jsonb NOT NULL DEFAULT '[]',
    accessibility   text NOT NULL DEFAULT '',
    all_day         boolean NOT NULL,
    start_local     timestamp NOT NULL,
    end_local       timestamp NOT NULL,
    timezone        text NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    rrule           text NOT NULL DEFAULT '',
    exdates         timestamp[] NOT NULL DEFAULT '{}',
    rdates          timestamp[] NOT NULL DEFAULT '{}',
    window_start    timestamptz NOT NULL,
    window_end      timestamptz,
    status          text NOT NULL CHECK (status IN ('pending_review', 'rejected', 'confirmed', 'tentative', 'cancelled')),
    reason          text NOT NULL DEFAULT '',
    sequence        integer NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 1,
    submitter_name  text NOT NULL DEFAULT '',
    submitter_email text NOT NULL DEFAULT '',
    status_token    bytea, -- sha256 of a submitter's secret status token
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    search          tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', title || ' ' || description || ' ' || organiser || ' ' || place_name || ' ' || address || ' ' || category)
    ) STORED,
    CHECK (end_local >= start_local)
);
CREATE INDEX events_city_window ON events (city, window_start, window_end) WHERE status IN ('confirmed', 'tentative', 'cancelled');
CREATE INDEX events_city_pending ON events (city, id) WHERE status = 'pending_review';
CREATE INDEX events_search ON events USING gin (search);

-- One changed occurrence of a recurring event (iCalendar RECURRENCE-ID):
-- recurrence_id is the occurrence's original local start.
CREATE TABLE overrides (
    event_id      uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    recurrence_id timestamp NOT NULL,
    status        text NOT NULL CHECK (status IN ('confirmed', 'tentative', 'cancelled')),
    start_local   timestamp NOT NULL,
    end_local     timestamp NOT NULL,
    title         text NOT NULL DEFAULT '',
    sequence      integer NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, recurrence_id),
    CHECK (end_local >= start_local)
);

-- +goose Down
DROP TABLE overrides, events, places;
ALTER TABLE entries DROP COLUMN cancel_reason, DROP COLUMN market_id;
