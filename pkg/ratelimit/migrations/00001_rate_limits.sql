-- +goose Up
-- Sign-up and sign-in limits shared by every accounts replica: one row per
-- key (an address or an email) holding its GCRA "theoretical arrival time".
-- A key whose tat has passed is back to a full burst; such rows are pruned.
CREATE TABLE rate_limits (
    key text        PRIMARY KEY,
    tat timestamptz NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);

-- +goose Down
DROP TABLE rate_limits;
