package sqldb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// defaultMaxConns is a replica's PostgreSQL pool size when the DSN does
// not set pool_max_conns.
const defaultMaxConns = 8

// lockRetry is how often a waiting replica retries a migration lock.
const lockRetry = 200 * time.Millisecond

// OpenPostgres connects a pgx pool to dsn and applies m. Pool settings not
// given in the DSN (pool_max_conns and friends) are defaulted for a service
// replica: defaultMaxConns connections, health-checked, and recycled so
// that a failover or a pooler restart is picked up.
func OpenPostgres(ctx context.Context, dsn string, m Migrations, log *slog.Logger) (*pgxpool.Pool, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The error text may contain the DSN, password included.
		return nil, fmt.Errorf("postgres: invalid DSN")
	}
	// pgxpool's own default, max(4, NumCPU), starves a service on a
	// small machine whose calls mostly wait on the network. More is not
	// better: every replica holds its pool, and replicas times pool size
	// must stay under the server's max_connections (100 by default), so
	// scale past a dozen replicas behind a pooler such as PgBouncer, or
	// set pool_max_conns in the DSN.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migratePostgres(ctx, pool, m, log); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func migratePostgres(ctx context.Context, pool *pgxpool.Pool, m Migrations, log *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(m.LockID), lock.WithLockTimeout(1, 120))
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, m.FS,
		goose.WithTableName(m.Table), goose.WithSessionLocker(locker),
		goose.WithLogger(slogAdapter{log}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return runMigrations(ctx, p)
}
