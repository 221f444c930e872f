-- +goose Up
-- A rotated refresh token presented again within a short grace window (two
-- tabs, or a reload racing an in-flight refresh) is answered with the
-- successor its rotation issued, so the family never forks.
--
-- parent_id links a token to the one it replaced; the unique index lets a
-- token have at most one successor. successor_sealed is that successor,
-- encrypted with a key derived from the rotated token itself: only whoever
-- presents that token can open it, and the table still holds no usable token
-- (it keeps SHA-256 hashes, from which the key cannot be derived). It is
-- cleared once the grace window is over.
ALTER TABLE refresh_tokens
    ADD COLUMN parent_id uuid REFERENCES refresh_tokens ON DELETE SET NULL,
    ADD COLUMN successor_sealed bytea;
CREATE UNIQUE INDEX refresh_tokens_parent ON refresh_tokens (parent_id);
CREATE INDEX refresh_tokens_sealed ON refresh_tokens (used_at) WHERE successor_sealed IS NOT NULL;

-- +goose Down
DROP INDEX refresh_tokens_sealed, refresh_tokens_parent;
ALTER TABLE refresh_tokens DROP COLUMN successor_sealed, DROP COLUMN parent_id;
