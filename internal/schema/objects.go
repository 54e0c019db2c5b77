package schema

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ObjectKind is the kind of a stored object.
type ObjectKind string

// Stored object kinds, in the order a copy creates them: routines before
// views (a view may call a function), triggers and events after the data
// (a trigger must not fire while rows are loaded; an event must not change
// them).
const (
	KindFunction  ObjectKind = "FUNCTION"
	KindProcedure ObjectKind = "PROCEDURE"
	KindView      ObjectKind = "VIEW"
	KindTrigger   ObjectKind = "TRIGGER"
	KindEvent     ObjectKind = "EVENT"
)

// Object is a view, trigger, routine or event with its definition and the
// session settings it must be created under.
type Object struct {
	Kind ObjectKind `json:"kind"`
	DB   string     `json:"db"`
	Name string     `json:"name"`
	// Create is the SHOW CREATE statement.
	Create string `json:"create"`
	// SQLMode, CharsetClient, CollationConnection and TimeZone (events)
	// are the session settings the object was created with.
	SQLMode             string `json:"sql_mode,omitempty"`
	CharsetClient       string `json:"charset_client,omitempty"`
	CollationConnection string `json:"collation_connection,omitempty"`
	TimeZone            string `json:"time_zone,omitempty"`
	// Definer is 'user'@'host' as information_schema shows it (user@host).
	Definer string `json:"definer,omitempty"`
	// Table is the trigger's table.
	Table string `json:"table,omitempty"`
	// Status is the event's ENABLED, DISABLED or SLAVESIDE_DISABLED.
	Status string `json:"status,omitempty"`
	// Order is the trigger's ACTION_ORDER (several triggers per event);
	// Timing (BEFORE, AFTER) and Event (INSERT, UPDATE, DELETE) say when
	// it fires.
	Order  int    `json:"order,omitempty"`
	Timing string `json:"timing,omitempty"`
	Event  string `json:"event,omitempty"`
}

// FullName is "db.name" for messages and receipts.
func (o *Object) FullName() string { return o.DB + "." + o.Name }

// ID is "KIND db.name", unique per database (a procedure and a function
// may share a name).
func (o *Object) ID() string { return string(o.Kind) + " " + o.FullName() }

// DropStatement drops the object if it exists.
func (o *Object) DropStatement() string {
	return "DROP " + string(o.Kind) + " IF EXISTS " + QualifiedName(o.DB, o.Name)
}

// DefinerUserHost splits Definer ("user@host") at its last @.
func (o *Object) DefinerUserHost() (user, host string, ok bool) {
	i := strings.LastIndex(o.Definer, "@")
	if i < 0 {
		return "", "", false
	}
	return o.Definer[:i], o.Definer[i+1:], true
}

