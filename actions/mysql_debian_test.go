package actions_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/steps"
)

// mysqlDebianLoginSocket logs in on the target's socket as
// debian-sys-maint@localhost with password.
func mysqlDebianLoginSocket(t *testing.T, socket, password string) error {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "debian-sys-maint", password, "unix", socket
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return db.PingContext(context.Background())
}

// The lab's target lacks debian-sys-maint (the state after an
// --all-databases import): the check fails, the fix makes it pass, undo
// brings the missing account back; an existing account with the wrong
// password is restored exactly.
func TestMySQLFixDebianSysMaint(t *testing.T) {
	l := mysqlUsersStartLab(t)
	tgt := mysqlUsersRoot(t, l, l.Target)
	e := mysqlUsersEngine(t, l, "", "", `- name: prepare
  steps:
    - check: mysql.debian_sys_maint
    - id: fix
      action: mysql.fix_debian_sys_maint
    - id: fix-again
      action: mysql.fix_debian_sys_maint
`)
	ctx := mysqlUsersCtx(t)
	pw := ""
	for _, line := range strings.Split(string(mysqlDebianRead(t, l.Target.DebianCnf)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "password" {
			pw = strings.TrimSpace(v)
		}
	}
	if pw == "" {
		t.Fatal("no password in the lab's debian.cnf")
	}
	check := "prepare/mysql.debian_sys_maint"
	if st, fs := mysqlUsersCheck(t, e, check); st != steps.Fail || fs[0].FixAction != "mysql.fix_debian_sys_maint" {
		t.Fatalf("before: %s %+v", st, fs)
	}

	p, err := e.Plan(ctx, "fix")
	if err != nil {
		t.Fatal(err)
	}
	cmds := strings.Join(p.Commands, "; ")
	if p.Noop || !strings.HasPrefix(cmds, "CREATE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY '<password from "+l.Target.DebianCnf+">'; GRANT ALL PRIVILEGES ON *.*") {
		t.Fatalf("plan: %+v", p)
	}
	if err := e.Run(ctx, "fix", nil); err != nil {
		t.Fatal(err)
	}
	if st, fs := mysqlUsersCheck(t, e, check); st != steps.Pass {
		t.Fatalf("after the fix: %s %+v", st, fs)
	}
	if p, err := e.Plan(ctx, "fix-again"); err != nil || !p.Noop {
		t.Fatalf("plan after the fix: %v %+v", err, p)
	}
	var rc actions.MySQLDebianReceipt
	if err := json.Unmarshal(e.State("fix").Receipt, &rc); err != nil || rc.Existed || rc.User != "debian-sys-maint" {
		t.Fatalf("receipt %s: %v", e.State("fix").Receipt, err)
	}
	if strings.Contains(mysqlUsersJournal(t, e), pw) {
		t.Fatal("the journal holds debian.cnf's password")
	}

	if err := e.Undo(ctx, "fix"); err != nil {
		t.Fatal(err)
	}
	if mysqlUsersCount(t, tgt, "debian-sys-maint", "localhost") != 0 {
		t.Fatal("undo left the account the fix created")
	}
	if st, _ := mysqlUsersCheck(t, e, check); st != steps.Fail {
		t.Fatalf("after undo: %s", st)
	}

	// An account that exists with an old password and only SELECT.
	mysqlUsersExec(t, tgt, "CREATE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY 'old-dsm-pass'",
		"GRANT SELECT ON *.* TO 'debian-sys-maint'@'localhost'")
	p, err = e.Plan(ctx, "fix-again")
	if err != nil || p.Noop || !strings.HasPrefix(strings.Join(p.Commands, "; "), "ALTER USER 'debian-sys-maint'@'localhost' IDENTIFIED BY '<password from") {
		t.Fatalf("plan for an existing account: %v %+v", err, p)
	}
	if err := e.Run(ctx, "fix-again", nil); err != nil {
		t.Fatal(err)
	}
	if err := mysqlDebianLoginSocket(t, l.Target.Socket, pw); err != nil {
		t.Fatalf("debian.cnf's password does not work after the fix: %v", err)
	}
	if err := json.Unmarshal(e.State("fix-again").Receipt, &rc); err != nil || !rc.Existed || rc.Backup == "" {
		t.Fatalf("receipt %s: %v", e.State("fix-again").Receipt, err)
	}
	if fi, err := os.Stat(rc.Backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup %s: %v %v", rc.Backup, fi, err)
	}
	if err := e.Undo(ctx, "fix-again"); err != nil {
		t.Fatal(err)
	}
	if err := mysqlDebianLoginSocket(t, l.Target.Socket, "old-dsm-pass"); err != nil {
		t.Fatalf("undo did not restore the old password: %v", err)
	}
	var grants string
	if err := tgt.QueryRow("SHOW GRANTS FOR 'debian-sys-maint'@'localhost'").Scan(&grants); err != nil || !strings.HasPrefix(grants, "GRANT SELECT ON *.*") {
		t.Fatalf("undo did not restore the grants: %q %v", grants, err)
	}
}

func mysqlDebianRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
