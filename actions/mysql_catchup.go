package actions

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/rowcopy"
	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

// Change capture without the binlog. mysql.capture installs, on every
// copied table of the source, triggers that record the key of each
// changed row (AFTER INSERT, AFTER UPDATE, BEFORE DELETE) in a table of
// decant's own schema, decant_capture; it runs before mysql.copy, so every
// change the copy may miss is recorded. mysql.catchup reads those keys,
// re-reads the rows from the source and replaces (or deletes) them on the
// target, then deletes the keys it applied. Keys are consumed by sequence
// number, never by "everything below a mark", so a transaction that commits
// late with an older sequence number is still caught by the next round.
// Tables named in `timestamp:` get no triggers: their rows whose column is
// newer than the last mark are copied again instead (deletes are not seen).

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.capture",
		Doc:  "install change-capture triggers on the source (keys of changed rows into decant_capture) before the copy; undo drops them",
		New: func(n ast.Node) (any, error) {
			a := &MySQLCapture{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			for k := range a.Timestamp {
				if !strings.Contains(k, ".") {
					return nil, steps.BadParam("timestamp", "%q: want db.table: column", k)
				}
			}
			return a, nil
		},
	})
	steps.Register(steps.Kind{
		Name: "mysql.catchup",
		Doc:  "apply the rows changed on the source since the copy (captured keys, or a timestamp column) to the target, in rounds",
		New: func(n ast.Node) (any, error) {
			a := &MySQLCatchup{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Rounds < 0 || a.Rounds > 100 {
				return nil, steps.BadParam("rounds", "%d: want 1 to 100", a.Rounds)
			}
			if a.Batch < 0 {
				return nil, steps.BadParam("batch", "cannot be negative")
			}
			return a, nil
		},
	})
}

// MySQLCapture installs the change-capture triggers.
type MySQLCapture struct {
	Source    string   `yaml:"source"`
	Databases []string `yaml:"databases"` // default: every user database
	// Timestamp maps "db.table" to a column updated on every change
	// (e.g. lastupdate); such tables are caught up by that column.
	Timestamp map[string]string `yaml:"timestamp"`
}

// MySQLCaptureTable is one captured table.
type MySQLCaptureTable struct {
	Table    string   `json:"table"`   // db.table
	Capture  string   `json:"capture"` // table in decant_capture
	Mode     string   `json:"mode"`    // "trigger" or "timestamp"
	Column   string   `json:"column,omitempty"`
	Mark     string   `json:"mark,omitempty"`
	Triggers []string `json:"triggers,omitempty"`
}

// MySQLCaptureReceipt records what capture created on the source.
type MySQLCaptureReceipt struct {
	Source    string              `json:"source"`
	CreatedDB bool                `json:"created_db"`
	Tables    []MySQLCaptureTable `json:"tables"`
}

func mysqlCaptureName(db, table string) string {
	h := sha1.Sum([]byte(db + "\x00" + table))
	return hex.EncodeToString(h[:6])
}

func mysqlSourceName(s string) string {
	if s == "" {
		return "source"
	}
	return s
}

type mysqlCapturePlan struct {
	src       *sql.DB
	srv       *schema.Server
	tables    []*schema.Table
	conflicts []schema.Decision
}

