package mysqlcompat

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// SystemSchemas are never copied and never checked.
var SystemSchemas = []string{"mysql", "information_schema", "performance_schema", "sys"}

// IsSystemSchema reports whether name is one of SystemSchemas.
func IsSystemSchema(name string) bool {
	for _, s := range SystemSchemas {
		if strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

// Schema is a database with its defaults.
type Schema struct{ Name, Charset, Collation string }

// Table is a base table, view or sequence.
type Table struct {
	Schema, Name  string
	Type          string // BASE TABLE, VIEW, SEQUENCE, SYSTEM VERSIONED
	Engine        string
	Collation     string
	CreateOptions string
	Data, Index   int64 // bytes
	Rows          int64 // estimate
}

// Column is one column of a base table.
type Column struct {
	Schema, Table, Name string
	DataType            string // lower case: varchar, datetime, inet6
	ColumnType          string
	Charset, Collation  string
	Default             sql.NullString // as information_schema shows it
	Extra               string
	MaxLength           int64
}

// Object is a view, routine, trigger or event: something with a DEFINER,
// a stored sql_mode and a body.
type Object struct {
	Kind         string // VIEW, PROCEDURE, FUNCTION, TRIGGER, EVENT
	Schema, Name string
	Definer      string // user@host as stored, e.g. app@%
	SQLMode      string
	Body         string
}

// ForeignKey is one foreign key constraint.
type ForeignKey struct{ Schema, Table, Name string }

// ZeroDates counts rows holding zero dates ('0000-00-00' or a zero month
// or day) in one column.
type ZeroDates struct {
	Schema, Table, Column string
	Rows                  int64
}

// Inventory is what a source server holds that matters for compatibility.
type Inventory struct {
	Version Version
	SQLMode string
	// Configured are the global variables set in my.cnf or on the command
	// line (lower-case name → value); nil when the server cannot say (MySQL
	// before 8.0).
	Configured map[string]string
	// Variables are all global variable names (lower case).
	Variables   map[string]bool
	Schemas     []Schema
	Tables      []Table
	Columns     []Column
	Objects     []Object
	ForeignKeys []ForeignKey
	Accounts    []Account
	ZeroDates   []ZeroDates
	// ZeroScanSkipped lists tables too big to scan for zero dates.
	ZeroScanSkipped []string
}

// CollectOptions limits what Collect reads.
type CollectOptions struct {
	// Databases restricts the inventory to these schemas (default: all
	// but the system ones).
	Databases []string
	// ScanZeroDates counts zero dates row by row; tables with more than
	// MaxScanRows estimated rows are skipped (0: no limit).
	ScanZeroDates bool
	MaxScanRows   int64
}

// ReadVersion reads VERSION() and @@version_comment.
func ReadVersion(ctx context.Context, q Querier) (Version, error) {
	var ver, comment string
	if err := q.QueryRowContext(ctx, "SELECT VERSION(), @@version_comment").Scan(&ver, &comment); err != nil {
		return Version{}, fmt.Errorf("read server version: %w", err)
	}
	return ParseVersion(ver, comment)
}

// schemaFilter returns a WHERE fragment restricting col and its args.
func schemaFilter(col string, dbs []string) (string, []any) {
	if len(dbs) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?,", len(dbs)), ",")
		args := make([]any, len(dbs))
		for i, d := range dbs {
			args[i] = d
		}
		return col + " IN (" + ph + ")", args
	}
	return col + " NOT IN ('mysql','information_schema','performance_schema','sys')", nil
}

// Collect reads the inventory of a source server.
func Collect(ctx context.Context, q Querier, o CollectOptions) (*Inventory, error) {
	inv := &Inventory{}
	var err error
	if inv.Version, err = ReadVersion(ctx, q); err != nil {
		return nil, err
	}
	if err := q.QueryRowContext(ctx, "SELECT @@GLOBAL.sql_mode").Scan(&inv.SQLMode); err != nil {
		return nil, fmt.Errorf("read sql_mode: %w", err)
	}
	if inv.Variables, err = variableNames(ctx, q); err != nil {
		return nil, err
	}
	inv.Configured = configuredVariables(ctx, q, inv.Version)

	f, args := schemaFilter("SCHEMA_NAME", o.Databases)
	if err := scanRows(ctx, q, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE "+f+" ORDER BY 1",
		args, func(r *sql.Rows) error {
			var s Schema
			if err := r.Scan(&s.Name, &s.Charset, &s.Collation); err != nil {
				return err
			}
			inv.Schemas = append(inv.Schemas, s)
			return nil
		}); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}

	if inv.Tables, err = ListTables(ctx, q, o.Databases); err != nil {
		return nil, err
	}
	f, args = schemaFilter("TABLE_SCHEMA", o.Databases)

	if err := scanRows(ctx, q, `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE,
		COALESCE(c.CHARACTER_SET_NAME,''), COALESCE(c.COLLATION_NAME,''), c.COLUMN_DEFAULT, COALESCE(c.EXTRA,''),
		COALESCE(c.CHARACTER_MAXIMUM_LENGTH,0)
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
		  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE <> 'VIEW'
		WHERE c.`+f+" ORDER BY 1, 2, c.ORDINAL_POSITION", args, func(r *sql.Rows) error {
		var c Column
		if err := r.Scan(&c.Schema, &c.Table, &c.Name, &c.DataType, &c.ColumnType, &c.Charset, &c.Collation, &c.Default, &c.Extra, &c.MaxLength); err != nil {
			return err
		}
		inv.Columns = append(inv.Columns, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}

	if err := collectObjects(ctx, q, inv, o.Databases); err != nil {
		return nil, err
	}

	f, args = schemaFilter("CONSTRAINT_SCHEMA", o.Databases)
	if err := scanRows(ctx, q, "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE "+f,
		args, func(r *sql.Rows) error {
			var k ForeignKey
			if err := r.Scan(&k.Schema, &k.Table, &k.Name); err != nil {
				return err
			}
			inv.ForeignKeys = append(inv.ForeignKeys, k)
			return nil
		}); err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}

	if inv.Accounts, err = ListAccounts(ctx, q); err != nil {
		return nil, err
	}
	if o.ScanZeroDates {
		if err := scanZeroDates(ctx, q, inv, o.MaxScanRows); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

// ListTables reads the tables, views and sequences of the given schemas
// (default: all but the system ones) with their sizes.
func ListTables(ctx context.Context, q Querier, dbs []string) ([]Table, error) {
	var out []Table
	f, args := schemaFilter("TABLE_SCHEMA", dbs)
	if err := scanRows(ctx, q, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE,''), COALESCE(TABLE_COLLATION,''),
		COALESCE(CREATE_OPTIONS,''), COALESCE(DATA_LENGTH,0), COALESCE(INDEX_LENGTH,0), COALESCE(TABLE_ROWS,0)
		FROM information_schema.TABLES WHERE `+f+" ORDER BY 1, 2", args, func(r *sql.Rows) error {
		var t Table
		if err := r.Scan(&t.Schema, &t.Name, &t.Type, &t.Engine, &t.Collation, &t.CreateOptions, &t.Data, &t.Index, &t.Rows); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

func collectObjects(ctx context.Context, q Querier, inv *Inventory, dbs []string) error {
	type src struct{ what, kind, query, schemaCol string }
	srcs := []src{
		{"views", "VIEW", "SELECT TABLE_SCHEMA, TABLE_NAME, DEFINER, '', COALESCE(VIEW_DEFINITION,'') FROM information_schema.VIEWS WHERE ", "TABLE_SCHEMA"},
		{"routines", "", "SELECT ROUTINE_TYPE, ROUTINE_SCHEMA, ROUTINE_NAME, DEFINER, SQL_MODE, COALESCE(ROUTINE_DEFINITION,'') FROM information_schema.ROUTINES WHERE ", "ROUTINE_SCHEMA"},
		{"triggers", "TRIGGER", "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, DEFINER, SQL_MODE, COALESCE(ACTION_STATEMENT,'') FROM information_schema.TRIGGERS WHERE ", "TRIGGER_SCHEMA"},
		{"events", "EVENT", "SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, SQL_MODE, COALESCE(EVENT_DEFINITION,'') FROM information_schema.EVENTS WHERE ", "EVENT_SCHEMA"},
	}
	for _, s := range srcs {
		f, args := schemaFilter(s.schemaCol, dbs)
		err := scanRows(ctx, q, s.query+f+" ORDER BY 1, 2", args, func(r *sql.Rows) error {
			o := Object{Kind: s.kind}
			var err error
			if s.kind == "" {
				err = r.Scan(&o.Kind, &o.Schema, &o.Name, &o.Definer, &o.SQLMode, &o.Body)
			} else {
				err = r.Scan(&o.Schema, &o.Name, &o.Definer, &o.SQLMode, &o.Body)
			}
			if err != nil {
				return err
			}
			inv.Objects = append(inv.Objects, o)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", s.what, err)
		}
	}
	return nil
}

// scanZeroDates counts zero dates per temporal column with one scan per table.
func scanZeroDates(ctx context.Context, q Querier, inv *Inventory, maxRows int64) error {
	type tcols struct {
		schema, table string
		cols          []string
	}
	var list []*tcols
	idx := map[string]*tcols{}
	for _, c := range inv.Columns {
		switch c.DataType {
		case "date", "datetime", "timestamp":
		default:
			continue
		}
		k := c.Schema + "." + c.Table
		t := idx[k]
		if t == nil {
			t = &tcols{schema: c.Schema, table: c.Table}
			idx[k] = t
			list = append(list, t)
		}
		t.cols = append(t.cols, c.Name)
	}
	rows := map[string]int64{}
	for _, t := range inv.Tables {
		rows[t.Schema+"."+t.Name] = t.Rows
	}
	for _, t := range list {
		if maxRows > 0 && rows[t.schema+"."+t.table] > maxRows {
			inv.ZeroScanSkipped = append(inv.ZeroScanSkipped, t.schema+"."+t.table)
			continue
		}
		var sel []string
		for _, c := range t.cols {
			qc := QuoteIdent(c)
			sel = append(sel, fmt.Sprintf("COALESCE(SUM(MONTH(%s) = 0 OR DAYOFMONTH(%s) = 0), 0)", qc, qc))
		}
		query := "SELECT " + strings.Join(sel, ", ") + " FROM " + QuoteIdent(t.schema) + "." + QuoteIdent(t.table)
		counts := make([]int64, len(t.cols))
		ptrs := make([]any, len(counts))
		for i := range counts {
			ptrs[i] = &counts[i]
		}
		if err := q.QueryRowContext(ctx, query).Scan(ptrs...); err != nil {
			return fmt.Errorf("scan %s.%s for zero dates: %w", t.schema, t.table, err)
		}
		for i, n := range counts {
			if n > 0 {
				inv.ZeroDates = append(inv.ZeroDates, ZeroDates{t.schema, t.table, t.cols[i], n})
			}
		}
	}
	return nil
}

// variableNames lists the server's global variable names.
func variableNames(ctx context.Context, q Querier) (map[string]bool, error) {
	out := map[string]bool{}
	err := scanRows(ctx, q, "SHOW GLOBAL VARIABLES", nil, func(r *sql.Rows) error {
		var n, v sql.NullString
		if err := r.Scan(&n, &v); err != nil {
			return err
		}
		out[strings.ToLower(n.String)] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list variables: %w", err)
	}
	return out, nil
}

// configuredVariables asks the server which variables were set by a
// config file or the command line: MariaDB's SYSTEM_VARIABLES origin or
// MySQL 8's performance_schema.variables_info. It returns nil when the
// server cannot tell.
func configuredVariables(ctx context.Context, q Querier, v Version) map[string]string {
	var query string
	switch {
	case v.Is(MariaDB, 10, 2, 0):
		query = `SELECT LOWER(VARIABLE_NAME), COALESCE(GLOBAL_VALUE,'') FROM information_schema.SYSTEM_VARIABLES
			WHERE GLOBAL_VALUE_ORIGIN IN ('CONFIG','COMMAND-LINE')`
	case v.Is(MySQL, 8, 0, 0):
		query = `SELECT LOWER(i.VARIABLE_NAME), COALESCE(g.VARIABLE_VALUE,'') FROM performance_schema.variables_info i
			LEFT JOIN performance_schema.global_variables g ON g.VARIABLE_NAME = i.VARIABLE_NAME
			WHERE i.VARIABLE_SOURCE NOT IN ('COMPILED','DYNAMIC')`
	default:
		return nil
	}
	out := map[string]string{}
	if err := scanRows(ctx, q, query, nil, func(r *sql.Rows) error {
		var n, val string
		if err := r.Scan(&n, &val); err != nil {
			return err
		}
		out[n] = val
		return nil
	}); err != nil {
		return nil
	}
	return out
}

func scanRows(ctx context.Context, q Querier, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SchemaSizes sums data and index bytes per schema and finds the largest
// table, from information_schema (estimates for InnoDB, as the server keeps them).
type SchemaSizes struct {
	Schema       string
	Data, Index  int64
	Tables       int
	Largest      string
	LargestBytes int64
}

// Sizes groups base tables by schema, largest schema first.
func Sizes(tables []Table) []SchemaSizes {
	m := map[string]*SchemaSizes{}
	for _, t := range tables {
		if t.Type == "VIEW" {
			continue
		}
		s := m[t.Schema]
		if s == nil {
			s = &SchemaSizes{Schema: t.Schema}
			m[t.Schema] = s
		}
		s.Data += t.Data
		s.Index += t.Index
		s.Tables++
		if b := t.Data + t.Index; b > s.LargestBytes || s.Largest == "" {
			s.Largest, s.LargestBytes = t.Schema+"."+t.Name, b
		}
	}
	out := make([]SchemaSizes, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Data+out[i].Index, out[j].Data+out[j].Index
		if a != b {
			return a > b
		}
		return out[i].Schema < out[j].Schema
	})
	return out
}
