-- +goose Up
-- The notifier's own copies, built from listings events: the languages of
-- each city (to render notifications in) and upcoming stalls (to tell a
-- vendor's followers the day before).
CREATE TABLE cities (
    slug      text PRIMARY KEY,
    timezone  text NOT NULL,
    languages text[] NOT NULL,
    version   bigint NOT NULL
);

CREATE TABLE stalls (
    application_id uuid PRIMARY KEY,
    city           text NOT NULL,
    date           date NOT NULL,
    vendor_id      uuid NOT NULL,
    data           jsonb NOT NULL,  -- the facts to render the reminder from
    released       boolean NOT NULL DEFAULT false,
    announced      boolean NOT NULL DEFAULT false,
    version        bigint NOT NULL
);
CREATE INDEX stalls_due ON stalls (date) WHERE NOT announced AND NOT released;

-- The rendered sentence per language, kept with the notification for the inbox.
ALTER TABLE notifications ADD COLUMN text jsonb;

-- +goose Down
ALTER TABLE notifications DROP COLUMN text;
DROP TABLE stalls, cities;