func (a *MySQLCapture) read(ctx context.Context, env *steps.Env) (*mysqlCapturePlan, error) {
	cp := &MySQLCopy{Source: a.Source, Databases: a.Databases}
	sName, _ := cp.endpoints()
	src, err := env.MySQL(ctx, sName)
	if err != nil {
		return nil, err
	}
	p := &mysqlCapturePlan{src: src}
	if p.srv, err = schema.Probe(ctx, src); err != nil {
		return nil, err
	}
	dbs := a.Databases
	if len(dbs) == 0 {
		if dbs, err = schema.Databases(ctx, src, mysqlCaptureDB); err != nil {
			return nil, err
		}
	}
	if p.tables, err = schema.LoadTables(ctx, src, dbs); err != nil {
		return nil, err
	}
	objs, err := schema.LoadObjects(ctx, src, dbs)
	if err != nil {
		return nil, err
	}
	for _, d := range schema.CaptureConflicts(p.srv, objs, mysqlCaptureTrigger) {
		if _, ts := a.Timestamp[d.Object]; !ts {
			p.conflicts = append(p.conflicts, d)
		}
	}
	for k, col := range a.Timestamp {
		found := false
		for _, t := range p.tables {
			if t.FullName() == k {
				found = true
				if _, ok := t.Column(col); !ok {
					return nil, fmt.Errorf("timestamp: %s has no column %q", k, col)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("timestamp: no table %s in the captured databases", k)
		}
	}
	return p, nil
}

// Plan lists the triggers to install and refuses when an old server
// leaves no room for them.
func (a *MySQLCapture) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	p, err := a.read(ctx, env)
	if err != nil {
		return nil, err
	}
	if len(p.conflicts) > 0 {
		var msgs []string
		for _, d := range p.conflicts {
			msgs = append(msgs, d.String())
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	var trig, ts []string
	for _, t := range p.tables {
		if col, ok := a.Timestamp[t.FullName()]; ok {
			ts = append(ts, t.FullName()+" by "+col)
		} else {
			trig = append(trig, t.FullName())
		}
	}
	plan := &steps.Plan{
		Summary: fmt.Sprintf("capture changes on %d table(s) of %s (%s): %d by triggers, %d by timestamp column",
			len(p.tables), mysqlSourceName(a.Source), p.srv, len(trig), len(ts)),
		Changes: []steps.Change{{What: "schema " + mysqlCaptureDB + " on the source", After: "one key table per captured table (undo drops it)"}},
		Commands: []string{"CREATE TRIGGER `" + mysqlCaptureTrigger + "<id>_i` AFTER INSERT ON <table> FOR EACH ROW INSERT INTO " + mysqlCaptureDB + ".`c_<id>` (<key>) VALUES (NEW.<key>)",
			"... AFTER UPDATE (old key when it changed, and new key), BEFORE DELETE (old key)"},
	}
	if len(trig) > 0 {
		plan.Changes = append(plan.Changes, steps.Change{What: "3 triggers on each of " + mysqlList(trig, 8), After: "installed; they add one small insert to every write"})
	}
	if len(ts) > 0 {
		plan.Changes = append(plan.Changes, steps.Change{What: "caught up by timestamp: " + strings.Join(ts, ", "), After: "no triggers; deletes on these tables are not caught up"})
	}
	return plan, nil
}

func mysqlCaptureColumnDef(c schema.Column) string {
	d := schema.QuoteIdent(c.Name) + " " + c.ColumnType
	if c.Charset != "" && c.Collation != "" && !c.Binary() {
		d += " CHARACTER SET " + c.Charset + " COLLATE " + c.Collation
	}
	return d
}

// Do creates decant_capture, the key tables and the triggers, journaling
// each trigger before creating it.
func (a *MySQLCapture) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	p, err := a.read(ctx, env)
	if err != nil {
		return nil, err
	}
	if len(p.conflicts) > 0 {
		return nil, errors.New(p.conflicts[0].String())
	}
	rc := &MySQLCaptureReceipt{}
	if !r.Resume(rc) {
		rc = &MySQLCaptureReceipt{Source: mysqlSourceName(a.Source)}
	}
	conn, err := p.src.Conn(ctx)
	if err != nil {
		return rc, err
	}
	defer func() {
		_ = conn.Raw(func(any) error { return mysqlDriverBadConn })
		conn.Close()
	}()
	// A trigger needs an exclusive metadata lock on its table: wait a
	// little for running transactions, never stall the site behind us.
	for _, q := range []string{"SET SESSION lock_wait_timeout = 10", "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'", "SET SESSION time_zone = '+00:00'"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return rc, err
		}
	}
	exists, err := schema.DatabaseExists(ctx, p.src, mysqlCaptureDB)
	if err != nil {
		return rc, err
	}
	if !exists {
		rc.CreatedDB = true
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		if _, err := conn.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+schema.QuoteIdent(mysqlCaptureDB)+" CHARACTER SET utf8mb4"); err != nil {
			return rc, fmt.Errorf("create %s on the source: %w", mysqlCaptureDB, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+schema.QualifiedName(mysqlCaptureDB, "tables")+
		" (capture varchar(64) NOT NULL PRIMARY KEY, db varchar(64) NOT NULL, tbl varchar(64) NOT NULL, mode varchar(16) NOT NULL,"+
		" ts_column varchar(64) NULL, mark varchar(64) NULL, created timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"); err != nil {
		return rc, fmt.Errorf("create %s.tables on the source: %w", mysqlCaptureDB, err)
	}
	done := map[string]bool{}
	for _, ct := range rc.Tables {
		done[ct.Table] = len(ct.Triggers) == 3 || ct.Mode == "timestamp"
	}
	for _, t := range p.tables {
		name := t.FullName()
		if done[name] {
			continue
		}
		id := mysqlCaptureName(t.DB, t.Name)
		ct := MySQLCaptureTable{Table: name, Capture: "c_" + id, Mode: "trigger"}
		if col, ok := a.Timestamp[name]; ok {
			ct.Mode, ct.Column = "timestamp", col
			var mark sql.NullString
			if err := conn.QueryRowContext(ctx, "SELECT MAX("+schema.QuoteIdent(col)+") FROM "+t.Quoted()).Scan(&mark); err != nil {
				return rc, fmt.Errorf("read the mark of %s: %w", name, err)
			}
			ct.Mark = mark.String
			if !mark.Valid {
				ct.Mark = "0000-00-00 00:00:00"
			}
		}
		rc.Tables = mysqlPutCapture(rc.Tables, ct)
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		if _, err := conn.ExecContext(ctx, "REPLACE INTO "+schema.QualifiedName(mysqlCaptureDB, "tables")+
			" (capture, db, tbl, mode, ts_column, mark) VALUES (?, ?, ?, ?, ?, ?)", ct.Capture, t.DB, t.Name, ct.Mode,
			sql.NullString{String: ct.Column, Valid: ct.Column != ""}, sql.NullString{String: ct.Mark, Valid: ct.Mode == "timestamp"}); err != nil {
			return rc, fmt.Errorf("register %s: %w", name, err)
		}
		if ct.Mode == "timestamp" {
			r.Logf("%s: caught up by %s newer than %s", name, ct.Column, ct.Mark)
			continue
		}
		cols := []string{"`seq` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY"}
		for _, c := range t.KeyColumns() {
			cols = append(cols, mysqlCaptureColumnDef(c))
		}
		if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+schema.QualifiedName(mysqlCaptureDB, ct.Capture)+
			" ("+strings.Join(cols, ", ")+") ENGINE=InnoDB"); err != nil {
			return rc, fmt.Errorf("create the key table for %s: %w", name, err)
		}
		for _, tr := range mysqlCaptureTriggers(t, ct.Capture, id) {
			ct.Triggers = append(ct.Triggers, tr.name)
			rc.Tables = mysqlPutCapture(rc.Tables, ct)
			if err := r.Checkpoint(rc); err != nil {
				return rc, err
			}
			if _, err := conn.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+schema.QualifiedName(t.DB, tr.name)); err != nil {
				return rc, fmt.Errorf("replace trigger %s on %s: %w", tr.name, name, err)
			}
			if _, err := conn.ExecContext(ctx, tr.create); err != nil {
				return rc, fmt.Errorf("create trigger %s on %s: %w", tr.name, name, err)
			}
		}
		if len(t.Key) == 0 {
			r.Logf("%s has no key: any change marks it for a whole copy at catch-up", name)
		}
	}
	r.Logf("capturing changes on %d table(s) into %s", len(rc.Tables), mysqlCaptureDB)
	return rc, nil
}

