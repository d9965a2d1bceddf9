-- Sessions instead of refresh-token families, and a revocation state that is
-- bounded by sessions instead of a history of revoked tokens.
--
-- A session is one row however often it is refreshed: the current refresh
-- token's hash and generation, and the one spent last. A revoked session's
-- row is deleted (its revocation entry covers its access tokens), so the
-- table holds live sessions only. The refresh tokens, families and
-- per-access-token rows of 00001 are dropped: their users log in again.
--
-- Revocation entries are the current state: one row per revoked session,
-- per revoked single token, and per revoked account (every session created
-- before a time), each renumbered from revocation_head whenever it changes,
-- so following "seq > cursor" sees every change and a replay from zero sees
-- the state, not its history. Taking the head row's lock also serialises
-- revocation transactions, so sequence order is commit order.

-- +goose Up
CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY,       -- the sid claim
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time          BIGINT NOT NULL,        -- the time in the id
    refresh_generation   BIGINT NOT NULL,
    refresh_hash         BYTEA NOT NULL,         -- SHA-256 of the current refresh token
    refresh_expire_time  BIGINT NOT NULL,
    prev_refresh_hash    BYTEA,                  -- the token spent last
    prev_used_time       BIGINT,
    refresh_window_end   BIGINT NOT NULL,        -- rotations counted until then
    refresh_count        BIGINT NOT NULL,
    access_expire_time   BIGINT NOT NULL,        -- exp of the newest access token
    expire_time          BIGINT NOT NULL         -- the later of the two expiries
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expire ON sessions (expire_time);

ALTER TABLE users ADD COLUMN sessions_revoked_before BIGINT NOT NULL DEFAULT 0;

CREATE TABLE revocation_entries (
    kind            SMALLINT NOT NULL,           -- 1 token, 2 session, 3 account
    entry_id        TEXT NOT NULL,               -- jti, sid or account id
    subject         TEXT NOT NULL,
    session_id      TEXT NOT NULL DEFAULT '',
    session_time    BIGINT NOT NULL DEFAULT 0,   -- creation time of session_id, 0 if unknown
    sessions_before BIGINT NOT NULL DEFAULT 0,   -- kind 3: the cutoff
    expire_time     BIGINT NOT NULL,
    revoke_time     BIGINT NOT NULL,
    seq             BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (kind, entry_id)
);
CREATE INDEX revocation_entries_subject ON revocation_entries (subject);
CREATE INDEX revocation_entries_expire ON revocation_entries (expire_time);

CREATE TABLE revocation_head (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO revocation_head (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM revocations;
INSERT INTO revocation_entries (kind, entry_id, subject, expire_time, revoke_time, seq)
    SELECT 1, token_id, subject, expire_time, revoke_time, seq FROM revocations;

DROP TABLE revocations;
DROP TABLE family_access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;

-- Calls counted per key (client address, account, ...) in fixed windows.
CREATE TABLE call_counts (
    count_key  TEXT PRIMARY KEY,
    window_end BIGINT NOT NULL,
    calls      BIGINT NOT NULL
);
CREATE INDEX call_counts_window ON call_counts (window_end);

-- Addresses each account logged in from, so that strangers' failed guesses
-- cannot lock the owner out.
CREATE TABLE login_addresses (
    email           TEXT NOT NULL,
    address         TEXT NOT NULL,
    last_login_time BIGINT NOT NULL,
    PRIMARY KEY (email, address)
);
CREATE INDEX login_addresses_last ON login_addresses (last_login_time);

-- +goose Down
DROP TABLE login_addresses;
DROP TABLE call_counts;
CREATE TABLE refresh_families (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    create_time BIGINT NOT NULL,
    expire_time BIGINT NOT NULL,
    revoke_time BIGINT
);
CREATE INDEX refresh_families_expire ON refresh_families (expire_time);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    expire_time BIGINT NOT NULL,
    used_time   BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expire ON refresh_tokens (expire_time);
CREATE TABLE family_access_tokens (
    token_id    TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    expire_time BIGINT NOT NULL
);
CREATE INDEX family_access_tokens_family ON family_access_tokens (family_id);
CREATE INDEX family_access_tokens_expire ON family_access_tokens (expire_time);
CREATE TABLE revocations (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    expire_time BIGINT NOT NULL,
    revoke_time BIGINT NOT NULL
);
CREATE INDEX revocations_expire ON revocations (expire_time);
DROP TABLE revocation_head;
DROP TABLE revocation_entries;
ALTER TABLE users DROP COLUMN sessions_revoked_before;
DROP TABLE sessions;
