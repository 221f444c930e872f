-- +goose Up
-- Events each consumer has processed, recorded in the same transaction as the
-- effect: a redelivered event finds its id here and changes nothing.
CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- Messages a consumer gave up on (bad data, or still failing after the last
-- delivery), kept for an operator to inspect and replay.
CREATE TABLE dead_letters (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer   text        NOT NULL,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    subject    text        NOT NULL,
    stream_seq bigint      NOT NULL,
    reason     text        NOT NULL,
    data       bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE inbox;