func mysqlPutCapture(list []MySQLCaptureTable, ct MySQLCaptureTable) []MySQLCaptureTable {
	for i := range list {
		if list[i].Table == ct.Table {
			list[i] = ct
			return list
		}
	}
	return append(list, ct)
}

type mysqlTrigger struct{ name, create string }

// mysqlDriverBadConn marks a connection whose session was changed so the
// pool closes it instead of handing it to someone else.
var mysqlDriverBadConn = driver.ErrBadConn

// mysqlNoCheckpoint is a reporter for undo, where there is nothing to
// journal but the outcome.
type mysqlNoCheckpoint struct{ steps.Reporter }

func (mysqlNoCheckpoint) Checkpoint(any) error { return nil }

// mysqlCaptureTriggers builds the three capture triggers of t.
func mysqlCaptureTriggers(t *schema.Table, capture, id string) []mysqlTrigger {
	target := schema.QualifiedName(mysqlCaptureDB, capture)
	key := t.KeyColumns()
	vals := func(row string) string {
		parts := make([]string, len(key))
		for i, c := range key {
			parts[i] = row + "." + schema.QuoteIdent(c.Name)
		}
		return strings.Join(parts, ", ")
	}
	names := make([]string, len(key))
	for i, c := range key {
		names[i] = schema.QuoteIdent(c.Name)
	}
	ins := func(row string) string {
		if len(key) == 0 {
			return "INSERT INTO " + target + " () VALUES ()"
		}
		return "INSERT INTO " + target + " (" + strings.Join(names, ", ") + ") VALUES (" + vals(row) + ")"
	}
	head := func(suffix, when string) (string, string) {
		n := mysqlCaptureTrigger + id + suffix
		return n, "CREATE DEFINER=CURRENT_USER TRIGGER " + schema.QualifiedName(t.DB, n) + " " + when + " ON " + t.Quoted() + " FOR EACH ROW "
	}
	var out []mysqlTrigger
	n, h := head("_i", "AFTER INSERT")
	out = append(out, mysqlTrigger{n, h + ins("NEW")})
	n, h = head("_u", "AFTER UPDATE")
	upd := ins("NEW")
	if len(key) > 0 {
		same := make([]string, len(key))
		for i, c := range key {
			same[i] = "OLD." + schema.QuoteIdent(c.Name) + " <=> NEW." + schema.QuoteIdent(c.Name)
		}
		// A changed key: the old one is gone from the source too.
		upd = "BEGIN IF NOT (" + strings.Join(same, " AND ") + ") THEN " + ins("OLD") + "; END IF; " + ins("NEW") + "; END"
	}
	out = append(out, mysqlTrigger{n, h + upd})
	n, h = head("_d", "BEFORE DELETE")
	out = append(out, mysqlTrigger{n, h + ins("OLD")})
	return out
}

