package sqldb

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Transient reports whether err means the database cannot do the work right
// now rather than that the work is wrong: the server could not be reached
// or dropped the connection, is starting or shutting down, has no
// connection slot left, or (SQLite) the file stayed locked past the busy
// timeout or was deleted or replaced under the process (a
// *FileReplacedError: this replica fails until restarted, another may
// serve the retry). Services answer these with Unavailable, which clients
// retry; a mutation retried with its request_id is applied once even if
// the lost reply hid a commit. A canceled or expired context is not
// transient here: the caller maps its own context's errors.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var replaced *FileReplacedError
	if errors.As(err, &replaced) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	// A connection lost mid-call: pgx marks what failed before anything
	// was sent, and passes up the network error or the early EOF.
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

// transientSQLState reports whether a PostgreSQL SQLSTATE names a
// condition of the server or the connection rather than of the statement.
func transientSQLState(code string) bool {
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, in recovery)
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection_exception class
}
