// Package schema reads what a MySQL or MariaDB server holds (databases,
// tables with their columns and keys, views, triggers, routines, events),
// maps DDL between server versions and flavors, and splits tables into key
// ranges ("chunks") that copies and checksums work on.
//
// Everything here is read-only on the servers: the copier and the actions
// that change things live elsewhere and import this package.
package schema

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Querier is what this package needs of a connection: *sql.DB, *sql.Conn
// and *sql.Tx all qualify.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Flavor is the server family.
type Flavor string

// Server families.
const (
	MySQL   Flavor = "mysql"
	MariaDB Flavor = "mariadb"
)

// Server is what a copy needs to know about one server.
type Server struct {
	Flavor  Flavor
	Version string // SELECT VERSION(), e.g. "10.11.6-MariaDB-0+deb12u1"
	Major   int
	Minor   int
	Patch   int
	// Collations maps every collation the server knows to its charset.
	Collations map[string]string
	// DefaultCollation maps a charset to its default collation.
	DefaultCollation map[string]string
	// Engines lists the storage engines that accept tables (lower case).
	Engines map[string]bool
	// LocalInfile is @@local_infile: LOAD DATA LOCAL is allowed.
	LocalInfile bool
	// MaxAllowedPacket is @@max_allowed_packet in bytes.
	MaxAllowedPacket int64
	// LowerCaseTableNames is @@lower_case_table_names.
	LowerCaseTableNames int
	// ReadOnly is @@read_only.
	ReadOnly bool
}

var versionRe = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// ParseVersion splits a VERSION() string into flavor and numbers. MariaDB
// 10.x once reported itself as "5.5.5-10.x.y-MariaDB" through the
// protocol; the SQL function never does, but both forms are accepted.
func ParseVersion(v string) (Flavor, int, int, int) {
	f := MySQL
	s := v
	if strings.Contains(strings.ToLower(v), "mariadb") {
		f = MariaDB
		s = strings.TrimPrefix(s, "5.5.5-")
	}
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return f, 0, 0, 0
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return f, a, b, c
}