// Undo drops the triggers first (a trigger writing to a dropped table
// would break the site's writes), then decant's schema.
func (a *MySQLCapture) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLCaptureReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read mysql.capture receipt: %w", err)
	}
	src, err := env.MySQL(ctx, mysqlSourceName(rc.Source))
	if err != nil {
		return err
	}
	n := 0
	for _, ct := range rc.Tables {
		db, _, _ := strings.Cut(ct.Table, ".")
		for _, tr := range ct.Triggers {
			if _, err := src.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+schema.QualifiedName(db, tr)); err != nil {
				return fmt.Errorf("drop trigger %s.%s: %w", db, tr, err)
			}
			n++
		}
	}
	r.Logf("dropped %d capture trigger(s)", n)
	if rc.CreatedDB {
		if _, err := src.ExecContext(ctx, "DROP DATABASE IF EXISTS "+schema.QuoteIdent(mysqlCaptureDB)); err != nil {
			return fmt.Errorf("drop %s: %w", mysqlCaptureDB, err)
		}
		r.Logf("dropped %s", mysqlCaptureDB)
		return nil
	}
	for _, ct := range rc.Tables {
		if _, err := src.ExecContext(ctx, "DROP TABLE IF EXISTS "+schema.QualifiedName(mysqlCaptureDB, ct.Capture)); err != nil {
			return fmt.Errorf("drop %s.%s: %w", mysqlCaptureDB, ct.Capture, err)
		}
		if _, err := src.ExecContext(ctx, "DELETE FROM "+schema.QualifiedName(mysqlCaptureDB, "tables")+" WHERE capture = ?", ct.Capture); err != nil {
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1146 {
				return fmt.Errorf("unregister %s: %w", ct.Table, err)
			}
		}
	}
	return nil
}

// MySQLCatchup applies captured changes to the target.
type MySQLCatchup struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Rounds is how many passes to make (default 1); each applies what was
	// captured when it started. MaxBacklog, when set, stops early once a
	// round applied at most this many keys.
	Rounds     int   `yaml:"rounds"`
	MaxBacklog int64 `yaml:"max_backlog"`
	// Batch is the number of keys per source read and target transaction
	// (default 1000); Parallel the tables caught up at once.
	Batch    int `yaml:"batch"`
	Parallel int `yaml:"parallel"`
	// TimestampSlackSeconds re-reads rows this much older than the mark
	// (default 60), for transactions that commit late.
	TimestampSlackSeconds int `yaml:"timestamp_slack_seconds"`
}

// MySQLCatchupReceipt says what the catch-up applied; DroppedTriggers are
// target triggers set aside while their table was caught up (they must
// not fire for replayed rows) and not yet recreated.
type MySQLCatchupReceipt struct {
	Rounds          int               `json:"rounds"`
	Keys            int64             `json:"keys"`
	Rows            int64             `json:"rows"`
	Wholes          int               `json:"whole_tables,omitempty"`
	Marks           map[string]string `json:"marks,omitempty"`
	DroppedTriggers []*schema.Object  `json:"dropped_triggers,omitempty"`
	Seconds         float64           `json:"seconds"`
	LastRound       float64           `json:"last_round_seconds"`
}

// mysqlCaptured is one registered table, as decant_capture.tables says.
type mysqlCaptured struct {
	t       *schema.Table
	capture string
	mode    string
	column  string
	mark    string
}

func (a *MySQLCatchup) endpoints() (string, string) {
	return (&MySQLCopy{Source: a.Source, Target: a.Target}).endpoints()
}

