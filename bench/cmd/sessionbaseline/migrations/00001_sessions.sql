-- The "sessions in a database" design that tokencart's stateless tokens
-- replace: one row per login, looked up on every request.

-- +goose Up
CREATE TABLE sessions (
    token_hash BYTEA       PRIMARY KEY,
    user_id    TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE sessions;
