// Package sqldb opens tokencart's two kinds of durable store and brings
// their schema up to date: SQLite (pure Go, modernc.org/sqlite), the
// embedded default, and PostgreSQL (pgx), for more than one machine. The
// DSN's scheme chooses: a postgres:// or postgresql:// URL is PostgreSQL,
// anything else is a SQLite file path.
//
// Migrations are embedded SQL files run by goose at start. Replicas may
// start at the same moment: on PostgreSQL a session advisory lock, and on
// SQLite an exclusive file lock beside the database, lets one migrate while
// the others wait.
package sqldb

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/pressly/goose/v3"
)

// IsPostgres reports whether dsn names a PostgreSQL database rather than a
// SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Migrations names one service's embedded migrations for one dialect.
type Migrations struct {
	// FS holds the .sql files (goose format) at its root; use fs.Sub on an
	// embed.FS.
	FS fs.FS
	// Table records which migrations have run. Each service has its own,
	// so services sharing one database keep separate histories.
	Table string
	// LockID is the PostgreSQL advisory lock id that serialises this
	// schema's migrations across replicas starting together.
	LockID int64
}

func (m Migrations) validate() error {
	if m.FS == nil || m.Table == "" {
		return fmt.Errorf("migrations: FS and Table are required")
	}
	return nil
}

// slogAdapter lets goose report applied migrations through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) {
	a.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (a slogAdapter) Fatalf(format string, v ...any) {
	a.log.Error(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func runMigrations(ctx context.Context, p *goose.Provider) error {
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
