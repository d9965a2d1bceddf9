-- authsvc schema, PostgreSQL dialect. Times are Unix microseconds (BIGINT),
-- the same in both dialects, so that every query is shared.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,          -- space-separated, sorted
    create_time   BIGINT NOT NULL
);

-- One family per login; every refresh token of a login belongs to it.
CREATE TABLE refresh_families (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,          -- the latest expiry of anything in it
    revoke_time BIGINT
);
CREATE INDEX refresh_families_expire ON refresh_families (expire_time);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY,        -- SHA-256 of the token
    family_id   TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    expire_time BIGINT NOT NULL,
    used_time   BIGINT                    -- set when spent
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expire ON refresh_tokens (expire_time);

-- The access tokens issued in each family, so they can be revoked with it.
CREATE TABLE family_access_tokens (
    token_id    TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    expire_time BIGINT NOT NULL
);
CREATE INDEX family_access_tokens_family ON family_access_tokens (family_id);
CREATE INDEX family_access_tokens_expire ON family_access_tokens (expire_time);

-- Identity values are never reused; inserts are serialised (see the store) so
-- that sequence order is commit order.
CREATE TABLE revocations (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    expire_time BIGINT NOT NULL,
    revoke_time BIGINT NOT NULL
);
CREATE INDEX revocations_expire ON revocations (expire_time);

CREATE TABLE login_failures (
    throttle_key      TEXT PRIMARY KEY,
    failures          BIGINT NOT NULL,
    last_failure_time BIGINT NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure_time);

CREATE TABLE signing_keys (
    id                     TEXT PRIMARY KEY,
    public_key             BYTEA NOT NULL,
    private_key            BYTEA NOT NULL,
    private_key_encryption TEXT NOT NULL,
    create_time            BIGINT NOT NULL,
    activate_time          BIGINT NOT NULL
);

-- One row naming the newest key: rotations compare-and-set it.
CREATE TABLE signing_key_head (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    newest_key_id TEXT NOT NULL
);
INSERT INTO signing_key_head (id, newest_key_id) VALUES (1, '');

-- +goose Down
DROP TABLE signing_key_head;
DROP TABLE signing_keys;
DROP TABLE login_failures;
DROP TABLE revocations;
DROP TABLE family_access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
DROP TABLE users;
