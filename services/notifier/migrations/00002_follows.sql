-- +goose Up
-- What residents follow. A resident is an anonymous device ("device:<uuid>")
-- until they sign in; then their follows move to their account
-- ("account:<uuid>").
CREATE TABLE follows (
    resident   text NOT NULL,
    topic      text NOT NULL,
    city       text NOT NULL DEFAULT '',  -- for city:… topics; lets an operator see follows per city
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident, topic)
);
CREATE INDEX follows_topic ON follows (topic);

-- Notifications a resident has read.
CREATE TABLE reads (
    resident        text NOT NULL,
    notification_id uuid NOT NULL REFERENCES notifications ON DELETE CASCADE,
    read_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (resident, notification_id)
);

CREATE INDEX notifications_topics ON notifications USING gin (topics);

-- +goose Down
DROP TABLE reads, follows;
DROP INDEX notifications_topics;
