package actions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/rowcopy"
	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.copy",
		Doc:  "copy databases (schema, rows, views, routines, triggers, events) to the target, chunked and resumable; undo drops what it created",
		New: func(n ast.Node) (any, error) {
			a := &MySQLCopy{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			return a, a.validate()
		},
	})
}

// MySQLCopy copies databases from one MySQL/MariaDB endpoint to another:
// the schema with the target's syntax, then the rows natively (key-range
// chunks, several in flight, LOAD DATA or multi-row REPLACE on the target),
// then triggers and events. It resumes at the first unfinished chunk.
type MySQLCopy struct {
	Source string `yaml:"source"` // endpoint name, default "source"
	Target string `yaml:"target"` // endpoint name, default "target"
	// Databases to copy; default every user database on the source.
	Databases []string `yaml:"databases"`
	// Exclude lists tables ("db.table") whose rows are not copied (their
	// definition still is), e.g. a sessions or cache table.
	Exclude []string `yaml:"exclude"`
	// Mode is "native" (default) or "dump" (mysqldump | ssh | mysql).
	Mode string `yaml:"mode"`
	// Parallel is the number of chunks in flight (default
	// settings.parallel, else the number of cores).
	Parallel int `yaml:"parallel"`
	// ChunkRows fixes the rows per chunk; else chunks hold about ChunkMiB
	// MiB of table data (default 16).
	ChunkRows int64 `yaml:"chunk_rows"`
	ChunkMiB  int64 `yaml:"chunk_mib"`
	// Loader is "auto" (default: LOAD DATA when the target allows
	// local_infile), "load-data" or "insert".
	Loader string `yaml:"loader"`
	// MaxRateMiB caps the copy at this many MiB/s (0: no cap), to spare a
	// live source.
	MaxRateMiB float64 `yaml:"max_rate_mib"`
	// Existing says what to do with a table that is already on the target
	// and was not created by this step: "fail" (default) or "keep" (copy
	// the rows into it; undo leaves it).
	Existing string `yaml:"existing"`
	// Events are created "disabled" (default: they must not change the
	// target before the cut-over) or "as-is".
	Events string `yaml:"events"`
	// BulkMiB: on a MariaDB 10.6+ target, a table this step creates and
	// of at most this many MiB is loaded whole in one transaction, which
	// takes InnoDB's bulk insert path: faster for one table on an idle
	// target with cores to spare, but it costs more CPU in all, so it is
	// off unless set; such a table then resumes as a whole.
	BulkMiB *int64 `yaml:"bulk_mib"`
	// DeferIndexes (default true) creates the tables without their plain
	// secondary indexes and adds them once the table's rows are in: an
	// index built by sorting costs the target far less than one kept up
	// row by row. Tables in foreign keys keep their indexes.
	DeferIndexes *bool `yaml:"defer_indexes"`
}

func (a *MySQLCopy) bulkLimit(dst *schema.Server) int64 {
	if dst.Flavor != schema.MariaDB || !dst.AtLeast(10, 6, 0) || a.BulkMiB == nil {
		return 0
	}
	return *a.BulkMiB << 20
}

func (a *MySQLCopy) deferIndexes() bool { return a.DeferIndexes == nil || *a.DeferIndexes }

func (a *MySQLCopy) validate() error {
	switch a.Mode {
	case "", "native", "dump":
	default:
		return steps.BadParam("mode", "%q: want native or dump", a.Mode)
	}
	switch a.Loader {
	case "", "auto", string(rowcopy.LoadData), string(rowcopy.Insert):
	default:
		return steps.BadParam("loader", "%q: want auto, load-data or insert", a.Loader)
	}
	switch a.Existing {
	case "", "fail", "keep":
	default:
		return steps.BadParam("existing", "%q: want fail or keep", a.Existing)
	}
	switch a.Events {
	case "", "disabled", "as-is":
	default:
		return steps.BadParam("events", "%q: want disabled or as-is", a.Events)
	}
	if a.Parallel < 0 || a.Parallel > 64 {
		return steps.BadParam("parallel", "%d: want 1 to 64", a.Parallel)
	}
	if a.ChunkRows < 0 || a.ChunkMiB < 0 || a.MaxRateMiB < 0 || (a.BulkMiB != nil && *a.BulkMiB < 0) {
		return steps.BadParam("chunk_rows", "sizes and rates cannot be negative")
	}
	for _, e := range a.Exclude {
		if !strings.Contains(e, ".") {
			return steps.BadParam("exclude", "%q: want db.table", e)
		}
	}
	return nil
}

func (a *MySQLCopy) endpoints() (string, string) {
	s, t := a.Source, a.Target
	if s == "" {
		s = "source"
	}
	if t == "" {
		t = "target"
	}
	return s, t
}

func (a *MySQLCopy) parallel(env *steps.Env) int {
	switch {
	case a.Parallel > 0:
		return a.Parallel
	case env.Settings.Parallel > 0:
		return env.Settings.Parallel
	}
	return runtime.NumCPU()
}

// MySQLObjectRef names a view, routine, trigger or event a copy created.
type MySQLObjectRef struct {
	Kind schema.ObjectKind `json:"kind"`
	DB   string            `json:"db"`
	Name string            `json:"name"`
}