func (a *MySQLCatchup) read(ctx context.Context, env *steps.Env) (*sql.DB, *sql.DB, *schema.Server, []*mysqlCaptured, error) {
	sName, tName := a.endpoints()
	src, err := env.MySQL(ctx, sName)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	dst, err := env.MySQL(ctx, tName)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	dstSrv, err := schema.Probe(ctx, dst)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rows, err := src.QueryContext(ctx, "SELECT capture, db, tbl, mode, COALESCE(ts_column,''), COALESCE(mark,'') FROM "+
		schema.QualifiedName(mysqlCaptureDB, "tables")+" ORDER BY db, tbl")
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1146 || me.Number == 1049) {
			return nil, nil, nil, nil, errors.New("nothing is captured on the source: run mysql.capture before mysql.copy")
		}
		return nil, nil, nil, nil, err
	}
	defer rows.Close()
	var caps []*mysqlCaptured
	dbs := map[string]bool{}
	type reg struct{ db, tbl string }
	regs := map[*mysqlCaptured]reg{}
	for rows.Next() {
		c := &mysqlCaptured{}
		var db, tbl string
		if err := rows.Scan(&c.capture, &db, &tbl, &c.mode, &c.column, &c.mark); err != nil {
			return nil, nil, nil, nil, err
		}
		caps = append(caps, c)
		regs[c] = reg{db, tbl}
		dbs[db] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, nil, err
	}
	var list []string
	for db := range dbs {
		list = append(list, db)
	}
	sort.Strings(list)
	tables, err := schema.LoadTables(ctx, src, list)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var out []*mysqlCaptured
	for _, c := range caps {
		rg := regs[c]
		for _, t := range tables {
			if t.DB == rg.db && t.Name == rg.tbl {
				c.t = t
			}
		}
		if c.t == nil {
			continue // dropped since: nothing to catch up
		}
		out = append(out, c)
	}
	return src, dst, dstSrv, out, nil
}

// Plan counts the captured keys waiting.
func (a *MySQLCatchup) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	src, _, _, caps, err := a.read(ctx, env)
	if err != nil {
		return nil, err
	}
	var backlog int64
	ts := 0
	for _, c := range caps {
		if c.mode == "timestamp" {
			ts++
			continue
		}
		var n int64
		if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+schema.QualifiedName(mysqlCaptureDB, c.capture)).Scan(&n); err != nil {
			return nil, err
		}
		backlog += n
	}
	rounds := max(a.Rounds, 1)
	return &steps.Plan{
		Summary: fmt.Sprintf("apply %d captured change(s) on %d table(s) and re-read %d table(s) by timestamp, %d round(s)", backlog, len(caps)-ts, ts, rounds),
		Changes: []steps.Change{{What: "rows on the target", After: "replaced by the source's current rows; rows deleted on the source deleted"},
			{What: "target triggers of caught-up tables", After: "dropped while rows are replayed, then recreated"}},
		Commands: []string{"SELECT seq, <key> FROM decant_capture.<table> ORDER BY seq LIMIT <batch>",
			"target: BEGIN; DELETE FROM <table> WHERE <key> IN (...); LOAD DATA ... REPLACE (rows re-read from the source); COMMIT",
			"source: DELETE FROM decant_capture.<table> WHERE seq IN (<applied>)"},
		Total: backlog,
		Unit:  "rows",
	}, nil
}

// Do runs the rounds.
func (a *MySQLCatchup) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	src, dst, dstSrv, caps, err := a.read(ctx, env)
	if err != nil {
		return nil, err
	}
	cu := &mysqlCatchup{a: a, env: env, src: src, dst: dst, dstSrv: dstSrv, r: r, rc: &MySQLCatchupReceipt{}}
	if r.Resume(cu.rc) && len(cu.rc.DroppedTriggers) > 0 {
		r.Logf("recreating %d target trigger(s) an interrupted catch-up set aside", len(cu.rc.DroppedTriggers))
		if err := cu.restoreAllTriggers(ctx); err != nil {
			return cu.rc, err
		}
	}
	if cu.rc.Marks == nil {
		cu.rc.Marks = map[string]string{}
	}
	// Timestamp marks carry over from earlier catch-up steps of this run.
	for _, h := range env.Records() {
		if h.Kind != "mysql.catchup" || h.Undone {
			continue
		}
		var prev MySQLCatchupReceipt
		if json.Unmarshal(h.Receipt, &prev) == nil {
			for k, v := range prev.Marks {
				if _, ok := cu.rc.Marks[k]; !ok || v > cu.rc.Marks[k] {
					cu.rc.Marks[k] = v
				}
			}
		}
	}
	start := time.Now()
	rounds := max(a.Rounds, 1)
	for round := 1; round <= rounds; round++ {
		t0 := time.Now()
		keys, rows, err := cu.round(ctx, caps)
		cu.rc.Rounds++
		cu.rc.Keys += keys
		cu.rc.Rows += rows
		cu.rc.LastRound = time.Since(t0).Seconds()
		cu.rc.Seconds = time.Since(start).Seconds()
		if err != nil {
			return cu.rc, err
		}
		r.Logf("round %d: %d changed key(s), %d row(s) copied in %.2fs", round, keys, rows, cu.rc.LastRound)
		if err := r.Checkpoint(cu.rc); err != nil {
			return cu.rc, err
		}
		if a.MaxBacklog > 0 && keys <= a.MaxBacklog {
			break
		}
	}
	return cu.rc, nil
}