// Probe reads the server's version, collations, engines and the settings a
// copy depends on.
func Probe(ctx context.Context, q Querier) (*Server, error) {
	s := &Server{Collations: map[string]string{}, DefaultCollation: map[string]string{}, Engines: map[string]bool{}}
	var localInfile, readOnly sql.NullString
	var lctn sql.NullInt64
	var maxPacket sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT VERSION(), @@local_infile, @@max_allowed_packet, @@lower_case_table_names, @@read_only").
		Scan(&s.Version, &localInfile, &maxPacket, &lctn, &readOnly)
	if err != nil {
		return nil, fmt.Errorf("read server version: %w", err)
	}
	s.Flavor, s.Major, s.Minor, s.Patch = ParseVersion(s.Version)
	s.LocalInfile = localInfile.String == "1" || strings.EqualFold(localInfile.String, "ON")
	s.ReadOnly = readOnly.String == "1" || strings.EqualFold(readOnly.String, "ON")
	s.MaxAllowedPacket = maxPacket.Int64
	s.LowerCaseTableNames = int(lctn.Int64)

	rows, err := q.QueryContext(ctx, "SELECT COLLATION_NAME, CHARACTER_SET_NAME, IS_DEFAULT FROM information_schema.COLLATIONS")
	if err != nil {
		return nil, fmt.Errorf("list collations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var coll string
		var cs, def sql.NullString // MariaDB 10.10+ lists charset-less UCA 14 collations
		if err := rows.Scan(&coll, &cs, &def); err != nil {
			return nil, fmt.Errorf("list collations: %w", err)
		}
		s.Collations[strings.ToLower(coll)] = strings.ToLower(cs.String)
		if cs.Valid && strings.EqualFold(def.String, "Yes") {
			s.DefaultCollation[strings.ToLower(cs.String)] = strings.ToLower(coll)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list collations: %w", err)
	}
	rows.Close()
	if s.Flavor == MariaDB && s.AtLeast(10, 10, 0) {
		// UCA 14 collations apply to several charsets and are listed once
		// in COLLATIONS; their full names live here.
		frows, err := q.QueryContext(ctx, "SELECT FULL_COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY")
		if err != nil {
			return nil, fmt.Errorf("list collations: %w", err)
		}
		for frows.Next() {
			var coll, cs string
			if err := frows.Scan(&coll, &cs); err != nil {
				frows.Close()
				return nil, fmt.Errorf("list collations: %w", err)
			}
			s.Collations[strings.ToLower(coll)] = strings.ToLower(cs)
		}
		if err := frows.Close(); err != nil {
			return nil, fmt.Errorf("list collations: %w", err)
		}
	}
	erows, err := q.QueryContext(ctx, "SELECT ENGINE, SUPPORT FROM information_schema.ENGINES")
	if err != nil {
		return nil, fmt.Errorf("list engines: %w", err)
	}
	defer erows.Close()
	for erows.Next() {
		var e, sup string
		if err := erows.Scan(&e, &sup); err != nil {
			return nil, fmt.Errorf("list engines: %w", err)
		}
		if strings.EqualFold(sup, "YES") || strings.EqualFold(sup, "DEFAULT") {
			s.Engines[strings.ToLower(e)] = true
		}
	}
	return s, erows.Err()
}

// AtLeast reports whether the server's version is major.minor.patch or newer.
func (s *Server) AtLeast(major, minor, patch int) bool {
	if s.Major != major {
		return s.Major > major
	}
	if s.Minor != minor {
		return s.Minor > minor
	}
	return s.Patch >= patch
}

// String is "MariaDB 10.11.6" or "MySQL 8.0.36".
func (s *Server) String() string {
	name := "MySQL"
	if s.Flavor == MariaDB {
		name = "MariaDB"
	}
	return fmt.Sprintf("%s %d.%d.%d", name, s.Major, s.Minor, s.Patch)
}

// MultipleTriggers reports whether the server allows several triggers for
// the same table, timing and event (MySQL 5.7.2+, MariaDB 10.2.3+). Older
// servers allow one, so a capture trigger cannot sit next to an existing one.
func (s *Server) MultipleTriggers() bool {
	if s.Flavor == MariaDB {
		return s.AtLeast(10, 2, 3)
	}
	return s.AtLeast(5, 7, 2)
}

// HasCollation reports whether the server knows collation c.
func (s *Server) HasCollation(c string) bool {
	_, ok := s.Collations[strings.ToLower(c)]
	return ok
}

// QuoteIdent quotes a MySQL identifier with backticks.
func QuoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// QualifiedName is `db`.`name`.
func QualifiedName(db, name string) string {
	return QuoteIdent(db) + "." + QuoteIdent(name)
}

// QuoteString quotes s as a SQL string literal for a session without
// NO_BACKSLASH_ESCAPES (the sessions this package's users open).
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// SystemDatabases are never copied: they belong to the server itself.
var SystemDatabases = map[string]bool{
	"mysql": true, "information_schema": true, "performance_schema": true, "sys": true,
}

// Databases lists the user databases on the server, sorted, without the
// system ones and without those in skip.
func Databases(ctx context.Context, q Querier, skip ...string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list databases: %w", err)
		}
		if SystemDatabases[strings.ToLower(n)] || contains(skip, n) {
			continue
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DatabaseExists reports whether db exists on the server.
func DatabaseExists(ctx context.Context, q Querier, db string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up database %s: %w", db, err)
	}
	return n > 0, nil
}

// ShowCreateDatabase returns SHOW CREATE DATABASE's statement.
func ShowCreateDatabase(ctx context.Context, q Querier, db string) (string, error) {
	var name, create string
	if err := q.QueryRowContext(ctx, "SHOW CREATE DATABASE "+QuoteIdent(db)).Scan(&name, &create); err != nil {
		return "", fmt.Errorf("show create database %s: %w", db, err)
	}
	return create, nil
}
