package schema

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// Column is one column of a table.
type Column struct {
	Name       string `json:"name"`
	DataType   string `json:"data_type"`   // lower case DATA_TYPE: int, varchar, json...
	ColumnType string `json:"column_type"` // full type: "int(10) unsigned"
	Nullable   bool   `json:"nullable,omitempty"`
	// Generated columns are computed by the server: never copied.
	Generated bool   `json:"generated,omitempty"`
	Charset   string `json:"charset,omitempty"`
	Collation string `json:"collation,omitempty"`
}

// Binary reports whether the column holds bytes rather than text, so a key
// value must be bound as bytes to compare the way the server orders it.
func (c Column) Binary() bool {
	switch c.DataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return true
	}
	return c.Charset == "binary"
}

// Integer reports whether the column is an integer type.
func (c Column) Integer() bool {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// Textual reports whether comparisons on the column follow a collation.
func (c Column) Textual() bool {
	return c.Collation != "" && !c.Binary()
}

// keyable reports whether values of the column compare in the same order
// as the server sorts them when bound from their printed form. FLOAT prints
// rounded; ENUM and SET sort by index but compare as strings; BIT, JSON and
// spatial values have no useful printed order.
func (c Column) keyable() bool {
	switch c.DataType {
	case "float", "enum", "set", "bit", "json", "geometry", "point", "linestring", "polygon",
		"multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return false
	}
	return true
}

// Table is a base table with what a copy needs: its columns, the key it is
// chunked by and the server's size estimates.
type Table struct {
	DB   string `json:"db"`
	Name string `json:"name"`
	// Engine is the storage engine, e.g. "InnoDB".
	Engine    string `json:"engine"`
	Collation string `json:"collation,omitempty"`
	Columns   []Column
	// Key is the chunking key: the primary key, else a unique key whose
	// columns are all NOT NULL and orderable; empty when there is none
	// (the table is then copied whole). KeyIndex names the index.
	Key      []string `json:"key,omitempty"`
	KeyIndex string   `json:"key_index,omitempty"`
	// NoKeyReason says why Key is empty.
	NoKeyReason string `json:"no_key_reason,omitempty"`
	// Estimates from information_schema.TABLES (InnoDB's are approximate).
	Rows         int64 `json:"rows"`
	DataLength   int64 `json:"data_length"`
	AvgRowLength int64 `json:"avg_row_length"`
	// Versioned marks MariaDB system-versioned tables (their history rows
	// cannot be copied with plain SELECT and INSERT).
	Versioned bool `json:"versioned,omitempty"`
}

// FullName is "db.name" for messages and receipts.
func (t *Table) FullName() string { return t.DB + "." + t.Name }

// Quoted is `db`.`name`.
func (t *Table) Quoted() string { return QualifiedName(t.DB, t.Name) }

// Column returns the named column.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Column{}, false
}

// KeyColumns returns the key's columns.
func (t *Table) KeyColumns() []Column {
	out := make([]Column, 0, len(t.Key))
	for _, k := range t.Key {
		c, _ := t.Column(k)
		out = append(out, c)
	}
	return out
}

// CopyColumns are the columns a copy reads and writes: all but generated ones.
func (t *Table) CopyColumns() []Column {
	out := make([]Column, 0, len(t.Columns))
	for _, c := range t.Columns {
		if !c.Generated {
			out = append(out, c)
		}
	}
	return out
}