type mysqlCatchup struct {
	a        *MySQLCatchup
	env      *steps.Env
	src, dst *sql.DB
	dstSrv   *schema.Server
	r        steps.Reporter
	mu       sync.Mutex
	rc       *MySQLCatchupReceipt
	readOnly bool // the source refused to forget applied keys
}

func (cu *mysqlCatchup) checkpoint() error {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	return cu.r.Checkpoint(cu.rc)
}

// round catches up every captured table once, Parallel tables at a time.
func (cu *mysqlCatchup) round(ctx context.Context, caps []*mysqlCaptured) (keys, rows int64, err error) {
	par := cu.a.Parallel
	if par <= 0 {
		par = max(1, (&MySQLCopy{}).parallel(cu.env))
	}
	work := make(chan *mysqlCaptured)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := 0; i < par; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p *rowcopy.Pair
			defer func() {
				if p != nil {
					p.Close()
				}
			}()
			for c := range work {
				if p == nil {
					var err error
					if p, err = rowcopy.OpenPair(ctx, cu.src, cu.dst, cu.dstSrv, rowcopy.PairOptions{}); err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						cancel()
						return
					}
				}
				k, n, err := cu.table(ctx, p, c)
				mu.Lock()
				keys += k
				rows += n
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("catch up %s: %w", c.t.FullName(), err)
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range caps {
		select {
		case work <- c:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return keys, rows, firstErr
}

// table applies one table's captured changes: batches of keys re-read from
// the source and replaced on the target, the applied keys then removed.
func (cu *mysqlCatchup) table(ctx context.Context, p *rowcopy.Pair, c *mysqlCaptured) (int64, int64, error) {
	if c.mode == "timestamp" {
		return cu.timestamp(ctx, p, c)
	}
	capT := schema.QualifiedName(mysqlCaptureDB, c.capture)
	var maxSeq sql.NullInt64
	if err := cu.src.QueryRowContext(ctx, "SELECT MAX(seq) FROM "+capT).Scan(&maxSeq); err != nil {
		return 0, 0, err
	}
	if !maxSeq.Valid {
		return 0, 0, nil
	}
	key := schema.TableKey(c.t)
	var triggers []*schema.Object
	restored := false
	defer func() {
		if !restored && len(triggers) > 0 {
			_ = cu.restoreTriggers(context.Background(), triggers)
		}
	}()
	var err error
	if triggers, err = cu.setAsideTriggers(ctx, c.t); err != nil {
		return 0, 0, err
	}
	batch := cu.a.Batch
	if batch <= 0 {
		batch = 1000
	}
	cols := "seq"
	if len(key.Cols) > 0 {
		cols += "," + key.ColumnList()
	}
	var keys, rows int64
	if len(key.Cols) == 0 {
		// No key: any change means a whole copy. Collect the changes seen
		// now, copy the table (newer than all of them), then forget them.
		var all []int64
		var after int64
		for {
			seqs, _, err := mysqlReadCaptured(ctx, cu.src, capT, cols, 0, after, maxSeq.Int64, 10000)
			if err != nil {
				return 0, 0, err
			}
			if len(seqs) == 0 {
				break
			}
			all = append(all, seqs...)
			after = seqs[len(seqs)-1]
		}
		if len(all) == 0 {
			return 0, 0, nil
		}
		res, err := p.Copy(ctx, c.t, rowcopy.Selection{Where: "1=1", Delete: "1=1"})
		if err != nil {
			return 0, 0, err
		}
		for i := 0; i < len(all); i += 10000 {
			if err := cu.forget(ctx, capT, all[i:min(i+10000, len(all))]); err != nil {
				return 0, res.Rows, err
			}
		}
		cu.mu.Lock()
		cu.rc.Wholes++
		cu.mu.Unlock()
		keys, rows = int64(len(all)), res.Rows
	}
	var after int64
	for len(key.Cols) > 0 {
		seqs, tuples, err := mysqlReadCaptured(ctx, cu.src, capT, cols, len(key.Cols), after, maxSeq.Int64, batch)
		if err != nil {
			return keys, rows, err
		}
		if len(seqs) == 0 {
			break
		}
		after = seqs[len(seqs)-1]
		w, args := key.In(tuples)
		res, err := p.Copy(ctx, c.t, rowcopy.Selection{Where: w, Args: args, Delete: w, DeleteArgs: args})
		if err != nil {
			return keys, rows, err
		}
		if err := cu.forget(ctx, capT, seqs); err != nil {
			return keys, rows, err
		}
		keys += int64(len(tuples))
		rows += res.Rows
	}
	restored = true
	if err := cu.restoreTriggers(ctx, triggers); err != nil {
		return keys, rows, err
	}
	return keys, rows, nil
}

// mysqlReadCaptured reads up to batch captured keys (distinct) with
// sequence numbers in (after, maxSeq]. Rows of transactions not committed
// yet are invisible here and stay for the next round.
func mysqlReadCaptured(ctx context.Context, src *sql.DB, capT, cols string, nkey int, after, maxSeq int64, batch int) ([]int64, []schema.Tuple, error) {
	rows, err := src.QueryContext(ctx, "SELECT "+cols+" FROM "+capT+" WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", after, maxSeq, batch)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var seqs []int64
	var tuples []schema.Tuple
	seen := map[string]bool{}
	vals := make([]sql.RawBytes, nkey)
	var seq int64
	ptrs := []any{&seq}
	for i := range vals {
		ptrs = append(ptrs, &vals[i])
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		seqs = append(seqs, seq)
		t := make(schema.Tuple, nkey)
		for i, v := range vals {
			t[i] = string(v)
		}
		if k := strings.Join(t, "\x00"); !seen[k] {
			seen[k] = true
			tuples = append(tuples, t)
		}
	}
	return seqs, tuples, rows.Err()
}

// forget removes applied keys from the source. A source frozen with
// super_read_only refuses even decant's own deletes: the keys then stay
// and a later catch-up applies them again, which is harmless (this run
// moves past them by sequence number).
func (cu *mysqlCatchup) forget(ctx context.Context, capT string, seqs []int64) error {
	cu.mu.Lock()
	ro := cu.readOnly
	cu.mu.Unlock()
	if ro {
		return nil
	}
	err := mysqlForgetCaptured(ctx, cu.src, capT, seqs)
	var me *mysql.MySQLError
	if err != nil && errors.As(err, &me) && me.Number == 1290 {
		cu.mu.Lock()
		first := !cu.readOnly
		cu.readOnly = true
		cu.mu.Unlock()
		if first {
			cu.r.Logf("the source refuses writes even from decant (%v): applied keys stay in %s and a later catch-up applies them again (harmless)", me, mysqlCaptureDB)
		}
		return nil
	}
	return err
}

// mysqlForgetCaptured deletes applied keys one by one, by sequence
// number: a list or range would let the server scan up to the next row,
// which may be an uncommitted capture of the site's and block on it (or,
// as a range, delete it unseen).
func mysqlForgetCaptured(ctx context.Context, src *sql.DB, capT string, seqs []int64) error {
	tx, err := src.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("forget applied keys on the source: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, "DELETE FROM "+capT+" WHERE seq = ?")
	if err != nil {
		return fmt.Errorf("forget applied keys on the source: %w", err)
	}
	defer stmt.Close()
	for _, s := range seqs {
		if _, err := stmt.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("forget applied keys on the source: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("forget applied keys on the source: %w", err)
	}
	return nil
}

// timestamp copies again the rows whose column reached the mark (minus a
// slack for late commits) and moves the mark.
func (cu *mysqlCatchup) timestamp(ctx context.Context, p *rowcopy.Pair, c *mysqlCaptured) (int64, int64, error) {
	name := c.t.FullName()
	cu.mu.Lock()
	mark, ok := cu.rc.Marks[name]
	cu.mu.Unlock()
	if !ok {
		mark = c.mark
	}
	col := schema.QuoteIdent(c.column)
	var next sql.NullString
	if err := cu.src.QueryRowContext(ctx, "SELECT MAX("+col+") FROM "+c.t.Quoted()).Scan(&next); err != nil {
		return 0, 0, err
	}
	slack := cu.a.TimestampSlackSeconds
	if slack <= 0 {
		slack = 60
	}
	triggers, err := cu.setAsideTriggers(ctx, c.t)
	if err != nil {
		return 0, 0, err
	}
	where := col + " >= ? - INTERVAL " + fmt.Sprint(slack) + " SECOND"
	if tc, ok := c.t.Column(c.column); ok && tc.Integer() {
		// A Unix time in an integer column.
		where = col + " >= CAST(? AS SIGNED) - " + fmt.Sprint(slack)
	}
	res, err := p.Copy(ctx, c.t, rowcopy.Selection{Where: where, Args: []any{mark}})
	if rerr := cu.restoreTriggers(ctx, triggers); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return 0, res.Rows, err
	}
	if next.Valid {
		cu.mu.Lock()
		cu.rc.Marks[name] = next.String
		cu.mu.Unlock()
	}
	return 0, res.Rows, nil
}

// setAsideTriggers drops the target's triggers on t, journaling their
// definitions first: replayed rows must not fire them (their effects are
// replayed too).
func (cu *mysqlCatchup) setAsideTriggers(ctx context.Context, t *schema.Table) ([]*schema.Object, error) {
	var n int
	if err := cu.dst.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?",
		t.DB, t.Name).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	objs, err := schema.LoadObjects(ctx, cu.dst, []string{t.DB})
	if err != nil {
		return nil, err
	}
	var mine []*schema.Object
	for _, o := range objs {
		if o.Kind == schema.KindTrigger && o.Table == t.Name {
			mine = append(mine, o)
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	cu.mu.Lock()
	cu.rc.DroppedTriggers = append(cu.rc.DroppedTriggers, mine...)
	cu.mu.Unlock()
	if err := cu.checkpoint(); err != nil {
		return nil, err
	}
	for _, o := range mine {
		if _, err := cu.dst.ExecContext(ctx, o.DropStatement()); err != nil {
			return mine, fmt.Errorf("set aside trigger %s on the target: %w", o.FullName(), err)
		}
	}
	return mine, nil
}

// restoreAllTriggers recreates every journaled set-aside trigger (after
// an interrupted catch-up).
func (cu *mysqlCatchup) restoreAllTriggers(ctx context.Context) error {
	cu.mu.Lock()
	list := append([]*schema.Object(nil), cu.rc.DroppedTriggers...)
	cu.mu.Unlock()
	return cu.restoreTriggers(ctx, list)
}

// restoreTriggers recreates the given set-aside triggers that are missing
// on the target, in their original order, and forgets them.
func (cu *mysqlCatchup) restoreTriggers(ctx context.Context, list []*schema.Object) error {
	if len(list) == 0 {
		return nil
	}
	conn, err := cu.dst.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = conn.Raw(func(any) error { return mysqlDriverBadConn })
		conn.Close()
	}()
	for _, o := range list {
		exists, err := mysqlObjectExists(ctx, cu.dst, o)
		if err != nil {
			return err
		}
		if !exists {
			for _, q := range []string{"USE " + schema.QuoteIdent(o.DB), "SET SESSION sql_mode = " + schema.QuoteString(o.SQLMode)} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("recreate trigger %s: %w", o.FullName(), err)
				}
			}
			if _, err := conn.ExecContext(ctx, o.Create); err != nil {
				return fmt.Errorf("recreate trigger %s on the target: %w", o.FullName(), err)
			}
		}
	}
	cu.mu.Lock()
	var keep []*schema.Object
	for _, d := range cu.rc.DroppedTriggers {
		restored := false
		for _, o := range list {
			restored = restored || (o.DB == d.DB && o.Name == d.Name)
		}
		if !restored {
			keep = append(keep, d)
		}
	}
	cu.rc.DroppedTriggers = keep
	cu.mu.Unlock()
	return cu.checkpoint()
}

// Undo cannot un-apply rows (the target now has the source's rows, which
// is what the copy wants); it recreates any target trigger an interrupted
// catch-up left set aside.
func (a *MySQLCatchup) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLCatchupReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read mysql.catchup receipt: %w", err)
	}
	if len(rc.DroppedTriggers) > 0 {
		_, tName := a.endpoints()
		dst, err := env.MySQL(ctx, tName)
		if err != nil {
			return err
		}
		cu := &mysqlCatchup{a: a, env: env, dst: dst, r: mysqlNoCheckpoint{r}, rc: &rc}
		if err := cu.restoreAllTriggers(ctx); err != nil {
			return err
		}
		r.Logf("recreated the target triggers the catch-up had set aside")
	}
	r.Logf("the rows a catch-up applied stay (undo mysql.copy removes the copied tables)")
	return nil
}
