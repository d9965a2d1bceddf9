-- catalogsvc schema (PostgreSQL). Times are unix microseconds (BIGINT), as in
-- the SQLite schema, so the SQL text of the queries is shared.

-- +goose Up
-- One row: the catalog's change counter, which replicas poll to know when
-- to reload their in-memory snapshot, and whether the seed was loaded.
CREATE TABLE catalog_meta (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL,
    seeded  INTEGER NOT NULL
);
INSERT INTO catalog_meta (id, version, seeded) VALUES (1, 0, 0);

CREATE TABLE products (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    units       BIGINT  NOT NULL,
    nanos       INTEGER NOT NULL,
    update_time BIGINT  NOT NULL
);

-- One row per cart: lines are a small JSON array (at most 100 lines), so a
-- change is one row lock and one row write. fillfactor leaves room on each
-- page for HOT updates, as carts are updated far more than inserted.
CREATE TABLE carts (
    owner       TEXT   PRIMARY KEY,
    version     BIGINT NOT NULL,
    lines       TEXT   NOT NULL,
    update_time BIGINT NOT NULL
) WITH (fillfactor = 80);

-- Idempotency keys: the parameters' hash and the cart each mutation
-- produced, kept at least 24 hours.
CREATE TABLE cart_requests (
    owner       TEXT   NOT NULL,
    request_id  TEXT   NOT NULL,
    params_hash BYTEA  NOT NULL,
    version     BIGINT NOT NULL,
    lines       TEXT   NOT NULL,
    update_time BIGINT NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (owner, request_id)
);
CREATE INDEX cart_requests_create_time ON cart_requests (create_time);

-- +goose Down
DROP TABLE cart_requests;
DROP TABLE carts;
DROP TABLE products;
DROP TABLE catalog_meta;
