package actions_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// mysqlUsersStartLab starts a lab (two MariaDB servers and sshd) for one
// top-level test; its subtests share it.
func mysqlUsersStartLab(t *testing.T) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop() })
	return l
}

// mysqlUsersEngine opens an engine on a runbook whose source is this
// machine and whose target is the lab's sshd (MySQL through the tunnel).
// extra is added under mysql: (more endpoints); settings is the settings: body.
func mysqlUsersEngine(t *testing.T, l *lab.Lab, extra, settings, phases string) *runbook.Engine {
	t.Helper()
	if settings == "" {
		settings = "freeze_budget: 90s"
	}
	src := fmt.Sprintf(`name: mysql actions test
hosts:
  source: {address: local}
  target:
    address: %q
    key: %q
    known_hosts: %q
mysql:
  source:
    host: source
    address: %q
    options: %q
  target:
    host: target
    address: %q
    options: %q
    debian_cnf: %q
%s
settings:
%s
phases:
%s
`, labtest.SSHHost(l), l.SSH.ClientKeyFile, l.SSH.KnownHostsFile, l.Source.Addr, l.Source.OptionFile,
		l.Target.Addr, l.Target.OptionFile, l.Target.DebianCnf, labtest.Indent(extra, 2), labtest.Indent(settings, 2), labtest.Indent(phases, 2))
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse(path, []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mysqlUsersCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// mysqlUsersCheck runs a check step and returns its worst status and findings.
func mysqlUsersCheck(t *testing.T, e *runbook.Engine, id string) (steps.Status, []steps.Finding) {
	t.Helper()
	err := e.Run(mysqlUsersCtx(t), id, nil)
	if err != nil && !errors.Is(err, runbook.ErrCheckFailed) {
		t.Fatalf("run %s: %v", id, err)
	}
	s := e.State(id)
	return steps.Worst(s.Findings), s.Findings
}

func mysqlUsersExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func mysqlUsersRoot(t *testing.T, l *lab.Lab, m *lab.MariaDB) *sql.DB {
	t.Helper()
	db, err := l.RootDB(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mysqlUsersCount(t *testing.T, db *sql.DB, user, host string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?", user, host).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func mysqlUsersJournal(t *testing.T, e *runbook.Engine) string {
	t.Helper()
	b, err := os.ReadFile(e.JournalPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mysqlUsersLogin logs in to the lab's target as user through the lab's
// sshd (the tunnel decant uses) and runs stmts.
func mysqlUsersLogin(t *testing.T, l *lab.Lab, user, password string, stmts ...string) error {
	t.Helper()
	ctx := mysqlUsersCtx(t)
	h, err := hosts.DialSSH(ctx, hosts.SSHConfig{Name: "target", Address: labtest.SSHHost(l), KeyFile: l.SSH.ClientKeyFile, KnownHosts: l.SSH.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	db, err := mysqlx.Open(ctx, h, mysqlx.Endpoint{Name: "target", Address: l.Target.Addr, User: user, Password: password}, secret.NewSet())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// mysql.copy_users against the real lab: accounts and roles re-created on
// the target with their password and grants, able to log in through the
// tunnel at once; what cannot carry over is reported; undo drops them.
func TestMySQLCopyUsers(t *testing.T) {
	l := mysqlUsersStartLab(t)
	src, tgt := mysqlUsersRoot(t, l, l.Source), mysqlUsersRoot(t, l, l.Target)
	mysqlUsersExec(t, src,
		"INSTALL SONAME 'auth_ed25519'",
		"CREATE DATABASE app",
		"CREATE TABLE app.items (id INT PRIMARY KEY, secret_note TEXT)",
		"CREATE ROLE reader",
		"GRANT SELECT ON app.* TO reader",
		"CREATE USER 'shop'@'%' IDENTIFIED BY 'shop-pass-1'",
		"GRANT ALL PRIVILEGES ON app.* TO 'shop'@'%'",
		"GRANT PROCESS, BINLOG MONITOR ON *.* TO 'shop'@'%'",
		"CREATE USER 'ro'@'%' IDENTIFIED BY 'ro-pass-1'",
		"GRANT reader TO 'ro'@'%'",
		"SET DEFAULT ROLE reader FOR 'ro'@'%'",
		"CREATE USER 'col'@'%' IDENTIFIED BY 'col-pass-1'",
		"GRANT SELECT (id) ON app.items TO 'col'@'%'",
		"CREATE USER 'edna'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('edna-pass-1')",
		"CREATE USER 'locked'@'%' IDENTIFIED BY 'locked-pass-1' ACCOUNT LOCK",
	)
	var shopHash string
	if err := src.QueryRow("SELECT authentication_string FROM mysql.user WHERE User='shop'").Scan(&shopHash); err != nil || len(shopHash) != 41 {
		t.Fatalf("shop's hash %q: %v", shopHash, err)
	}
	mysqlUsersExec(t, tgt, "CREATE DATABASE app")

	e := mysqlUsersEngine(t, l, "", "", `- name: prepare
  steps:
    - id: users
      action: mysql.copy_users
    - id: dsm
      action: mysql.copy_users
      with: {accounts: [debian-sys-maint@localhost]}
    - check: mysql.users
      with: {expect: present, exclude: [edna]}
    - check: mysql.debian_sys_maint
`)
	ctx := mysqlUsersCtx(t)
	p, err := e.Plan(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	if p.Noop || p.Total != 5 {
		t.Fatalf("plan: %+v", p)
	}
	plan := strings.Join(p.Commands, "\n")
	for _, want := range []string{"CREATE ROLE 'reader'", "CREATE USER `shop`@`%` IDENTIFIED BY PASSWORD '[REDACTED]'", "GRANT `reader` TO `ro`@`%`", "ACCOUNT LOCK"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan commands lack %q:\n%s", want, plan)
		}
	}
	var changes []string
	for _, c := range p.Changes {
		changes = append(changes, c.What+": "+c.Before+" -> "+c.After)
	}
	all := strings.Join(changes, "\n")
	for _, want := range []string{"account 'edna'@'%': missing -> NOT carried over", "INSTALL SONAME 'auth_ed25519'",
		"account 'col'@'%': missing -> created (mysql_native_password, 2 grant lines); 1 grants wait for their tables",
		"system accounts: 'debian-sys-maint'@'localhost'"} {
		if !strings.Contains(all, want) {
			t.Errorf("plan changes lack %q:\n%s", want, all)
		}
	}

	if err := e.Run(ctx, "users", nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range [][2]string{{"shop", "%"}, {"ro", "%"}, {"col", "%"}, {"locked", "%"}, {"reader", ""}} {
		if mysqlUsersCount(t, tgt, a[0], a[1]) != 1 {
			t.Errorf("%s@%s not created on the target", a[0], a[1])
		}
	}
	if mysqlUsersCount(t, tgt, "edna", "%") != 0 {
		t.Error("edna was created although the target lacks ed25519")
	}
	// Same password, same privileges, at once: no restart, no FLUSH PRIVILEGES.
	if err := mysqlUsersLogin(t, l, "shop", "shop-pass-1", "CREATE TABLE app.orders (id INT)", "INSERT INTO app.orders VALUES (1)"); err != nil {
		t.Fatalf("shop cannot work on the target: %v", err)
	}
	if err := mysqlUsersLogin(t, l, "shop", "wrong-pass"); err == nil {
		t.Fatal("shop logs in with a wrong password")
	}
	if err := mysqlUsersLogin(t, l, "ro", "ro-pass-1", "SELECT * FROM app.orders"); err != nil {
		t.Fatalf("ro (through its default role) cannot read: %v", err)
	}
	if err := mysqlUsersLogin(t, l, "ro", "ro-pass-1", "INSERT INTO app.orders VALUES (2)"); err == nil {
		t.Fatal("ro can write")
	}
	if err := mysqlUsersLogin(t, l, "locked", "locked-pass-1"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("locked account: %v", err)
	}
	var grants []string
	rows, err := tgt.Query("SHOW GRANTS FOR 'shop'@'%'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	if g := strings.Join(grants, "\n"); !strings.Contains(g, "BINLOG MONITOR") || !strings.Contains(g, "ALL PRIVILEGES ON `app`.*") {
		t.Errorf("shop's grants on the target:\n%s", g)
	}
	j := mysqlUsersJournal(t, e)
	if strings.Contains(j, shopHash) || strings.Contains(j, strings.TrimPrefix(shopHash, "*")) {
		t.Fatal("the journal holds a password hash")
	}
	if !strings.Contains(j, "'edna'@'%' NOT carried over") {
		t.Error("edna's skip is not in the journal")
	}
	st := e.State("users")
	if !strings.Contains(string(st.Receipt), `"user":"reader"`) || strings.Contains(string(st.Receipt), "edna\",\"host") {
		t.Errorf("receipt: %s", st.Receipt)
	}
	// Everything there now: a second plan has nothing to create.
	if p, err := e.Plan(ctx, "users"); err != nil || !p.Noop {
		t.Fatalf("second plan: %v %+v", err, p)
	}
	// col's column grant waits for its table: the check after the copy says so.
	status, fs := mysqlUsersCheck(t, e, "prepare/mysql.users")
	if status != steps.Warn {
		t.Fatalf("check after the action: %s %+v", status, fs)
	}
	var colMsg string
	for _, f := range fs {
		if f.Subject == "'col'@'%'" {
			colMsg = f.Message
		}
		if f.Subject == "'shop'@'%'" && f.Status != steps.Pass {
			t.Errorf("shop: %+v", f)
		}
	}
	if !strings.Contains(colMsg, "grants missing on the target: GRANT SELECT (`id`) ON `app`.`items`") {
		t.Errorf("col: %q", colMsg)
	}

	// Copying debian-sys-maint (named) reproduces the classic failure: the
	// target's debian.cnf no longer matches; the check catches it.
	if status, _ := mysqlUsersCheck(t, e, "prepare/mysql.debian_sys_maint"); status != steps.Fail {
		t.Fatalf("debian check before: %s", status)
	}
	if err := e.Run(ctx, "dsm", nil); err != nil {
		t.Fatal(err)
	}
	if mysqlUsersCount(t, tgt, "debian-sys-maint", "localhost") != 1 {
		t.Fatal("named system account not copied")
	}
	status, fs = mysqlUsersCheck(t, e, "prepare/mysql.debian_sys_maint")
	if status != steps.Fail || !strings.Contains(fs[0].Message, "Access denied") || !strings.Contains(fs[0].Fix, "ALTER USER 'debian-sys-maint'@'localhost'") {
		t.Fatalf("debian check after copying the source's account: %s %+v", status, fs)
	}

	if err := e.Undo(ctx, "dsm"); err != nil {
		t.Fatal(err)
	}
	if err := e.Undo(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	for _, a := range [][2]string{{"shop", "%"}, {"ro", "%"}, {"col", "%"}, {"locked", "%"}, {"reader", ""}, {"debian-sys-maint", "localhost"}} {
		if mysqlUsersCount(t, tgt, a[0], a[1]) != 0 {
			t.Errorf("undo left %s@%s", a[0], a[1])
		}
	}
	if mysqlUsersCount(t, tgt, "root", "localhost") != 1 {
		t.Fatal("undo touched root")
	}
}
