-- +goose Up
-- Responses to POSTs that carried an Idempotency-Key, so that a retry gets the
-- first response instead of doing the work twice. A row with no status is a
-- claim: the first request is still being processed.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,  -- the caller, e.g. the account id
    operation    text        NOT NULL,  -- method and path
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       int,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, operation, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
