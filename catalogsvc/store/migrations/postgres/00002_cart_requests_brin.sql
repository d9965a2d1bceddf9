-- The idempotency keys' creation-time index serves only the prune, which
-- runs now and then; every cart change inserts a key. As a BRIN index it
-- costs a change next to nothing (a B-tree costs an index entry each):
-- keys are inserted in creation-time order, so block ranges summarise them
-- well, and autosummarize keeps the summaries current as ranges fill.

-- +goose Up
DROP INDEX cart_requests_create_time;
CREATE INDEX cart_requests_create_time ON cart_requests USING brin (create_time) WITH (autosummarize = on);

-- +goose Down
DROP INDEX cart_requests_create_time;
CREATE INDEX cart_requests_create_time ON cart_requests (create_time);
