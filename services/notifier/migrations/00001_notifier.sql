-- +goose Up
-- The notification log: every notification the notifier decided to send,
-- written in the same transaction as its outbox row and the inbox record of
-- the domain event that caused it.
CREATE TABLE notifications (
    id         uuid PRIMARY KEY,
    city       text NOT NULL,
    kind       text NOT NULL,
    topics     text[] NOT NULL,
    data       jsonb NOT NULL,
    cause_id   text NOT NULL,  -- the domain event's id
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_city_time ON notifications (city, created_at);

-- +goose Down
DROP TABLE notifications;
