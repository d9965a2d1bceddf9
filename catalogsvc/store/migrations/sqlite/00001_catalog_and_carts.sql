-- catalogsvc schema (SQLite). Times are unix microseconds (INTEGER), as in
-- the PostgreSQL schema, so the SQL text of the queries is shared.

-- +goose Up
-- One row: the catalog's change counter, which replicas poll to know when
-- to reload their in-memory snapshot, and whether the seed was loaded.
CREATE TABLE catalog_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    seeded  INTEGER NOT NULL
);
INSERT INTO catalog_meta (id, version, seeded) VALUES (1, 0, 0);

CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    units       INTEGER NOT NULL,
    nanos       INTEGER NOT NULL,
    update_time INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per cart: lines are a small JSON array (at most 100 lines), so a
-- change is one row write.
CREATE TABLE carts (
    owner       TEXT    PRIMARY KEY,
    version     INTEGER NOT NULL,
    lines       TEXT    NOT NULL,
    update_time INTEGER NOT NULL
) WITHOUT ROWID;

-- Idempotency keys: the parameters' hash and the cart each mutation
-- produced, kept at least 24 hours.
CREATE TABLE cart_requests (
    owner       TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    params_hash BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    lines       TEXT    NOT NULL,
    update_time INTEGER NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (owner, request_id)
) WITHOUT ROWID;
CREATE INDEX cart_requests_create_time ON cart_requests (create_time);

-- +goose Down
DROP TABLE cart_requests;
DROP TABLE carts;
DROP TABLE products;
DROP TABLE catalog_meta;
