// Package rowcopy moves table rows from a source MySQL/MariaDB server to a
// target one, natively: rows are read with the binary protocol on one
// connection and streamed into LOAD DATA LOCAL (or multi-row REPLACE) on
// the other, chunk by chunk, several chunks in flight. It also computes the
// chunked checksums that verify a copy.
//
// Every chunk is idempotent: the target's rows in the chunk's key range are
// deleted and the source's loaded with REPLACE in one transaction, so a
// chunk copied twice never duplicates or loses a row.
package rowcopy

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// Session settings a copy changes, with the value to restore.
type saved struct {
	name, value string
}

// setSession applies settings to conn and returns a func restoring the
// previous values, so a pooled connection goes back as it came.
func setSession(ctx context.Context, conn *sql.Conn, settings [][2]string) (func(), error) {
	var prev []saved
	for _, s := range settings {
		var v sql.NullString
		if err := conn.QueryRowContext(ctx, "SELECT @@SESSION."+s[0]).Scan(&v); err != nil {
			return nil, fmt.Errorf("read @@%s: %w", s[0], err)
		}
		if _, err := conn.ExecContext(ctx, "SET SESSION "+s[0]+" = "+s[1]); err != nil {
			restore(conn, prev)
			return nil, fmt.Errorf("set %s: %w", s[0], err)
		}
		prev = append(prev, saved{s[0], v.String})
	}
	return func() { restore(conn, prev) }, nil
}

func restore(conn *sql.Conn, prev []saved) {
	ctx := context.Background()
	for i := len(prev) - 1; i >= 0; i-- {
		if _, err := conn.ExecContext(ctx, "SET SESSION "+prev[i].name+" = ?", prev[i].value); err != nil {
			// A connection we cannot restore must not go back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return
		}
	}
}

// sourceSession makes results come as raw column bytes (no charset
// conversion), in UTC, with time for a slow target to drain each chunk.
var sourceSession = [][2]string{
	{"time_zone", "'+00:00'"},
	{"character_set_results", "'binary'"},
	{"net_write_timeout", "600"},
}

// targetSession lets legal source data load (zero dates, id 0 in an
// AUTO_INCREMENT column), in UTC, in any table order.
var targetSession = [][2]string{
	{"time_zone", "'+00:00'"},
	{"sql_mode", "'NO_AUTO_VALUE_ON_ZERO'"},
	{"foreign_key_checks", "0"},
	{"net_read_timeout", "600"},
}

// openConn takes a dedicated connection from db with settings applied.
func openConn(ctx context.Context, db *sql.DB, settings [][2]string) (*sql.Conn, func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	undo, err := setSession(ctx, conn, settings)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, func() {
		undo()
		conn.Close()
	}, nil
}