// MySQLCopyReceipt is what mysql.copy journals: what it created on the
// target (undo drops exactly that), what it found there and kept, the
// decisions it made, and each table's finished key ranges for resuming.
type MySQLCopyReceipt struct {
	Source    string   `json:"source"`
	Target    string   `json:"target"`
	Mode      string   `json:"mode"`
	Databases []string `json:"databases"`
	// CreatedDatabases and CreatedTables did not exist before the copy.
	CreatedDatabases []string `json:"created_databases,omitempty"`
	CreatedTables    []string `json:"created_tables,omitempty"`
	// ExistingDatabases and KeptTables were there before: undo leaves them.
	ExistingDatabases []string         `json:"existing_databases,omitempty"`
	KeptTables        []string         `json:"kept_tables,omitempty"`
	CreatedObjects    []MySQLObjectRef `json:"created_objects,omitempty"`
	// Deferred lists, per table, the secondary indexes created after its
	// rows ("ADD KEY ..."); Indexed the tables that have them back.
	Deferred map[string][]string `json:"deferred_indexes,omitempty"`
	Indexed  []string            `json:"indexed,omitempty"`
	// DisabledEvents were enabled on the source and created disabled:
	// enable them at the cut-over (ALTER EVENT ... ENABLE).
	DisabledEvents []string          `json:"disabled_events,omitempty"`
	Decisions      []schema.Decision `json:"decisions,omitempty"`
	// Tables is each table's copy state; Phase is schema, data, objects or done.
	Tables  []rowcopy.TableState `json:"tables,omitempty"`
	Phase   string               `json:"phase"`
	Started time.Time            `json:"started"`
	Rows    int64                `json:"rows,omitempty"`
	Bytes   int64                `json:"bytes,omitempty"`
	Seconds float64              `json:"seconds,omitempty"`
	Loader  string               `json:"loader,omitempty"`
}

func (rc *MySQLCopyReceipt) createdTable(name string) bool {
	return mysqlContains(rc.CreatedTables, name)
}
func (rc *MySQLCopyReceipt) createdDatabase(db string) bool {
	return mysqlContains(rc.CreatedDatabases, db)
}
func (rc *MySQLCopyReceipt) keptTable(name string) bool { return mysqlContains(rc.KeptTables, name) }
func (rc *MySQLCopyReceipt) existingDatabase(db string) bool {
	return mysqlContains(rc.ExistingDatabases, db)
}
func (rc *MySQLCopyReceipt) createdObject(o *schema.Object) bool {
	for _, c := range rc.CreatedObjects {
		if c.Kind == o.Kind && c.DB == o.DB && c.Name == o.Name {
			return true
		}
	}
	return false
}

func (rc *MySQLCopyReceipt) decide(r steps.Reporter, ds ...schema.Decision) {
	for _, d := range ds {
		dup := false
		for _, e := range rc.Decisions {
			if e == d {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		rc.Decisions = append(rc.Decisions, d)
		if r != nil {
			if d.Problem {
				r.Logf("warning: %s", d)
			} else {
				r.Logf("decision: %s", d)
			}
		}
	}
}

func mysqlContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mysqlCopySource is what Plan and Do read from both servers.
type mysqlCopySource struct {
	src, dst       *sql.DB
	srcSrv, dstSrv *schema.Server
	mapper         *schema.Mapper
	databases      []string
	tables         []*schema.Table
	objects        []*schema.Object
	// fkTables are the tables in a foreign key, as child or parent.
	fkTables map[string]bool
	// on the target before anything is done
	dstDBs    map[string]bool
	dstTables map[string]map[string]string // db → name → BASE TABLE|VIEW
}

// mysqlCaptureDB is where mysql.capture keeps the keys of changed rows; it
// and the capture triggers are decant's own and never copied.
const (
	mysqlCaptureDB      = "decant_capture"
	mysqlCaptureTrigger = "decant_cap_"
)

func (a *MySQLCopy) read(ctx context.Context, env *steps.Env) (*mysqlCopySource, error) {
	sName, tName := a.endpoints()
	s := &mysqlCopySource{}
	var err error
	if s.src, err = env.MySQL(ctx, sName); err != nil {
		return nil, err
	}
	if s.dst, err = env.MySQL(ctx, tName); err != nil {
		return nil, err
	}
	if s.srcSrv, err = schema.Probe(ctx, s.src); err != nil {
		return nil, fmt.Errorf("%s: %w", sName, err)
	}
	if s.dstSrv, err = schema.Probe(ctx, s.dst); err != nil {
		return nil, fmt.Errorf("%s: %w", tName, err)
	}
	s.mapper = schema.NewMapper(s.srcSrv, s.dstSrv)
	all, err := schema.Databases(ctx, s.src, mysqlCaptureDB)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sName, err)
	}
	if len(a.Databases) == 0 {
		s.databases = all
	} else {
		for _, db := range a.Databases {
			if !mysqlContains(all, db) {
				return nil, fmt.Errorf("%s has no database %q (it has: %s)", sName, db, strings.Join(all, ", "))
			}
		}
		s.databases = a.Databases
	}
	if s.tables, err = schema.LoadTables(ctx, s.src, s.databases); err != nil {
		return nil, fmt.Errorf("%s: %w", sName, err)
	}
	objs, err := schema.LoadObjects(ctx, s.src, s.databases)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sName, err)
	}
	for _, o := range objs {
		if o.Kind == schema.KindTrigger && strings.HasPrefix(o.Name, mysqlCaptureTrigger) {
			continue
		}
		s.objects = append(s.objects, o)
	}
	if s.fkTables, err = mysqlFKTables(ctx, s.src, s.databases); err != nil {
		return nil, fmt.Errorf("%s: %w", sName, err)
	}
	s.dstDBs = map[string]bool{}
	s.dstTables = map[string]map[string]string{}
	for _, db := range s.databases {
		ok, err := schema.DatabaseExists(ctx, s.dst, db)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tName, err)
		}
		s.dstDBs[db] = ok
		if ok {
			if s.dstTables[db], err = schema.TableNames(ctx, s.dst, db); err != nil {
				return nil, fmt.Errorf("%s: %w", tName, err)
			}
		}
	}
	return s, nil
}

