package actions_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/runbook"
)

// mysqlCopyTestLab starts a real lab (two MariaDB servers and sshd) for
// the subtests of TestMySQLCopy and stops it when they are done.
func mysqlCopyTestLab(t *testing.T) *lab.Lab {
	t.Helper()
	dir, err := os.MkdirTemp("", "decant-mysqlcopy-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.Stop()
			t.Logf("lab files kept in %s", dir)
			return
		}
		l.RemoveAll()
	})
	return l
}

// TestMySQLCopy runs mysql.copy, mysql.verify, mysql.capture and
// mysql.catchup through the engine against one real lab, the target MySQL
// reached through the lab sshd's tunnel.
func TestMySQLCopy(t *testing.T) {
	l := mysqlCopyTestLab(t)
	t.Run("copy-verify-undo", func(t *testing.T) { mysqlTestCopyVerifyUndo(t, l) })
	t.Run("catchup-under-writes", func(t *testing.T) { mysqlTestCatchupUnderWrites(t, l) })
	t.Run("dump-mode", func(t *testing.T) { mysqlTestDumpMode(t, l) })
}

// mysqlCopyRunbook writes a runbook whose target MySQL is reached through
// the lab sshd's tunnel, as in production, and opens an engine on it.
func mysqlCopyRunbook(t *testing.T, l *lab.Lab, steps string) *runbook.Engine {
	t.Helper()
	src := labtest.Header(l, "mysql copy test") + "settings:\n  parallel: 3\nphases:\n  - name: move\n    steps:\n" + steps
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mysqlCopyDB(t *testing.T, m *lab.MariaDB) *sql.DB {
	t.Helper()
	// Text dates (parseTime off) and UTC, so zero dates compare as they are.
	db, err := mysqlx.Open(context.Background(), hosts.Local("test"), mysqlx.Endpoint{Name: m.Name, Address: m.Addr, User: "root", Password: m.RootPassword}, secret.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mysqlCopyExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func mysqlCopyQuery(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			if v.Valid {
				parts = append(parts, v.String)
			} else {
				parts = append(parts, "NULL")
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

// mysqlCopyShop builds the source schema: every column type, utf8mb4 and
// binary data, NULLs, zero dates, a table without a key, a foreign key,
// views (one over another), a trigger, a procedure, a function and an
// event, some with a definer the target lacks.
func mysqlCopyShop(t *testing.T, src *sql.DB) {
	mysqlCopyExec(t, src,
		"DROP DATABASE IF EXISTS shop", "DROP DATABASE IF EXISTS extra",
		"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'app-secret-pw'",
		"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
		"CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE DATABASE extra",
		"USE shop",
		`CREATE TABLE customers (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(100) NOT NULL UNIQUE,
		  name varchar(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, created timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB`,
		`CREATE TABLE orders (id bigint NOT NULL AUTO_INCREMENT, customer_id int unsigned NOT NULL, total decimal(12,2) NOT NULL,
		  placed datetime NOT NULL DEFAULT '0000-00-00 00:00:00', note text, PRIMARY KEY (id), KEY (customer_id),
		  CONSTRAINT fk_c FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB`,
		`CREATE TABLE types (id int NOT NULL, ti tinyint, si smallint unsigned, bi bigint unsigned, de decimal(20,6), fl float, db double,
		  bt bit(12), yr year, d date, dt datetime(6), ts timestamp(3) NULL DEFAULT NULL, tm time, c char(5), vb varbinary(20), bl blob,
		  lt longtext, en enum('a','b'), st set('x','y'), js json, pt point, gv int AS (id * 2) VIRTUAL, PRIMARY KEY (id))`,
		"CREATE TABLE log (at datetime, msg varchar(200), KEY at (at), KEY msg (msg(20), at)) ENGINE=InnoDB",
		"CREATE TABLE audit (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id bigint, what varchar(20))",
		`INSERT INTO customers (id, email, name, created) VALUES (1, 'ann@example.com', 'Ann 😀 Ünïcødé', '2024-03-31 01:30:00'),
		  (2, 'bob@example.com', NULL, '2024-01-01 00:00:00'), (0, 'zero@example.com', 'id zero', '2024-01-02 00:00:00')`,
		"INSERT INTO orders (customer_id, total, placed, note) SELECT 1 + seq % 2, seq * 1.25, '2024-01-01' + INTERVAL seq HOUR, IF(seq % 5, CONCAT('note ', seq, ' naïve'), NULL) FROM seq_1_to_700",
		"INSERT INTO orders (customer_id, total, placed) VALUES (2, 0, '0000-00-00 00:00:00')",
		`INSERT INTO types (id,ti,si,bi,de,fl,db,bt,yr,d,dt,ts,tm,c,vb,bl,lt,en,st,js,pt) VALUES
		  (1, -128, 65535, 18446744073709551615, -1234.5, 0.1234567, 2.5e-300, b'101010101010', 1999, '0000-00-00', '2024-02-29 23:59:59.999999',
		   '2038-01-19 03:14:07.499', '838:59:59', 'ab', x'00ff5c4e0a09', x'0001020304ff', REPEAT('ü', 3000), 'b', 'x,y', '{"a": [1, "é"]}', POINT(1, 2)),
		  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		  (3, 0, 0, 0, 0, 0, 0, b'0', 2000, '2024-00-00', '0000-00-00 00:00:00', NULL, '00:00:00', '', x'', x'', '', 'a', '', '[]', NULL)`,
		"INSERT INTO log VALUES ('2024-01-01', 'dup'), ('2024-01-01', 'dup'), (NULL, NULL)",
		"CREATE FUNCTION order_total(o bigint) RETURNS decimal(12,2) READS SQL DATA RETURN (SELECT total FROM orders WHERE id = o)",
		"CREATE PROCEDURE purge_log() MODIFIES SQL DATA DELETE FROM log WHERE at < NOW() - INTERVAL 1 YEAR",
		"CREATE VIEW big_orders AS SELECT id, customer_id, order_total(id) AS t FROM orders WHERE total > 100",
		"CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW big_customers AS SELECT DISTINCT customer_id FROM big_orders",
		"CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id, what) VALUES (NEW.id, 'insert')",
		"CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DO CALL purge_log()",
		"USE extra",
		"CREATE TABLE notes (id int PRIMARY KEY, body varchar(50))",
		"INSERT INTO notes VALUES (1, 'hello'), (2, 'wörld')",
		"ANALYZE TABLE shop.orders, shop.customers, shop.types, shop.log, extra.notes",
	)
}

func mysqlTestCopyVerifyUndo(t *testing.T, l *lab.Lab) {
	src, dst := mysqlCopyDB(t, l.Source), mysqlCopyDB(t, l.Target)
	mysqlCopyShop(t, src)
	// The target already has database extra (and an unrelated table in it).
	mysqlCopyExec(t, dst, "DROP DATABASE IF EXISTS shop", "DROP DATABASE IF EXISTS extra", "CREATE DATABASE extra", "CREATE TABLE extra.mine (x int)")
	e := mysqlCopyRunbook(t, l, `      - id: copy
        action: mysql.copy
        with: {databases: [shop, extra], chunk_rows: 60}
      - id: verify
        action: mysql.verify
        with: {databases: [shop, extra], chunk_rows: 50}
`)
	ctx := context.Background()
	plan, err := e.Plan(ctx, "copy")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Noop || plan.Total <= 0 || !strings.Contains(plan.Summary, "2 database(s)") {
		t.Fatalf("plan: %+v", plan)
	}
	if err := e.Run(ctx, "copy", plan); err != nil {
		t.Fatalf("copy: %v", err)
	}
	st := e.State("copy")
	var rc actions.MySQLCopyReceipt
	if err := json.Unmarshal(st.Receipt, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Phase != "done" || strings.Join(rc.CreatedDatabases, ",") != "shop" || strings.Join(rc.ExistingDatabases, ",") != "extra" {
		t.Fatalf("receipt databases: %+v", rc)
	}
	if len(rc.CreatedTables) != 6 || len(rc.CreatedObjects) != 6 {
		t.Fatalf("created tables %v objects %v", rc.CreatedTables, rc.CreatedObjects)
	}
	for _, tb := range rc.Tables {
		if !tb.Complete {
			t.Fatalf("table %s not complete", tb.Table)
		}
		if tb.Table == "shop.orders" && (tb.Rows != 701 || len(tb.Done) != 1 || !tb.Done[0].All()) {
			t.Fatalf("orders state %+v", tb)
		}
	}
	if strings.Join(rc.DisabledEvents, ",") != "shop.nightly" {
		t.Fatalf("disabled events %v", rc.DisabledEvents)
	}
	var decisions []string
	for _, d := range rc.Decisions {
		decisions = append(decisions, d.String())
	}
	all := strings.Join(decisions, "\n")
	for _, want := range []string{"shop.log: no usable key", "'app'@'%'", "event created DISABLED"} {
		if !strings.Contains(all, want) {
			t.Errorf("decisions lack %q:\n%s", want, all)
		}
	}
	// The objects work on the target, with their definers; the trigger did
	// not fire for the copied rows (audit has the source's rows only).
	if got := mysqlCopyQuery(t, dst, "SELECT COUNT(*), SUM(t) FROM shop.big_orders"); got != mysqlCopyQuery(t, src, "SELECT COUNT(*), SUM(t) FROM shop.big_orders") {
		t.Fatalf("view over a function: %s", got)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'big_customers'"); got != "app@%" {
		t.Fatalf("definer %s", got)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_NAME = 'nightly'"); got != "DISABLED" {
		t.Fatalf("event %s", got)
	}
	if got, want := mysqlCopyQuery(t, dst, "SELECT COUNT(*) FROM shop.audit"), mysqlCopyQuery(t, src, "SELECT COUNT(*) FROM shop.audit"); got != want {
		t.Fatalf("audit rows: target %s, source %s: the trigger fired during the copy", got, want)
	}
	mysqlCopyExec(t, dst, "INSERT INTO shop.orders (customer_id, total) VALUES (2, 9.99)")
	if got := mysqlCopyQuery(t, dst, "SELECT what FROM shop.audit ORDER BY id DESC LIMIT 1"); got != "insert" {
		t.Fatalf("trigger on the target: %q", got)
	}
	mysqlCopyExec(t, dst, "DELETE FROM shop.orders WHERE id = (SELECT MAX(id) FROM shop.orders)",
		"DELETE FROM shop.audit WHERE id = (SELECT m FROM (SELECT MAX(id) m FROM shop.audit) x)")
	// Zero dates, TIMESTAMPs and the AUTO_INCREMENT id 0 survived byte for byte.
	q := "SELECT id, HEX(created), name FROM shop.customers ORDER BY id"
	if a, b := mysqlCopyQuery(t, src, q), mysqlCopyQuery(t, dst, q); a != b {
		t.Fatalf("customers:\n%s\nvs\n%s", a, b)
	}
	q = "SELECT id, dt, ts, d, HEX(bt), HEX(vb), fl, db, js, ST_AsText(pt), gv FROM shop.types ORDER BY id"
	if a, b := mysqlCopyQuery(t, src, q), mysqlCopyQuery(t, dst, q); a != b {
		t.Fatalf("types:\n%s\nvs\n%s", a, b)
	}

	// Deferred secondary indexes are back; tables in a foreign key kept theirs.
	q = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, COALESCE(SUB_PART,'') FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop' ORDER BY 1, 2, 4"
	if a, b := mysqlCopyQuery(t, src, q), mysqlCopyQuery(t, dst, q); a != b {
		t.Fatalf("indexes differ:\nsource\n%s\ntarget\n%s", a, b)
	}
	if len(rc.Deferred) == 0 || rc.Deferred["shop.orders"] != nil || len(rc.Indexed) != len(rc.Deferred) {
		t.Fatalf("deferred %v indexed %v", rc.Deferred, rc.Indexed)
	}
	if err := e.Run(ctx, "verify", nil); err != nil {
		t.Fatalf("verify after a clean copy: %v", err)
	}
	// One changed byte in a utf8mb4 text: ï (c3 af) becomes î (c3 ae).
	mysqlCopyExec(t, dst, "UPDATE shop.orders SET note = REPLACE(note, 'ï', 'î') WHERE id = 42")
	err = e.Run(ctx, "verify", nil)
	if err == nil || !strings.Contains(err.Error(), "shop.orders") {
		t.Fatalf("verify after corruption: %v", err)
	}
	st = e.State("verify")
	var vr actions.MySQLVerifyReceipt
	if err := json.Unmarshal(st.Receipt, &vr); err != nil {
		t.Fatal(err)
	}
	if len(vr.Failed) != 1 || vr.Failed[0].Table != "shop.orders" || len(vr.Failed[0].Diffs) != 1 || vr.Failed[0].Diffs[0].Key.String() != "42" {
		t.Fatalf("verify receipt: %+v", vr.Failed)
	}

	if err := e.Undo(ctx, "copy"); err != nil {
		t.Fatal(err)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop','extra')"); got != "extra" {
		t.Fatalf("after undo, databases: %q", got)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'extra'"); got != "mine" {
		t.Fatalf("after undo, extra has %q: undo must drop what the copy created and only that", got)
	}
}

// mode: dump runs mysqldump on the source host into mysql on the target
// host through SSH, with credentials from option files only; undo drops
// what it created.
func mysqlTestDumpMode(t *testing.T, l *lab.Lab) {
	src, dst := mysqlCopyDB(t, l.Source), mysqlCopyDB(t, l.Target)
	mysqlCopyExec(t, dst, "DROP DATABASE IF EXISTS dumped")
	mysqlCopyExec(t, src, "DROP DATABASE IF EXISTS dumped", "CREATE DATABASE dumped", "USE dumped",
		"CREATE TABLE t (id int PRIMARY KEY, s varchar(40) CHARACTER SET utf8mb4, b varbinary(10))",
		"INSERT INTO t SELECT seq, CONCAT('dümp ', seq, ' 😀'), x'00ff0a' FROM seq_1_to_3000",
		"CREATE VIEW v AS SELECT COUNT(*) AS n FROM t")
	e := mysqlCopyRunbook(t, l, `      - id: dump
        action: mysql.copy
        with: {databases: [dumped], mode: dump}
      - id: verify
        action: mysql.verify
        with: {databases: [dumped]}
`)
	ctx := context.Background()
	plan, err := e.Plan(ctx, "dump")
	if err != nil {
		t.Fatal(err)
	}
	cmds := strings.Join(plan.Commands, "\n")
	if !strings.Contains(cmds, "mysqldump --defaults-extra-file=") || strings.Contains(cmds, l.Source.RootPassword) || strings.Contains(cmds, "--password") {
		t.Fatalf("dump commands: %s", cmds)
	}
	if err := e.Run(ctx, "dump", plan); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, "verify", nil); err != nil {
		t.Fatalf("verify after the dump: %v", err)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT n FROM dumped.v"); got != "3000" {
		t.Fatalf("view on the target: %s", got)
	}
	var rc actions.MySQLCopyReceipt
	if err := json.Unmarshal(e.State("dump").Receipt, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Mode != "dump" || strings.Join(rc.CreatedDatabases, ",") != "dumped" || rc.Bytes == 0 {
		t.Fatalf("receipt %+v", rc)
	}
	if err := e.Undo(ctx, "dump"); err != nil {
		t.Fatal(err)
	}
	if got := mysqlCopyQuery(t, dst, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'dumped'"); got != "0" {
		t.Fatal("undo left the dumped database")
	}
}
