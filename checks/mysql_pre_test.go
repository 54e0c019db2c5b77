package checks_test

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

	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// mysqlPreStartLab starts a lab (two MariaDB servers and sshd) for one
// top-level test; its subtests share it.
func mysqlPreStartLab(t *testing.T) *lab.Lab {
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

// mysqlPreEngine writes a runbook whose source is this machine and whose
// target is the lab's sshd, with the lab's two servers as endpoints (the
// target reached through the SSH tunnel), and opens an engine on it.
func mysqlPreEngine(t *testing.T, l *lab.Lab, steps string) *runbook.Engine {
	t.Helper()
	src := fmt.Sprintf(`name: mysql preflight test
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
phases:
  - name: preflight
    steps:
%s
`, labtest.SSHHost(l), l.SSH.ClientKeyFile, l.SSH.KnownHostsFile, l.Source.Addr, l.Source.OptionFile,
		l.Target.Addr, l.Target.OptionFile, l.Target.DebianCnf, labtest.Indent(steps, 6))
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

// mysqlPreRun runs a check step through the engine and returns its findings.
func mysqlPreRun(t *testing.T, e *runbook.Engine, id string) (steps.Status, []steps.Finding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := e.Run(ctx, id, nil)
	if err != nil && !errors.Is(err, runbook.ErrCheckFailed) {
		t.Fatalf("run %s: %v", id, err)
	}
	s := e.State(id)
	return steps.Worst(s.Findings), s.Findings
}

func mysqlPreFind(fs []steps.Finding, subject, text string) *steps.Finding {
	for i := range fs {
		if (subject == "" || fs[i].Subject == subject) && strings.Contains(fs[i].Message, text) {
			return &fs[i]
		}
	}
	return nil
}

func mysqlPreMust(t *testing.T, fs []steps.Finding, st steps.Status, subject, text string) *steps.Finding {
	t.Helper()
	f := mysqlPreFind(fs, subject, text)
	if f == nil || f.Status != st {
		t.Fatalf("want a %s finding on %q containing %q; findings:\n%s", st, subject, text, mysqlPreDump(fs))
	}
	return f
}

func mysqlPreDump(fs []steps.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s [%s] %s | fix: %s | action: %s\n", f.Status, f.Subject, f.Message, f.Fix, f.FixAction)
	}
	return b.String()
}

func mysqlPreExec(t *testing.T, db *sql.DB, stmts ...string) {
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

func mysqlPreRoot(t *testing.T, m *lab.MariaDB, l *lab.Lab) *sql.DB {
	t.Helper()
	db, err := l.RootDB(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The MySQL preflight checks against the real lab: two MariaDB 10.11
// servers, the target behind sshd.
func TestMySQLPreflightLab(t *testing.T) {
	l := mysqlPreStartLab(t)
	src, tgt := mysqlPreRoot(t, l.Source, l), mysqlPreRoot(t, l.Target, l)

	t.Run("version same series passes", func(t *testing.T) {
		e := mysqlPreEngine(t, l, "- check: mysql.version\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.version")
		if st != steps.Pass {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Pass, "versions", "same flavour and release series")
		mysqlPreMust(t, fs, steps.Pass, "data", "no incompatibility found")
	})

	t.Run("version against a MySQL 8.0 profile lists this data's problems", func(t *testing.T) {
		mysqlPreExec(t, src,
			"SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
			"CREATE DATABASE shop",
			"CREATE TABLE shop.`rank` (id INT PRIMARY KEY, `groups` VARCHAR(20))",
			"CREATE TABLE shop.orders (id INT PRIMARY KEY, placed DATE, note VARCHAR(40) CHARACTER SET utf8mb3)",
			"INSERT INTO shop.orders VALUES (1, '0000-00-00', 'x'), (2, '2024-05-01', 'y')",
			"CREATE OR REPLACE USER 'legacy'@'%' IDENTIFIED VIA mysql_old_password USING '7c9e0a41222752fa'",
			"CREATE DEFINER='nobody'@'localhost' VIEW shop.v AS SELECT 1 AS one",
		)
		t.Cleanup(func() { mysqlPreExec(t, src, "DROP DATABASE shop", "DROP USER 'legacy'@'%'") })
		e := mysqlPreEngine(t, l, "- check: mysql.version\n  with: {profile: mysql-8.0}\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.version")
		if st != steps.Fail {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Warn, "versions", "different flavours (MariaDB to MySQL)")
		f := mysqlPreMust(t, fs, steps.Warn, "reserved-words", "table shop.rank")
		if !strings.Contains(f.Message, "column shop.rank.groups") || strings.Contains(f.Message, "orders") || f.Fix == "" {
			t.Errorf("reserved-words finding: %+v", f)
		}
		mysqlPreMust(t, fs, steps.Warn, "zero-dates", "column shop.orders.placed (1 rows)")
		mysqlPreMust(t, fs, steps.Warn, "utf8mb3", "column shop.orders.note")
		mysqlPreMust(t, fs, steps.Warn, "sql-mode-removed", "NO_AUTO_CREATE_USER")
		mysqlPreMust(t, fs, steps.Fail, "auth-plugins", "account 'legacy'@'%' (mysql_old_password)")
		mysqlPreMust(t, fs, steps.Warn, "definers-orphaned", "view shop.v (DEFINER 'nobody'@'localhost')")
		for _, f := range fs {
			if f.Status != steps.Pass && f.Fix == "" {
				t.Errorf("finding without a fix: %+v", f)
			}
		}
	})

	t.Run("version warns on an upgrade or a downgrade of the same flavour", func(t *testing.T) {
		e := mysqlPreEngine(t, l, "- check: mysql.version\n  with: {profile: mariadb-11.4}\n- check: mysql.version\n  with: {profile: mariadb-10.3}\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.version")
		if st != steps.Warn {
			t.Fatalf("upgrade: %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Warn, "versions", "upgrade from 10.11 to 11.4")
		mysqlPreMust(t, fs, steps.Pass, "data", "no incompatibility found in this data")
		st, fs = mysqlPreRun(t, e, "preflight/mysql.version#2")
		if st != steps.Warn {
			t.Fatalf("downgrade: %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Warn, "versions", "the target is an OLDER release")
	})

	t.Run("version fails when the target cannot be reached", func(t *testing.T) {
		e := mysqlPreEngine(t, l, "- check: mysql.version\n  with: {target: nowhere}\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.version")
		if st != steps.Fail || mysqlPreFind(fs, "nowhere", "cannot connect") == nil {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
	})

	t.Run("debian_sys_maint fails while the target lacks the account", func(t *testing.T) {
		e := mysqlPreEngine(t, l, "- check: mysql.debian_sys_maint\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.debian_sys_maint")
		if st != steps.Fail {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
		f := mysqlPreMust(t, fs, steps.Fail, l.Target.DebianCnf, "Access denied")
		if f.FixAction != "mysql.fix_debian_sys_maint" || !strings.Contains(f.Fix, "CREATE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY '<password from ") ||
			!strings.Contains(f.Fix, "GRANT ALL PRIVILEGES ON *.* TO 'debian-sys-maint'@'localhost' WITH GRANT OPTION") {
			t.Errorf("fix: %+v", f)
		}
		pw := mysqlPreDebianPassword(t, l.Target.DebianCnf)
		j, _ := os.ReadFile(e.JournalPath())
		if strings.Contains(string(j), pw) {
			t.Fatal("the journal holds debian.cnf's password")
		}
		// With the account in place (as Debian's postinst makes it), it passes.
		mysqlPreExec(t, tgt, fmt.Sprintf("CREATE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY '%s'", pw),
			"GRANT ALL PRIVILEGES ON *.* TO 'debian-sys-maint'@'localhost' WITH GRANT OPTION")
		t.Cleanup(func() { mysqlPreExec(t, tgt, "DROP USER IF EXISTS 'debian-sys-maint'@'localhost'") })
		st, fs = mysqlPreRun(t, e, "preflight/mysql.debian_sys_maint")
		if st != steps.Pass {
			t.Fatalf("after creating the account: %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Pass, l.Target.DebianCnf, "logged in as 'debian-sys-maint'@'localhost'")
		// Without ALL PRIVILEGES it logs in but warns.
		mysqlPreExec(t, tgt, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'debian-sys-maint'@'localhost'")
		st, fs = mysqlPreRun(t, e, "preflight/mysql.debian_sys_maint")
		if st != steps.Warn || !strings.Contains(fs[0].Fix, "ALTER USER 'debian-sys-maint'@'localhost'") {
			t.Fatalf("without privileges: %s:\n%s", st, mysqlPreDump(fs))
		}
	})

	t.Run("debian_sys_maint warns on a Debian host without debian.cnf", func(t *testing.T) {
		if _, err := os.Stat("/etc/debian_version"); err == nil {
			// This box is Debian: a missing file is a warning here.
			e := mysqlPreEngine(t, l, "- check: mysql.debian_sys_maint\n  with: {path: /nonexistent/debian.cnf}\n")
			st, fs := mysqlPreRun(t, e, "preflight/mysql.debian_sys_maint")
			if st != steps.Warn {
				t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
			}
			mysqlPreMust(t, fs, steps.Warn, "/nonexistent/debian.cnf", "is a Debian-family host but has no")
			return
		}
		t.Fatal("the lab runs on Debian; this test expects /etc/debian_version")
	})

	t.Run("space passes with room and fails without", func(t *testing.T) {
		mysqlPreExec(t, src, "CREATE DATABASE blobs", "CREATE TABLE blobs.b (id INT PRIMARY KEY, v LONGBLOB)",
			"INSERT INTO blobs.b SELECT seq, REPEAT('x', 100000) FROM blobs.seq_1_to_40", "ANALYZE TABLE blobs.b")
		t.Cleanup(func() { mysqlPreExec(t, src, "DROP DATABASE blobs") })
		e := mysqlPreEngine(t, l, "- check: mysql.space\n- check: mysql.space\n  with: {reserve: 1P}\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.space")
		if st != steps.Pass {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
		db := mysqlPreMust(t, fs, steps.Pass, "blobs", "largest blobs.b")
		if !strings.Contains(db.Message, "MiB") {
			t.Errorf("blobs size: %s", db.Message)
		}
		mysqlPreMust(t, fs, steps.Pass, "space", l.Target.DataDir)
		st, fs = mysqlPreRun(t, e, "preflight/mysql.space#2")
		if st != steps.Fail {
			t.Fatalf("with reserve 1P: %s:\n%s", st, mysqlPreDump(fs))
		}
		f := mysqlPreMust(t, fs, steps.Fail, "space", "not enough space")
		if !strings.Contains(f.Message, "reserve 1.0 PiB") || f.Fix == "" {
			t.Errorf("space finding: %+v", f)
		}
	})

	t.Run("users lists accounts, what will carry over and what will not", func(t *testing.T) {
		mysqlPreExec(t, src,
			"INSTALL SONAME 'auth_ed25519'",
			"CREATE DATABASE crm",
			"CREATE USER 'crm'@'%' IDENTIFIED BY 'crm-pass-1'",
			"GRANT SELECT, INSERT ON crm.* TO 'crm'@'%'",
			"CREATE USER 'edna'@'localhost' IDENTIFIED VIA ed25519 USING PASSWORD('edna-pass-1')",
			"CREATE USER 'web'@'web1.example.com' IDENTIFIED BY 'web-pass-1'",
		)
		t.Cleanup(func() {
			mysqlPreExec(t, src, "DROP DATABASE crm", "DROP USER 'crm'@'%', 'edna'@'localhost', 'web'@'web1.example.com'")
		})
		e := mysqlPreEngine(t, l, "- check: mysql.users\n- check: mysql.users\n  with: {expect: present, exclude: [edna]}\n")
		st, fs := mysqlPreRun(t, e, "preflight/mysql.users")
		if st != steps.Fail {
			t.Fatalf("status %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Pass, "'crm'@'%'", "missing on the target: mysql.copy_users will create it")
		f := mysqlPreMust(t, fs, steps.Fail, "'edna'@'localhost'", "cannot carry over")
		if !strings.Contains(f.Fix, "INSTALL SONAME 'auth_ed25519'") {
			t.Errorf("edna fix: %+v", f)
		}
		mysqlPreMust(t, fs, steps.Warn, "'web'@'web1.example.com'", "skip_name_resolve")
		mysqlPreMust(t, fs, steps.Pass, "system accounts", "'root'@'localhost'")

		// After the action (here: by hand) the account is present.
		mysqlPreExec(t, tgt, "CREATE USER 'crm'@'%' IDENTIFIED BY 'crm-pass-1'", "GRANT SELECT, INSERT ON crm.* TO 'crm'@'%'")
		t.Cleanup(func() { mysqlPreExec(t, tgt, "DROP USER IF EXISTS 'crm'@'%', 'web'@'web1.example.com'") })
		st, fs = mysqlPreRun(t, e, "preflight/mysql.users#2")
		if st != steps.Fail {
			t.Fatalf("expect present: %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Pass, "'crm'@'%'", "present on the target with the same authentication")
		if f := mysqlPreMust(t, fs, steps.Fail, "'web'@'web1.example.com'", "missing on the target"); f.FixAction != "mysql.copy_users" {
			t.Errorf("missing account: %+v", f)
		}
		if mysqlPreFind(fs, "'edna'@'localhost'", "") != nil {
			t.Error("excluded account reported")
		}
		// A different password on the target is reported.
		mysqlPreExec(t, tgt, "ALTER USER 'crm'@'%' IDENTIFIED BY 'other-pass'", "CREATE USER 'web'@'web1.example.com' IDENTIFIED BY 'web-pass-1'")
		st, fs = mysqlPreRun(t, e, "preflight/mysql.users#2")
		if st != steps.Warn {
			t.Fatalf("different password: %s:\n%s", st, mysqlPreDump(fs))
		}
		mysqlPreMust(t, fs, steps.Warn, "'crm'@'%'", "a different password")
	})
}

func mysqlPreDebianPassword(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "password" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no password in " + path)
	return ""
}
