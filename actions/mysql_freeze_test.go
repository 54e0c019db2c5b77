package actions_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/lab"
)

func mysqlFreezeReadOnly(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var v int
	if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v == 1
}

// mysqlFreezeWaitReadOnly polls until read_only is want or the deadline.
func mysqlFreezeWaitReadOnly(t *testing.T, db *sql.DB, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if mysqlFreezeReadOnly(t, db) == want {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("read_only did not become %v within %s", want, within)
	return 0
}

// mysqlFreezeHoldsFor fails if read_only changes during d.
func mysqlFreezeHoldsFor(t *testing.T, db *sql.DB, want bool, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if mysqlFreezeReadOnly(t, db) != want {
			t.Fatalf("read_only changed to %v", !want)
		}
	}
}

func mysqlFreezeApp(t *testing.T, l *lab.Lab) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "app", "app-pass-1", "tcp", l.Source.Addr, "shop"
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func mysqlFreezeReceipt(t *testing.T, raw json.RawMessage) actions.MySQLFreezeReceipt {
	t.Helper()
	var rc actions.MySQLFreezeReceipt
	if err := json.Unmarshal(raw, &rc); err != nil {
		t.Fatalf("receipt %s: %v", raw, err)
	}
	return rc
}

// mysqlFreezeWatchdogGone reports whether the watchdog process has ended.
func mysqlFreezeWatchdogGone(rc actions.MySQLFreezeReceipt) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", rc.WatchdogPID))
	return err != nil || !strings.Contains(string(b), rc.WatchdogDir)
}

func mysqlFreezeWaitGone(t *testing.T, rc actions.MySQLFreezeReceipt) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if mysqlFreezeWatchdogGone(rc) {
			return
		}
	}
	t.Fatalf("watchdog pid %d still runs", rc.WatchdogPID)
}

