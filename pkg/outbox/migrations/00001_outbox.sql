-- +goose Up
-- One outbox per service schema (the pool's search_path names it).
CREATE TABLE outbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    subject      text        NOT NULL,  -- NATS subject
    source       text        NOT NULL,  -- ce-source
    type         text        NOT NULL,  -- ce-type
    ce_subject   text        NOT NULL DEFAULT '',
    event_time   timestamptz NOT NULL,
    content_type text        NOT NULL DEFAULT 'application/json',
    traceparent  text        NOT NULL DEFAULT '',
    data         bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);
-- The relay's work list stays small however long the replay window is.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