// LoadObjects reads the views, triggers, routines and events of the given
// databases. Views come in dependency order; triggers in table, event and
// action order so several triggers per event are recreated in order.
func LoadObjects(ctx context.Context, q Querier, databases []string) ([]*Object, error) {
	if len(databases) == 0 {
		return nil, nil
	}
	in, args := inList(databases)
	var out []*Object

	// Routines.
	rows, err := q.QueryContext(ctx, `SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, DEFINER FROM information_schema.ROUTINES
		WHERE ROUTINE_SCHEMA IN (`+in+`) AND ROUTINE_TYPE IN ('FUNCTION','PROCEDURE') ORDER BY ROUTINE_SCHEMA, ROUTINE_TYPE, ROUTINE_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("list routines: %w", err)
	}
	var routines []*Object
	for rows.Next() {
		o := &Object{}
		var kind string
		if err := rows.Scan(&o.DB, &o.Name, &kind, &o.Definer); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list routines: %w", err)
		}
		o.Kind = ObjectKind(kind)
		routines = append(routines, o)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list routines: %w", err)
	}
	for _, o := range routines {
		m, err := showCreate(ctx, q, "SHOW CREATE "+string(o.Kind)+" "+QualifiedName(o.DB, o.Name))
		if err != nil {
			return nil, fmt.Errorf("show create %s %s: %w", strings.ToLower(string(o.Kind)), o.FullName(), err)
		}
		o.Create = m["create "+strings.ToLower(string(o.Kind))]
		if o.Create == "" {
			return nil, fmt.Errorf("show create %s %s: no definition (does the user lack privileges on it?)", strings.ToLower(string(o.Kind)), o.FullName())
		}
		o.SQLMode, o.CharsetClient, o.CollationConnection = m["sql_mode"], m["character_set_client"], m["collation_connection"]
	}
	out = append(out, routines...)

	// Views, in dependency order.
	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, DEFINER FROM information_schema.VIEWS
		WHERE TABLE_SCHEMA IN (`+in+`) ORDER BY TABLE_SCHEMA, TABLE_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	var views []*Object
	for rows.Next() {
		o := &Object{Kind: KindView}
		if err := rows.Scan(&o.DB, &o.Name, &o.Definer); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list views: %w", err)
		}
		views = append(views, o)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list views: %w", err)
	}
	for _, o := range views {
		m, err := showCreate(ctx, q, "SHOW CREATE VIEW "+QualifiedName(o.DB, o.Name))
		if err != nil {
			return nil, fmt.Errorf("show create view %s: %w", o.FullName(), err)
		}
		o.Create, o.CharsetClient, o.CollationConnection = m["create view"], m["character_set_client"], m["collation_connection"]
	}
	out = append(out, SortViews(views)...)

	// Triggers.
	rows, err = q.QueryContext(ctx, `SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER, COALESCE(ACTION_ORDER,0),
		ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN (`+in+`)
		ORDER BY TRIGGER_SCHEMA, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER, TRIGGER_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	var triggers []*Object
	for rows.Next() {
		o := &Object{Kind: KindTrigger}
		if err := rows.Scan(&o.DB, &o.Name, &o.Table, &o.Definer, &o.Order, &o.Timing, &o.Event); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list triggers: %w", err)
		}
		triggers = append(triggers, o)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	for _, o := range triggers {
		m, err := showCreate(ctx, q, "SHOW CREATE TRIGGER "+QualifiedName(o.DB, o.Name))
		if err != nil {
			return nil, fmt.Errorf("show create trigger %s: %w", o.FullName(), err)
		}
		o.Create, o.SQLMode = m["sql original statement"], m["sql_mode"]
		o.CharsetClient, o.CollationConnection = m["character_set_client"], m["collation_connection"]
	}
	out = append(out, triggers...)

	// Events.
	rows, err = q.QueryContext(ctx, `SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, STATUS FROM information_schema.EVENTS
		WHERE EVENT_SCHEMA IN (`+in+`) ORDER BY EVENT_SCHEMA, EVENT_NAME`, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	var events []*Object
	for rows.Next() {
		o := &Object{Kind: KindEvent}
		if err := rows.Scan(&o.DB, &o.Name, &o.Definer, &o.Status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list events: %w", err)
		}
		events = append(events, o)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	for _, o := range events {
		m, err := showCreate(ctx, q, "SHOW CREATE EVENT "+QualifiedName(o.DB, o.Name))
		if err != nil {
			return nil, fmt.Errorf("show create event %s: %w", o.FullName(), err)
		}
		o.Create, o.SQLMode, o.TimeZone = m["create event"], m["sql_mode"], m["time_zone"]
		o.CharsetClient, o.CollationConnection = m["character_set_client"], m["collation_connection"]
	}
	out = append(out, events...)
	return out, nil
}

// showCreate runs a SHOW CREATE statement and returns its single row keyed
// by lower-case column name (the columns differ between versions).
func showCreate(ctx context.Context, q Querier, stmt string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, stmt)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, sql.ErrNoRows
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[strings.ToLower(c)] = vals[i].String
	}
	return m, rows.Err()
}

var identRe = regexp.MustCompile("`((?:[^`]|``)+)`\\s*\\.\\s*`((?:[^`]|``)+)`")

// SortViews orders views so that each comes after the views it selects
// from (SHOW CREATE VIEW qualifies every reference as `db`.`name`). A
// cycle, impossible on a sane server, keeps the remaining views by name.
func SortViews(views []*Object) []*Object {
	byName := map[string]*Object{}
	for _, v := range views {
		byName[v.DB+"\x00"+v.Name] = v
	}
	deps := map[*Object][]*Object{}
	for _, v := range views {
		seen := map[*Object]bool{}
		for _, m := range identRe.FindAllStringSubmatch(v.Create, -1) {
			db := strings.ReplaceAll(m[1], "``", "`")
			n := strings.ReplaceAll(m[2], "``", "`")
			if d := byName[db+"\x00"+n]; d != nil && d != v && !seen[d] {
				seen[d] = true
				deps[v] = append(deps[v], d)
			}
		}
	}
	sorted := append([]*Object(nil), views...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].FullName() < sorted[j].FullName() })
	var out []*Object
	state := map[*Object]int{} // 1 visiting, 2 done
	var visit func(v *Object)
	visit = func(v *Object) {
		if state[v] != 0 {
			return
		}
		state[v] = 1
		for _, d := range deps[v] {
			visit(d)
		}
		state[v] = 2
		out = append(out, v)
	}
	for _, v := range sorted {
		visit(v)
	}
	return out
}

// CaptureEvents are the trigger slots change capture needs on every table:
// after inserts and updates (the new key), before deletes (the old one).
var CaptureEvents = [][2]string{{"AFTER", "INSERT"}, {"AFTER", "UPDATE"}, {"BEFORE", "DELETE"}}

// CaptureConflicts lists, for a server that allows one trigger per table,
// timing and event (MySQL before 5.7.2, MariaDB before 10.2.3), the
// existing triggers that leave no room for a capture trigger. On newer
// servers it returns nothing: capture triggers sit next to existing ones.
// skip names triggers to ignore (decant's own, by prefix).
func CaptureConflicts(s *Server, objects []*Object, skipPrefix string) []Decision {
	if s.MultipleTriggers() {
		return nil
	}
	var out []Decision
	for _, o := range objects {
		if o.Kind != KindTrigger || (skipPrefix != "" && strings.HasPrefix(o.Name, skipPrefix)) {
			continue
		}
		for _, ev := range CaptureEvents {
			if strings.EqualFold(o.Timing, ev[0]) && strings.EqualFold(o.Event, ev[1]) {
				out = append(out, Decision{Object: o.DB + "." + o.Table, Problem: true, Message: fmt.Sprintf(
					"%s allows one %s %s trigger per table and %s is one: changes to this table cannot be captured by a trigger (use the timestamp mode for it, or copy it again during the freeze)",
					s, ev[0], ev[1], o.Name)})
			}
		}
	}
	return out
}
