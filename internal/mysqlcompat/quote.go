package mysqlcompat

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// QuoteIdent quotes a schema object name with backticks.
func QuoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Quoter writes string literals for one session: a backslash is an escape
// character unless the session's sql_mode has NO_BACKSLASH_ESCAPES.
type Quoter struct{ NoBackslashEscapes bool }

// SessionQuoter reads the session's sql_mode on q. Use it on the same
// *sql.Conn the statements will run on.
func SessionQuoter(ctx context.Context, q Querier) (Quoter, error) {
	var mode string
	if err := q.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		return Quoter{}, fmt.Errorf("read sql_mode: %w", err)
	}
	return Quoter{NoBackslashEscapes: strings.Contains(strings.ToUpper(mode), "NO_BACKSLASH_ESCAPES")}, nil
}

// String returns s as a single-quoted SQL string literal.
func (q Quoter) String(s string) string {
	if !q.NoBackslashEscapes {
		s = strings.ReplaceAll(s, `\`, `\\`)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Account returns 'user'@'host' as SQL.
func (q Quoter) Account(user, host string) string { return q.String(user) + "@" + q.String(host) }

// AccountName is user@host as shown to people ('app'@'%').
func AccountName(user, host string) string { return "'" + user + "'@'" + host + "'" }