// mysqlFKTables lists the tables taking part in a foreign key.
func mysqlFKTables(ctx context.Context, db *sql.DB, databases []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(databases) == 0 {
		return out, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(databases)), ",")
	args := make([]any, 0, 2*len(databases))
	for _, d := range databases {
		args = append(args, d)
	}
	args = append(args, args...)
	rows, err := db.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME
		FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL
		AND (TABLE_SCHEMA IN (`+ph+`) OR REFERENCED_TABLE_SCHEMA IN (`+ph+`))`, args...)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, c, d string
		if err := rows.Scan(&a, &b, &c, &d); err != nil {
			return nil, fmt.Errorf("list foreign keys: %w", err)
		}
		out[a+"."+b], out[c+"."+d] = true, true
	}
	return out, rows.Err()
}

func (a *MySQLCopy) excluded(t *schema.Table) bool {
	return mysqlContains(a.Exclude, t.FullName())
}

// Plan reads both servers and shows what the copy creates, the rows it
// moves and the decisions it will make. It changes nothing.
func (a *MySQLCopy) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	s, err := a.read(ctx, env)
	if err != nil {
		return nil, err
	}
	sName, tName := a.endpoints()
	p := &steps.Plan{Unit: "bytes"}
	var rows, bytes int64
	var existing []string
	for _, t := range s.tables {
		if !a.excluded(t) {
			rows += t.Rows
			bytes += t.DataLength
		}
		if typ := s.dstTables[t.DB][t.Name]; typ != "" {
			existing = append(existing, t.FullName())
		}
	}
	p.Total = bytes
	mode := a.Mode
	if mode == "" {
		mode = "native"
	}
	p.Summary = fmt.Sprintf("copy %d database(s), %d tables (~%d rows, %s) from %s (%s) to %s (%s), %s mode",
		len(s.databases), len(s.tables), rows, mysqlMiB(bytes), sName, s.srcSrv, tName, s.dstSrv, mode)
	for _, db := range s.databases {
		if s.dstDBs[db] {
			p.Changes = append(p.Changes, steps.Change{What: "database " + db + " on " + tName, Before: "exists (kept by undo)", After: "tables added"})
		} else {
			p.Changes = append(p.Changes, steps.Change{What: "database " + db + " on " + tName, Before: "absent", After: "created (undo drops it)"})
		}
	}
	if len(existing) > 0 {
		what := "the copy stops unless an earlier attempt of this step created them"
		if a.Existing == "keep" {
			what = "kept; rows copied into them (undo leaves them)"
		}
		p.Changes = append(p.Changes, steps.Change{What: fmt.Sprintf("%d table(s) already on %s: %s", len(existing), tName, mysqlList(existing, 8)), After: what})
	}
	counts := map[schema.ObjectKind]int{}
	for _, o := range s.objects {
		counts[o.Kind]++
	}
	var objs []string
	for _, k := range []schema.ObjectKind{schema.KindFunction, schema.KindProcedure, schema.KindView, schema.KindTrigger, schema.KindEvent} {
		if counts[k] > 0 {
			objs = append(objs, fmt.Sprintf("%d %s", counts[k], strings.ToLower(string(k))+"(s)"))
		}
	}
	if len(objs) > 0 {
		p.Changes = append(p.Changes, steps.Change{What: "objects on " + tName, After: strings.Join(objs, ", ") + " created; triggers and events after the rows"})
	}
	var noKey []string
	for _, t := range s.tables {
		if len(t.Key) == 0 {
			noKey = append(noKey, t.FullName())
		}
	}
	if len(noKey) > 0 {
		p.Changes = append(p.Changes, steps.Change{What: "tables without a usable key: " + mysqlList(noKey, 8), After: "copied whole, one transaction each"})
	}
	ds := a.preview(s)
	for _, d := range ds {
		p.Changes = append(p.Changes, steps.Change{What: "decision: " + d.String()})
	}
	if mode == "native" {
		loader := a.loader(s.dstSrv)
		p.Commands = append(p.Commands,
			fmt.Sprintf("per chunk on %s: SELECT <columns> FROM <table> WHERE <key range> (binary protocol, raw bytes, UTC)", sName),
			fmt.Sprintf("per chunk on %s: BEGIN; DELETE FROM <table> WHERE <key range>; %s; COMMIT", tName, mysqlLoaderSQL(loader)),
			fmt.Sprintf("%d chunks in flight; target session: sql_mode='NO_AUTO_VALUE_ON_ZERO', time_zone='+00:00', foreign_key_checks=0", a.parallel(env)))
		if a.deferIndexes() {
			p.Commands = append(p.Commands, "tables it creates (outside foreign keys) get their plain secondary indexes after their rows: ALTER TABLE <table> ADD KEY ...")
		}
		if lim := a.bulkLimit(s.dstSrv); lim > 0 {
			p.Commands = append(p.Commands, fmt.Sprintf("tables it creates up to %s: TRUNCATE; one transaction with unique_checks=0 (InnoDB bulk insert): LOAD DATA without REPLACE", mysqlMiB(lim)))
		}
	} else {
		dump, client, err := a.dumpCommands(env)
		if err != nil {
			return nil, err
		}
		for _, db := range s.databases {
			p.Commands = append(p.Commands, dump(db)+" | "+client)
		}
		if s.srcSrv.String() != s.dstSrv.String() {
			p.Changes = append(p.Changes, steps.Change{What: fmt.Sprintf("dump mode copies definitions as %s writes them; %s may reject some (native mode maps them)", s.srcSrv, s.dstSrv)})
		}
	}
	if !mysqlCaptureInstalled(env) {
		p.Changes = append(p.Changes, steps.Change{What: "no mysql.capture step has run: rows changed on the source during the copy will not be caught up"})
	}
	return p, nil
}

func mysqlLoaderSQL(l rowcopy.Loader) string {
	if l == rowcopy.Insert {
		return "REPLACE INTO <table> VALUES (...),(...)"
	}
	return "LOAD DATA LOCAL INFILE <stream> REPLACE INTO TABLE <table> CHARACTER SET binary"
}

func (a *MySQLCopy) loader(dst *schema.Server) rowcopy.Loader {
	switch a.Loader {
	case string(rowcopy.LoadData):
		return rowcopy.LoadData
	case string(rowcopy.Insert):
		return rowcopy.Insert
	}
	if dst.LocalInfile {
		return rowcopy.LoadData
	}
	return rowcopy.Insert
}

// preview maps every definition without creating anything, for the plan.
func (a *MySQLCopy) preview(s *mysqlCopySource) []schema.Decision {
	var out []schema.Decision
	seen := map[string]bool{}
	add := func(ds []schema.Decision) {
		for _, d := range ds {
			if k := d.String(); !seen[k] {
				seen[k] = true
				out = append(out, d)
			}
		}
	}
	for _, t := range s.tables {
		if t.Versioned {
			add([]schema.Decision{{Object: t.FullName(), Message: "system-versioned table: only its current rows are copied", Problem: true}})
		}
		if len(t.Key) > 0 && !mysqlRangeDeleteSafe(s.mapper, t) {
			add([]schema.Decision{{Object: t.FullName(), Message: "its key's collation differs on the target: chunks rely on REPLACE, not range deletes"}})
		}
	}
	// Collation decisions for the table definitions come from the column
	// collations: cheap to compute without SHOW CREATE for every table.
	for _, t := range s.tables {
		for _, c := range t.Columns {
			if c.Collation == "" {
				continue
			}
			if to, changed := s.mapper.Collation(c.Collation); changed {
				msg := fmt.Sprintf("collation %s → %s (the target, %s, has no %s)", c.Collation, to, s.dstSrv, c.Collation)
				if to == "" {
					msg = fmt.Sprintf("collation %s has no equivalent on the target (%s)", c.Collation, s.dstSrv)
				}
				add([]schema.Decision{{Object: t.FullName(), Message: msg, Problem: to == ""}})
			}
		}
	}
	for _, o := range s.objects {
		_, ds := s.mapper.DDL(o.FullName(), o.Create)
		add(ds)
	}
	return out
}

// mysqlRangeDeleteSafe reports whether the target compares t's key exactly
// like the source: every text key column keeps its collation.
func mysqlRangeDeleteSafe(m *schema.Mapper, t *schema.Table) bool {
	for _, c := range t.KeyColumns() {
		if c.Textual() {
			if _, changed := m.Collation(c.Collation); changed {
				return false
			}
		}
	}
	return true
}

// mysqlSameCollations reports whether every text column of t keeps its
// collation on the target, so values unique on the source stay unique
// there (the bulk path does not check uniqueness row by row).
func mysqlSameCollations(m *schema.Mapper, t *schema.Table) bool {
	for _, c := range t.Columns {
		if c.Textual() {
			if _, changed := m.Collation(c.Collation); changed {
				return false
			}
		}
	}
	return true
}

func mysqlMiB(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (n+1023)/1024)
}

func mysqlList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}

// mysqlCaptureInstalled reports whether a mysql.capture step is done and
// not undone in this run's history.
func mysqlCaptureInstalled(env *steps.Env) bool {
	for _, h := range env.Records() {
		if h.Kind == "mysql.capture" && !h.Undone {
			return true
		}
	}
	return false
}

// Do copies: schema first, then rows, then triggers and events, journaling
// each creation before it happens and each finished chunk after it commits.
func (a *MySQLCopy) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	sName, tName := a.endpoints()
	rc := &MySQLCopyReceipt{}
	resumed := r.Resume(rc)
	if !resumed {
		rc = &MySQLCopyReceipt{Source: sName, Target: tName, Mode: a.Mode, Phase: "schema", Started: env.Clock().UTC()}
		if rc.Mode == "" {
			rc.Mode = "native"
		}
	}
	s, err := a.read(ctx, env)
	if err != nil {
		return rc, err
	}
	rc.Databases = s.databases
	if resumed {
		r.Logf("resuming an interrupted copy (phase %s, %d table(s) complete)", rc.Phase, mysqlCompleteCount(rc))
	}
	if !mysqlCaptureInstalled(env) {
		r.Logf("note: no mysql.capture step has run; rows changed on %s from now on are not caught up by mysql.catchup", sName)
	}
	if rc.Mode == "dump" {
		return a.doDump(ctx, env, s, rc, r)
	}
	cp := &mysqlCopier{a: a, env: env, s: s, rc: rc, r: r}
	return rc, cp.run(ctx)
}

func mysqlCompleteCount(rc *MySQLCopyReceipt) int {
	n := 0
	for _, t := range rc.Tables {
		if t.Complete {
			n++
		}
	}
	return n
}

// mysqlCopier carries one Do of a native copy.
type mysqlCopier struct {
	a   *MySQLCopy
	env *steps.Env
	s   *mysqlCopySource
	r   steps.Reporter

	mu sync.Mutex // guards rc (workers checkpoint concurrently)
	rc *MySQLCopyReceipt
}

func (c *mysqlCopier) checkpoint() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Checkpoint(c.rc)
}

func (c *mysqlCopier) run(ctx context.Context) error {
	ddl, closeDDL, err := mysqlDDLConn(ctx, c.s.dst)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer closeDDL()
	if err := c.createSchema(ctx, ddl); err != nil {
		return err
	}
	if err := c.copyRows(ctx); err != nil {
		return err
	}
	if err := c.createLate(ctx, ddl); err != nil {
		return err
	}
	c.mu.Lock()
	c.rc.Phase = "done"
	c.mu.Unlock()
	problems := 0
	for _, d := range c.rc.Decisions {
		if d.Problem {
			problems++
		}
	}
	msg := fmt.Sprintf("copy finished: %d tables, %d rows, %s in %.1fs", len(c.s.tables), c.rc.Rows, mysqlMiB(c.rc.Bytes), c.rc.Seconds)
	if problems > 0 {
		msg += fmt.Sprintf("; %d warning(s) above need attention", problems)
	}
	c.r.Logf("%s", msg)
	return c.checkpoint()
}

// mysqlDDLConn is a target session for DDL: permissive sql_mode (zero-date
// defaults), no FK checks (tables come in any order), UTC.
func mysqlDDLConn(ctx context.Context, db *sql.DB) (*sql.Conn, func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, q := range []string{"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
		"SET SESSION foreign_key_checks = 0", "SET SESSION time_zone = '+00:00'"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	// The session was changed: do not hand it back to the pool.
	return conn, func() {
		_ = conn.Raw(func(any) error { return mysqlDriverBadConn })
		conn.Close()
	}, nil
}

func (c *mysqlCopier) createSchema(ctx context.Context, ddl *sql.Conn) error {
	s, rc, r := c.s, c.rc, c.r
	if rc.Phase != "schema" {
		return nil
	}
	existing := c.a.Existing
	for _, db := range s.databases {
		if s.dstDBs[db] {
			if !rc.createdDatabase(db) && !rc.existingDatabase(db) {
				rc.ExistingDatabases = append(rc.ExistingDatabases, db)
			}
			continue
		}
		create, err := schema.ShowCreateDatabase(ctx, s.src, db)
		if err != nil {
			return err
		}
		create, ds := s.mapper.DDL(db, create)
		rc.decide(r, ds...)
		if !rc.createdDatabase(db) {
			rc.CreatedDatabases = append(rc.CreatedDatabases, db)
		}
		if err := c.checkpoint(); err != nil {
			return err
		}
		if _, err := ddl.ExecContext(ctx, strings.Replace(create, "CREATE DATABASE", "CREATE DATABASE IF NOT EXISTS", 1)); err != nil {
			return fmt.Errorf("create database %s on the target: %w", db, err)
		}
		r.Logf("created database %s", db)
		s.dstTables[db] = map[string]string{}
	}
	for _, t := range s.tables {
		name := t.FullName()
		if len(t.Key) == 0 {
			rc.decide(r, schema.Decision{Object: name, Message: "no usable key (" + t.NoKeyReason + "): copied whole in one transaction"})
		}
		if s.dstTables[t.DB][t.Name] != "" {
			switch {
			case rc.createdTable(name), rc.keptTable(name):
				continue
			case existing == "keep":
				rc.KeptTables = append(rc.KeptTables, name)
				rc.decide(r, schema.Decision{Object: name, Message: "already on the target: kept, rows copied into it (undo leaves it)"})
				continue
			}
			return fmt.Errorf("the target already has %s and this step did not create it: drop it there, or set existing: keep to copy into it", name)
		}
		create, err := schema.ShowCreateTable(ctx, s.src, t.DB, t.Name)
		if err != nil {
			return err
		}
		create, ds := s.mapper.DDL(name, create)
		rc.decide(r, ds...)
		if !rc.createdTable(name) {
			rc.CreatedTables = append(rc.CreatedTables, name)
		}
		if c.a.deferIndexes() && !s.fkTables[name] && !c.a.excluded(t) {
			var adds []string
			if create, adds = schema.SplitSecondaryKeys(create); len(adds) > 0 {
				if rc.Deferred == nil {
					rc.Deferred = map[string][]string{}
				}
				rc.Deferred[name] = adds
			}
		}
		if err := c.checkpoint(); err != nil {
			return err
		}
		if _, err := ddl.ExecContext(ctx, "USE "+schema.QuoteIdent(t.DB)); err != nil {
			return fmt.Errorf("use %s on the target: %w", t.DB, err)
		}
		if _, err := ddl.ExecContext(ctx, create); err != nil {
			return fmt.Errorf("create table %s on the target: %w\n%s", name, err, create)
		}
	}
	if n := len(rc.CreatedTables); n > 0 {
		r.Logf("created %d table(s) on the target", n)
	}
	if n := len(rc.Deferred); n > 0 {
		r.Logf("%d table(s) get their secondary indexes once their rows are in (built by sorting, cheaper than row by row)", n)
	}
	// Routines before views: a view may call a function.
	for _, o := range s.objects {
		if o.Kind == schema.KindTrigger || o.Kind == schema.KindEvent {
			continue
		}
		if err := c.createObject(ctx, ddl, o); err != nil {
			return err
		}
	}
	rc.Phase = "data"
	return c.checkpoint()
}

// createObject creates one view, routine, trigger or event with the
// session settings it was defined under, journaling it first.
func (c *mysqlCopier) createObject(ctx context.Context, ddl *sql.Conn, o *schema.Object) error {
	s, rc, r := c.s, c.rc, c.r
	if rc.createdObject(o) {
		// An earlier attempt created it (or was about to): recreate to be sure.
		if _, err := ddl.ExecContext(ctx, o.DropStatement()); err != nil {
			return fmt.Errorf("drop %s %s on the target: %w", strings.ToLower(string(o.Kind)), o.FullName(), err)
		}
	} else {
		exists, err := mysqlObjectExists(ctx, s.dst, o)
		if err != nil {
			return err
		}
		if exists {
			if c.a.Existing == "keep" {
				rc.decide(r, schema.Decision{Object: o.FullName(), Message: fmt.Sprintf("%s already on the target: kept as it is", strings.ToLower(string(o.Kind)))})
				return nil
			}
			return fmt.Errorf("the target already has %s %s and this step did not create it: drop it there, or set existing: keep", strings.ToLower(string(o.Kind)), o.FullName())
		}
	}
	create, ds := s.mapper.DDL(o.FullName(), o.Create)
	rc.decide(r, ds...)
	if o.Kind == schema.KindEvent && c.a.Events != "as-is" && strings.EqualFold(o.Status, "ENABLED") {
		if dis, ok := schema.DisableEvent(create); ok {
			create = dis
			if !mysqlContains(rc.DisabledEvents, o.FullName()) {
				rc.DisabledEvents = append(rc.DisabledEvents, o.FullName())
			}
			rc.decide(r, schema.Decision{Object: o.FullName(), Message: "event created DISABLED so it does not change the target before the cut-over; enable it then: ALTER EVENT " + schema.QualifiedName(o.DB, o.Name) + " ENABLE"})
		}
	}
	if !rc.createdObject(o) {
		rc.CreatedObjects = append(rc.CreatedObjects, MySQLObjectRef{Kind: o.Kind, DB: o.DB, Name: o.Name})
	}
	if err := c.checkpoint(); err != nil {
		return err
	}
	mode, dropped := s.mapper.SQLMode(o.SQLMode)
	if len(dropped) > 0 {
		rc.decide(r, schema.Decision{Object: o.FullName(), Message: "sql_mode without " + strings.Join(dropped, ",") + " (the target does not know them)"})
	}
	stmts := []string{"USE " + schema.QuoteIdent(o.DB), "SET SESSION sql_mode = " + schema.QuoteString(mode)}
	if o.TimeZone != "" {
		stmts = append(stmts, "SET SESSION time_zone = "+schema.QuoteString(o.TimeZone))
	}
	if strings.HasPrefix(strings.ToLower(o.CollationConnection), "utf8mb4_") {
		if coll, _ := s.mapper.Collation(o.CollationConnection); coll != "" {
			stmts = append(stmts, "SET SESSION collation_connection = "+schema.QuoteString(coll))
		}
	}
	for _, q := range stmts {
		if _, err := ddl.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("prepare to create %s: %s: %w", o.FullName(), q, err)
		}
	}
	_, err := ddl.ExecContext(ctx, create)
	// Back to the copy's own session whatever happened.
	for _, q := range []string{"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
		"SET SESSION time_zone = '+00:00'", "SET NAMES utf8mb4"} {
		if _, rerr := ddl.ExecContext(ctx, q); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		if o.TimeZone != "" && strings.Contains(err.Error(), "time zone") {
			return fmt.Errorf("create %s %s on the target: %w (load the time zone tables there: mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql)", strings.ToLower(string(o.Kind)), o.FullName(), err)
		}
		return fmt.Errorf("create %s %s on the target: %w", strings.ToLower(string(o.Kind)), o.FullName(), err)
	}
	return nil
}

func mysqlObjectExists(ctx context.Context, db *sql.DB, o *schema.Object) (bool, error) {
	var q string
	switch o.Kind {
	case schema.KindView:
		q = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
	case schema.KindTrigger:
		q = "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?"
	case schema.KindEvent:
		q = "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?"
	default:
		q = "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = '" + string(o.Kind) + "'"
	}
	var n int
	if err := db.QueryRowContext(ctx, q, o.DB, o.Name).Scan(&n); err != nil {
		return false, fmt.Errorf("look up %s on the target: %w", o.FullName(), err)
	}
	return n > 0, nil
}

func (c *mysqlCopier) copyRows(ctx context.Context) error {
	s, rc, r, a := c.s, c.rc, c.r, c.a
	if rc.Phase != "data" {
		return nil
	}
	prev := map[string]rowcopy.TableState{}
	for _, t := range rc.Tables {
		prev[t.Table] = t
	}
	var jobs []*rowcopy.Job
	var states []rowcopy.TableState
	for _, t := range s.tables {
		name := t.FullName()
		st, ok := prev[name]
		if !ok {
			st = rowcopy.TableState{Table: name}
		}
		if a.excluded(t) {
			st.Complete = true
			rc.decide(r, schema.Decision{Object: name, Message: "excluded: definition copied, rows not"})
		}
		states = append(states, st)
		if st.Complete {
			continue
		}
		jobs = append(jobs, &rowcopy.Job{Table: t, Done: st.Done, PrevRows: st.Rows, PrevBytes: st.Bytes,
			RangeDelete: mysqlRangeDeleteSafe(s.mapper, t),
			Bulk: rc.createdTable(name) && len(st.Done) == 0 && t.DataLength <= a.bulkLimit(s.dstSrv) &&
				mysqlSameCollations(s.mapper, t)})
	}
	c.mu.Lock()
	rc.Tables = states
	c.mu.Unlock()
	if err := c.checkpoint(); err != nil {
		return err
	}
	ib := c.startIndexer(ctx)
	for _, st := range states {
		if st.Complete {
			ib.queue(st.Table)
		}
	}
	if len(jobs) == 0 {
		if err := ib.finish(); err != nil {
			return err
		}
		rc.Phase = "objects"
		return c.checkpoint()
	}
	var rate int64
	if a.MaxRateMiB > 0 {
		rate = int64(a.MaxRateMiB * (1 << 20))
	}
	chunkBytes := a.ChunkMiB << 20
	loader := a.loader(s.dstSrv)
	if loader == rowcopy.LoadData && !s.dstSrv.LocalInfile {
		return errors.New("loader: load-data needs local_infile on the target: SET GLOBAL local_infile = 1 there, or use loader: insert")
	}
	r.Logf("copying rows of %d table(s) with %d chunks in flight (%s)", len(jobs), a.parallel(c.env), loader)
	st, err := rowcopy.Copy(ctx, s.src, s.dst, s.dstSrv, jobs, rowcopy.Options{
		Parallel: a.parallel(c.env), ChunkRows: a.ChunkRows, ChunkBytes: chunkBytes, Loader: loader, MaxRate: rate,
		Logf: r.Logf,
		Checkpoint: func(ts []rowcopy.TableState) error {
			c.mu.Lock()
			byName := map[string]rowcopy.TableState{}
			for _, t := range ts {
				byName[t.Table] = t
			}
			for i, t := range rc.Tables {
				if n, ok := byName[t.Table]; ok {
					rc.Tables[i] = n
				}
			}
			c.mu.Unlock()
			return c.checkpoint()
		},
		Progress:  func(done, total int64) { r.Progress(done, total, "bytes") },
		TableDone: ib.queue,
	})
	if ierr := ib.finish(); ierr != nil && err == nil {
		err = ierr
	}
	c.mu.Lock()
	rc.Rows += st.Rows
	rc.Bytes += st.Bytes
	rc.Seconds += st.Elapsed.Seconds()
	rc.Loader = string(st.Loader)
	c.mu.Unlock()
	if err != nil {
		if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, mysqlDriverBadConn) || errors.Is(err, hosts.ErrConnectionLost) {
			return fmt.Errorf("%w (a connection dropped: run the step again, it resumes at the first unfinished chunk)", err)
		}
		return err
	}
	if st.Elapsed > 0 {
		r.Logf("rows copied: %d rows, %s sent in %.1fs (%.1f MiB/s)", st.Rows, mysqlMiB(st.Bytes), st.Elapsed.Seconds(),
			float64(st.Bytes)/(1<<20)/st.Elapsed.Seconds())
	}
	c.mu.Lock()
	rc.Phase = "objects"
	c.mu.Unlock()
	return c.checkpoint()
}

// mysqlIndexer adds deferred secondary indexes, one table at a time, as
// tables complete (while others still load).
type mysqlIndexer struct {
	c    *mysqlCopier
	ch   chan string
	done chan error
	once sync.Once
}

func (c *mysqlCopier) startIndexer(ctx context.Context) *mysqlIndexer {
	ib := &mysqlIndexer{c: c, ch: make(chan string, 1024), done: make(chan error, 1)}
	// Two builders: one ALTER mostly uses one core, and the last tables
	// to finish should not wait in line.
	const builders = 2
	errs := make(chan error, builders)
	for i := 0; i < builders; i++ {
		go func() {
			var first error
			for name := range ib.ch {
				if first != nil || ctx.Err() != nil {
					continue
				}
				if err := c.addIndexes(ctx, name); err != nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	go func() {
		var first error
		for i := 0; i < builders; i++ {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		ib.done <- first
	}()
	return ib
}

func (ib *mysqlIndexer) queue(table string) {
	ib.c.mu.Lock()
	need := len(ib.c.rc.Deferred[table]) > 0 && !mysqlContains(ib.c.rc.Indexed, table)
	ib.c.mu.Unlock()
	if need {
		ib.ch <- table
	}
}

// finish waits for the indexes queued so far.
func (ib *mysqlIndexer) finish() error {
	ib.once.Do(func() { close(ib.ch) })
	return <-ib.done
}

// addIndexes adds a table's deferred indexes that are not there yet.
func (c *mysqlCopier) addIndexes(ctx context.Context, name string) error {
	c.mu.Lock()
	adds := c.rc.Deferred[name]
	c.mu.Unlock()
	db, tbl, _ := strings.Cut(name, ".")
	have := map[string]bool{}
	rows, err := c.s.dst.QueryContext(ctx, "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, tbl)
	if err != nil {
		return fmt.Errorf("indexes of %s on the target: %w", name, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		have[n] = true
	}
	rows.Close()
	var missing []string
	for _, a := range adds {
		if !have[schema.IndexName(a)] {
			missing = append(missing, a)
		}
	}
	t0 := time.Now()
	if len(missing) > 0 {
		if _, err := c.s.dst.ExecContext(ctx, "ALTER TABLE "+schema.QualifiedName(db, tbl)+" "+strings.Join(missing, ", ")); err != nil {
			return fmt.Errorf("add the secondary indexes of %s on the target: %w", name, err)
		}
	}
	c.r.Logf("%s: %d secondary index(es) built in %.1fs", name, len(missing), time.Since(t0).Seconds())
	c.mu.Lock()
	c.rc.Indexed = append(c.rc.Indexed, name)
	c.mu.Unlock()
	return c.checkpoint()
}

// createLate creates triggers and events once the rows are in: a trigger
// must not fire for rows the copy loads, an event must not change them.
func (c *mysqlCopier) createLate(ctx context.Context, ddl *sql.Conn) error {
	if c.rc.Phase != "objects" {
		return nil
	}
	if err := mysqlCheckDefiners(ctx, c.s, c.rc, c.r); err != nil {
		return err
	}
	for _, o := range c.s.objects {
		if o.Kind != schema.KindTrigger && o.Kind != schema.KindEvent {
			continue
		}
		if err := c.createObject(ctx, ddl, o); err != nil {
			return err
		}
	}
	return nil
}

// mysqlCheckDefiners reports objects whose DEFINER has no account on the
// target: they are created (the server allows it) but fail when used
// until mysql.users creates the account.
func mysqlCheckDefiners(ctx context.Context, s *mysqlCopySource, rc *MySQLCopyReceipt, r steps.Reporter) error {
	users := map[string]bool{}
	rows, err := s.dst.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	if err != nil {
		return fmt.Errorf("list accounts on the target: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			return fmt.Errorf("list accounts on the target: %w", err)
		}
		users[u+"@"+h] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	missing := map[string][]string{}
	for _, o := range s.objects {
		u, h, ok := o.DefinerUserHost()
		if !ok || users[u+"@"+h] {
			continue
		}
		missing[o.Definer] = append(missing[o.Definer], strings.ToLower(string(o.Kind))+" "+o.FullName())
	}
	var keys []string
	for k := range missing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i := strings.LastIndex(k, "@")
		u, h := k[:i], k[i+1:]
		rc.decide(r, schema.Decision{Object: "definer " + schema.QuoteString(u) + "@" + schema.QuoteString(h), Problem: true,
			Message: fmt.Sprintf("no such account on the target yet: %s keep it as definer and fail when used until mysql.users creates it", mysqlList(missing[k], 5))})
	}
	return nil
}

// Undo drops what the copy created, newest first: events, triggers,
// views, routines, tables, databases. What existed before is left alone.
func (a *MySQLCopy) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLCopyReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read mysql.copy receipt: %w", err)
	}
	tName := rc.Target
	if tName == "" {
		_, tName = a.endpoints()
	}
	dst, err := env.MySQL(ctx, tName)
	if err != nil {
		return err
	}
	conn, closeConn, err := mysqlDDLConn(ctx, dst)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer closeConn()
	for i := len(rc.CreatedObjects) - 1; i >= 0; i-- {
		o := rc.CreatedObjects[i]
		if mysqlContains(rc.CreatedDatabases, o.DB) {
			continue // goes with its database
		}
		obj := schema.Object{Kind: o.Kind, DB: o.DB, Name: o.Name}
		if _, err := conn.ExecContext(ctx, obj.DropStatement()); err != nil {
			return fmt.Errorf("drop %s %s.%s: %w", strings.ToLower(string(o.Kind)), o.DB, o.Name, err)
		}
		r.Logf("dropped %s %s.%s", strings.ToLower(string(o.Kind)), o.DB, o.Name)
	}
	for i := len(rc.CreatedTables) - 1; i >= 0; i-- {
		db, name, _ := strings.Cut(rc.CreatedTables[i], ".")
		if mysqlContains(rc.CreatedDatabases, db) {
			continue
		}
		if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+schema.QualifiedName(db, name)); err != nil {
			return fmt.Errorf("drop table %s: %w", rc.CreatedTables[i], err)
		}
		r.Logf("dropped table %s", rc.CreatedTables[i])
	}
	for i := len(rc.CreatedDatabases) - 1; i >= 0; i-- {
		db := rc.CreatedDatabases[i]
		if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+schema.QuoteIdent(db)); err != nil {
			return fmt.Errorf("drop database %s: %w", db, err)
		}
		r.Logf("dropped database %s", db)
	}
	for _, t := range rc.KeptTables {
		r.Logf("left %s as it was before the copy's rows went in: it existed before (its copied rows stay)", t)
	}
	return nil
}