// mysql.freeze against the lab's source: read_only on, writes refused,
// the budget enforced by decant and, when decant is gone, by the watchdog
// on the server's host; undo and mysql.unfreeze end it.
func TestMySQLFreeze(t *testing.T) {
	l := mysqlUsersStartLab(t)
	src := mysqlUsersRoot(t, l, l.Source)
	mysqlUsersExec(t, src, "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"CREATE USER 'app'@'%' IDENTIFIED BY 'app-pass-1'", "GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO 'app'@'%'")
	app := mysqlFreezeApp(t, l)
	t.Cleanup(func() { mysqlUsersExec(t, src, "SET GLOBAL read_only = OFF") })
	// "frozen" is the source server reached through the SSH host: its
	// watchdog runs in an SSH session that ends.
	extra := fmt.Sprintf("frozen:\n  host: target\n  address: %q\n  options: %q\n", l.Source.Addr, l.Source.OptionFile)
	e := mysqlUsersEngine(t, l, extra, "freeze_budget: 2s", `- name: freeze
  steps:
    - id: budget
      action: mysql.freeze
    - id: dies
      action: mysql.freeze
      with: {endpoint: frozen, budget: 3s}
    - id: undo
      action: mysql.freeze
      with: {budget: 60s}
    - id: writers
      action: mysql.freeze
      with: {budget: 60s, wait: 1s}
    - id: kill
      action: mysql.freeze
      with: {budget: 60s, wait: 1s, kill_writers: true}
    - id: hold
      action: mysql.freeze
    - id: keep
      action: mysql.unfreeze
      with: {keep_read_only: true}
    - id: long
      action: mysql.freeze
      with: {budget: 60s}
    - id: lift
      action: mysql.unfreeze
`)
	ctx := mysqlUsersCtx(t)

	t.Run("budget from settings, lifted by decant", func(t *testing.T) {
		p, err := e.Plan(ctx, "budget")
		if err != nil || p.Noop || !strings.Contains(p.Summary, "for at most 2s") {
			t.Fatalf("plan: %v %+v", err, p)
		}
		var bypass bool
		for _, c := range p.Changes {
			bypass = bypass || strings.Contains(c.What, "read_only does not stop")
		}
		if bypass {
			t.Errorf("app has no admin privilege, yet the plan says read_only does not stop some account: %+v", p.Changes)
		}
		if err := e.Run(ctx, "budget", nil); err != nil {
			t.Fatal(err)
		}
		frozenAt := time.Now()
		if !mysqlFreezeReadOnly(t, src) {
			t.Fatal("read_only is off after the freeze")
		}
		_, err = app.Exec("INSERT INTO orders (v) VALUES (1)")
		if me, ok := err.(*mysql.MySQLError); !ok || me.Number != 1290 {
			t.Fatalf("the application still writes: %v", err)
		}
		mysqlFreezeWaitReadOnly(t, src, false, 6*time.Second)
		if took := time.Since(frozenAt); took < 1200*time.Millisecond {
			t.Fatalf("lifted after %s, before the 2s budget", took)
		}
		if _, err := app.Exec("INSERT INTO orders (v) VALUES (2)"); err != nil {
			t.Fatalf("writes are not back: %v", err)
		}
		rc := mysqlFreezeReceipt(t, e.State("budget").Receipt)
		mysqlFreezeWaitGone(t, rc)
		j := mysqlUsersJournal(t, e)
		if !strings.Contains(j, "frozen 1s of 2s budget") || !strings.Contains(j, "freeze budget of 2s used up") || !strings.Contains(j, "decant lifted the freeze") {
			t.Fatalf("journal lacks the per-second and budget lines:\n%s", j)
		}
	})

	t.Run("decant gone: the watchdog lifts it at the deadline", func(t *testing.T) {
		if err := e.Run(ctx, "dies", nil); err != nil {
			t.Fatal(err)
		}
		rc := mysqlFreezeReceipt(t, e.State("dies").Receipt)
		actions.MySQLFreezeForgetTimer(rc.StateFile) // what a killed decant leaves behind
		if !mysqlFreezeReadOnly(t, src) || mysqlFreezeWatchdogGone(rc) {
			t.Fatal("not frozen, or no watchdog")
		}
		took := mysqlFreezeWaitReadOnly(t, src, false, 8*time.Second)
		if lifted, err := os.ReadFile(rc.WatchdogDir + "/lifted"); err != nil || len(lifted) == 0 {
			t.Fatalf("read_only went off after %s but not by the watchdog: %v", took, err)
		}
		// Undo afterwards says what happened and restores nothing wrongly.
		if err := e.Undo(ctx, "dies"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(mysqlUsersJournal(t, e), "already lifted the freeze") {
			t.Error("undo does not report the watchdog's lift")
		}
	})

	t.Run("undo ends it before the budget", func(t *testing.T) {
		if err := e.Run(ctx, "undo", nil); err != nil {
			t.Fatal(err)
		}
		rc := mysqlFreezeReceipt(t, e.State("undo").Receipt)
		if rc.ReadOnly || !mysqlFreezeReadOnly(t, src) {
			t.Fatalf("receipt %+v", rc)
		}
		if err := e.Undo(ctx, "undo"); err != nil {
			t.Fatal(err)
		}
		if mysqlFreezeReadOnly(t, src) {
			t.Fatal("undo left read_only on")
		}
		mysqlFreezeWaitGone(t, rc)
		if _, err := os.Stat(rc.WatchdogDir + "/armed"); !os.IsNotExist(err) {
			t.Fatalf("watchdog still armed: %v", err)
		}
	})

	t.Run("open write transactions: lift and fail, or kill them", func(t *testing.T) {
		conn, err := app.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO orders (v) VALUES (3)"); err != nil {
			t.Fatal(err)
		}
		// InnoDB refreshes INNODB_TRX at most every 100ms: wait until the
		// transaction shows before asking the plan about it.
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(150 * time.Millisecond) {
			var n int
			if err := src.QueryRow("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the open transaction never shows in INNODB_TRX")
			}
		}
		p, err := e.Plan(ctx, "writers")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fmt.Sprint(p.Changes), "app@") {
			t.Errorf("plan does not show the open transaction: %+v", p.Changes)
		}
		err = e.Run(ctx, "writers", nil)
		if err == nil || !strings.Contains(err.Error(), "write transactions still open") || !strings.Contains(err.Error(), "the freeze was lifted") {
			t.Fatalf("freeze with an open write transaction: %v", err)
		}
		if mysqlFreezeReadOnly(t, src) {
			t.Fatal("the failed freeze left read_only on")
		}
		if err := e.Run(ctx, "kill", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err == nil {
			t.Fatal("the killed session could still commit")
		}
		var n int
		if err := src.QueryRow("SELECT COUNT(*) FROM shop.orders WHERE v = 3").Scan(&n); err != nil || n != 0 {
			t.Fatalf("the killed transaction's row: %d %v", n, err)
		}
		if err := e.Undo(ctx, "kill"); err != nil {
			t.Fatal(err)
		}
		if err := e.Undo(ctx, "writers"); err != nil {
			t.Fatal(err)
		}
		if mysqlFreezeReadOnly(t, src) {
			t.Fatal("read_only left on")
		}
	})

	t.Run("unfreeze keep_read_only stops the budget, the server stays read-only", func(t *testing.T) {
		if err := e.Run(ctx, "hold", nil); err != nil {
			t.Fatal(err)
		}
		rc := mysqlFreezeReceipt(t, e.State("hold").Receipt)
		if err := e.Run(ctx, "keep", nil); err != nil {
			t.Fatal(err)
		}
		mysqlFreezeWaitGone(t, rc)
		mysqlFreezeHoldsFor(t, src, true, time.Until(rc.Deadline)+1500*time.Millisecond)
		mysqlUsersExec(t, src, "SET GLOBAL read_only = OFF")
	})

	t.Run("unfreeze lifts it", func(t *testing.T) {
		if p, err := e.Plan(ctx, "lift"); err != nil || !p.Noop {
			t.Fatalf("unfreeze with no freeze: %v %+v", err, p)
		}
		if err := e.Run(ctx, "long", nil); err != nil {
			t.Fatal(err)
		}
		if err := e.Run(ctx, "lift", nil); err != nil {
			t.Fatal(err)
		}
		if mysqlFreezeReadOnly(t, src) {
			t.Fatal("unfreeze left read_only on")
		}
		mysqlFreezeWaitGone(t, mysqlFreezeReceipt(t, e.State("long").Receipt))
	})
}