// LoadTables reads the base tables of the given databases with their
// columns, keys and size estimates, sorted by database and name.
func LoadTables(ctx context.Context, q Querier, databases []string) ([]*Table, error) {
	if len(databases) == 0 {
		return nil, nil
	}
	in, args := inList(databases)
	byName := map[string]*Table{}
	var tables []*Table
	rows, err := q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE,''), COALESCE(TABLE_COLLATION,''),
		COALESCE(TABLE_ROWS,0), COALESCE(DATA_LENGTH,0), COALESCE(AVG_ROW_LENGTH,0), TABLE_TYPE
		FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (`+in+`) AND TABLE_TYPE IN ('BASE TABLE','SYSTEM VERSIONED')
		ORDER BY TABLE_SCHEMA, TABLE_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		t := &Table{}
		var typ string
		if err := rows.Scan(&t.DB, &t.Name, &t.Engine, &t.Collation, &t.Rows, &t.DataLength, &t.AvgRowLength, &typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.Versioned = typ == "SYSTEM VERSIONED"
		tables = append(tables, t)
		byName[t.DB+"\x00"+t.Name] = t
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}

	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE,
		COALESCE(EXTRA,''), COALESCE(CHARACTER_SET_NAME,''), COALESCE(COLLATION_NAME,'')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (`+in+`) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, args...)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	for rows.Next() {
		var db, tbl, nullable, extra string
		var c Column
		if err := rows.Scan(&db, &tbl, &c.Name, &c.DataType, &c.ColumnType, &nullable, &extra, &c.Charset, &c.Collation); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list columns: %w", err)
		}
		t := byName[db+"\x00"+tbl]
		if t == nil {
			continue // a view
		}
		c.Nullable = nullable == "YES"
		c.Generated = isGenerated(extra)
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}

	type idx struct {
		name   string
		unique bool
		cols   []string
		subs   []bool
	}
	indexes := map[*Table][]*idx{}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN (`+in+`) ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`, args...)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for rows.Next() {
		var db, tbl, name string
		var nonUnique int
		var col, sub sql.NullString
		if err := rows.Scan(&db, &tbl, &name, &nonUnique, &col, &sub); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list indexes: %w", err)
		}
		t := byName[db+"\x00"+tbl]
		if t == nil {
			continue
		}
		list := indexes[t]
		var cur *idx
		if n := len(list); n > 0 && list[n-1].name == name {
			cur = list[n-1]
		} else {
			cur = &idx{name: name, unique: nonUnique == 0}
			indexes[t] = append(list, cur)
		}
		// A functional key part (MySQL 8) has no column: unusable as a key.
		cur.cols = append(cur.cols, col.String)
		cur.subs = append(cur.subs, sub.Valid)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for _, t := range tables {
		list := indexes[t]
		// PRIMARY first, then unique keys by fewest columns, then by name.
		sort.SliceStable(list, func(i, j int) bool {
			pi, pj := list[i].name == "PRIMARY", list[j].name == "PRIMARY"
			if pi != pj {
				return pi
			}
			if len(list[i].cols) != len(list[j].cols) {
				return len(list[i].cols) < len(list[j].cols)
			}
			return list[i].name < list[j].name
		})
		reason := "it has no primary key and no unique key on NOT NULL columns"
	pick:
		for _, ix := range list {
			if !ix.unique {
				continue
			}
			for _, cn := range ix.cols {
				c, ok := t.Column(cn)
				switch {
				case !ok || cn == "":
					reason = fmt.Sprintf("key %s has an expression part", ix.name)
					continue pick
				case c.Nullable:
					reason = fmt.Sprintf("unique key %s has a nullable column (%s)", ix.name, c.Name)
					continue pick
				case !c.keyable():
					reason = fmt.Sprintf("key %s has a %s column (%s) whose printed values do not sort like the index", ix.name, c.DataType, c.Name)
					continue pick
				}
			}
			t.Key = append([]string(nil), ix.cols...)
			t.KeyIndex = ix.name
			break
		}
		if len(t.Key) == 0 {
			t.NoKeyReason = reason
		}
	}
	return tables, nil
}

// isGenerated reads COLUMNS.EXTRA: MySQL and MariaDB say "VIRTUAL
// GENERATED" or "STORED GENERATED" (old MariaDB: "VIRTUAL", "PERSISTENT");
// MySQL's "DEFAULT_GENERATED" is a default expression, not a generated column.
func isGenerated(extra string) bool {
	e := strings.ToUpper(extra)
	if strings.Contains(e, "VIRTUAL GENERATED") || strings.Contains(e, "STORED GENERATED") {
		return true
	}
	for _, w := range strings.Fields(e) {
		if w == "VIRTUAL" || w == "PERSISTENT" {
			return true
		}
	}
	return false
}

func inList(vals []string) (string, []any) {
	ph := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		ph[i] = "?"
		args[i] = v
	}
	return strings.Join(ph, ","), args
}

// ShowCreateTable returns SHOW CREATE TABLE's statement (unqualified name).
func ShowCreateTable(ctx context.Context, q Querier, db, table string) (string, error) {
	var name, create string
	if err := q.QueryRowContext(ctx, "SHOW CREATE TABLE "+QualifiedName(db, table)).Scan(&name, &create); err != nil {
		return "", fmt.Errorf("show create table %s.%s: %w", db, table, err)
	}
	return create, nil
}

// TableNames lists the names of base tables and views in db on q, mapped
// to "BASE TABLE" or "VIEW".
func TableNames(ctx context.Context, q Querier, db string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", db)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			return nil, fmt.Errorf("list tables of %s: %w", db, err)
		}
		if typ == "SYSTEM VERSIONED" {
			typ = "BASE TABLE"
		}
		out[n] = typ
	}
	return out, rows.Err()
}
