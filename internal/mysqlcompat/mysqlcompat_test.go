package mysqlcompat

import (
	"context"
	"database/sql"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(labtest.Main(m, &theLab, lab.Options{NoSSH: true}))
}

func rootDB(t *testing.T, m *lab.MariaDB) *sql.DB {
	t.Helper()
	db, err := theLab.RootDB(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
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

// fixture builds, in the lab's source MariaDB, a database holding one
// example of each incompatibility a MySQL 8.0 target has with it.
func fixture(t *testing.T, db *sql.DB, name string) {
	t.Helper()
	q := QuoteIdent(name)
	execAll(t, db,
		"SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
		"DROP DATABASE IF EXISTS "+q,
		"CREATE DATABASE "+q+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
		"USE "+q,
		"CREATE TABLE `rank` (id INT PRIMARY KEY, `groups` VARCHAR(20)) ENGINE=InnoDB",
		"CREATE TABLE legacy (id INT PRIMARY KEY, title VARCHAR(50) CHARACTER SET utf8mb3, born DATE DEFAULT '0000-00-00', seen DATETIME) ENGINE=InnoDB",
		"INSERT INTO legacy VALUES (1,'a','0000-00-00','2024-01-02 03:04:05'), (2,'b','2020-00-10',NULL), (3,'c','2021-01-01','0000-00-00 00:00:00')",
		"CREATE TABLE notes (id INT PRIMARY KEY, body TEXT DEFAULT 'none', ip INET6, token UUID) ENGINE=InnoDB",
		"CREATE TABLE scratch (id INT) ENGINE=Aria",
		"CREATE TABLE intl (id INT, name VARCHAR(20) COLLATE utf8mb4_uca1400_ai_ci)",
		"CREATE SEQUENCE ticket_seq",
		"CREATE VIEW hashed AS SELECT id, PASSWORD(`groups`) AS h FROM `rank`",
		"CREATE VIEW per_group AS SELECT `groups`, COUNT(*) AS n FROM `rank` GROUP BY `groups` DESC",
		"SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_AUTO_CREATE_USER'",
		"CREATE TRIGGER rank_ins BEFORE INSERT ON `rank` FOR EACH ROW SET NEW.`groups` = UPPER(NEW.`groups`)",
		"CREATE DEFINER='ghost'@'%' VIEW orphan AS SELECT 1 AS one",
		"CREATE DEFINER='debian-sys-maint'@'localhost' VIEW maint AS SELECT 2 AS two",
		"CREATE OR REPLACE USER 'compat_old'@'%' IDENTIFIED VIA mysql_old_password USING '7c9e0a41222752fa'",
		"CREATE OR REPLACE USER 'compat_sock'@'localhost' IDENTIFIED VIA unix_socket",
		"CREATE OR REPLACE USER 'compat_app'@'%' IDENTIFIED BY 'app-secret-1'",
	)
	t.Cleanup(func() {
		execAll(t, db, "DROP DATABASE IF EXISTS "+q, "DROP USER IF EXISTS 'compat_old'@'%', 'compat_sock'@'localhost', 'compat_app'@'%'")
	})
}

func issues(is []Issue) map[string]Issue {
	m := map[string]Issue{}
	for _, i := range is {
		m[i.ID] = i
	}
	return m
}

func hasObject(t *testing.T, is map[string]Issue, id, obj string) {
	t.Helper()
	i, ok := is[id]
	if !ok {
		t.Errorf("no %s issue; got %v", id, keys(is))
		return
	}
	for _, o := range i.Objects {
		if strings.Contains(o, obj) {
			return
		}
	}
	t.Errorf("%s: %q not among %q", id, obj, i.Objects)
}

func keys(m map[string]Issue) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Real data in the lab's MariaDB 10.11 compared with a MySQL 8.0 target
// profile: each incompatibility is found, in the objects that have it.
func TestCompareMariaDBDataWithMySQL80(t *testing.T) {
	src, tgt := rootDB(t, theLab.Source), rootDB(t, theLab.Target)
	fixture(t, src, "compat_shop")
	c := ctx(t)
	inv, err := Collect(c, src, CollectOptions{Databases: []string{"compat_shop"}, ScanZeroDates: true})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Version.Flavor != MariaDB || inv.Version.Series() != "10.11" {
		t.Fatalf("lab source version %v", inv.Version)
	}
	p, err := NamedProfile("mysql-8.0")
	if err != nil {
		t.Fatal(err)
	}
	live, err := LiveProfile(c, tgt) // only its accounts: the DEFINER check needs them
	if err != nil {
		t.Fatal(err)
	}
	p.Accounts = live.Accounts
	srcWords, err := ProbeReservedWords(c, src, inv.Identifiers())
	if err != nil {
		t.Fatal(err)
	}
	is := issues(Compare(Source{Inventory: inv, Reserved: srcWords}, p))

	hasObject(t, is, "reserved-words", "table compat_shop.rank")
	hasObject(t, is, "reserved-words", "column compat_shop.rank.groups")
	hasObject(t, is, "sql-mode-removed", "global sql_mode (NO_AUTO_CREATE_USER)")
	hasObject(t, is, "sql-mode-removed", "trigger compat_shop.rank_ins (NO_AUTO_CREATE_USER)")
	hasObject(t, is, "zero-date-defaults", "column compat_shop.legacy.born DEFAULT '0000-00-00'")
	hasObject(t, is, "zero-dates", "column compat_shop.legacy.born (2 rows)")
	hasObject(t, is, "zero-dates", "column compat_shop.legacy.seen (1 rows)")
	hasObject(t, is, "utf8mb3", "column compat_shop.legacy.title")
	hasObject(t, is, "collations", "column compat_shop.intl.name (utf8mb4_uca1400_ai_ci)")
	hasObject(t, is, "auth-plugins", "account 'compat_old'@'%' (mysql_old_password)")
	hasObject(t, is, "auth-plugins-loadable", "account 'compat_sock'@'localhost' (auth_socket)")
	hasObject(t, is, "engines", "table compat_shop.scratch (Aria)")
	hasObject(t, is, "engines", "sequence compat_shop.ticket_seq")
	hasObject(t, is, "types", "column compat_shop.notes.ip (inet6)")
	hasObject(t, is, "types", "column compat_shop.notes.token (uuid)")
	hasObject(t, is, "text-defaults", "column compat_shop.notes.body DEFAULT 'none'")
	hasObject(t, is, "removed-functions", "view compat_shop.hashed: PASSWORD")
	hasObject(t, is, "group-by-order", "view compat_shop.per_group")
	hasObject(t, is, "definers", "view compat_shop.maint (DEFINER 'debian-sys-maint'@'localhost')")
	hasObject(t, is, "definers-orphaned", "view compat_shop.orphan (DEFINER 'ghost'@'%')")

	// Nothing is reported that the data does not hold.
	for _, o := range is["reserved-words"].Objects {
		if strings.Contains(o, "legacy") || strings.Contains(o, "notes") {
			t.Errorf("reserved-words flags %q", o)
		}
	}
	if a := is["auth-plugins"]; len(a.Objects) != 1 {
		t.Errorf("auth-plugins: want only compat_old, got %q", a.Objects)
	}
	for _, o := range is["definers"].Objects {
		if strings.Contains(o, "root") {
			t.Errorf("definers flags an account the target has: %q", o)
		}
	}
	if is["collations"].Severity != Fail || is["reserved-words"].Severity != Warn {
		t.Errorf("severities: collations %s, reserved-words %s", is["collations"].Severity, is["reserved-words"].Severity)
	}
}

// The same data against the lab's real target (MariaDB 10.11 too): only
// what really differs between the two servers is reported.
func TestCompareWithLiveTarget(t *testing.T) {
	src, tgt := rootDB(t, theLab.Source), rootDB(t, theLab.Target)
	fixture(t, src, "compat_live")
	c := ctx(t)
	inv, err := Collect(c, src, CollectOptions{Databases: []string{"compat_live"}, ScanZeroDates: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := LiveProfile(c, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Live || !p.Version.SameSeries(inv.Version) {
		t.Fatalf("live profile %+v", p.Version)
	}
	if err := p.ProbeReserved(c, tgt, inv.Identifiers()); err != nil {
		t.Fatal(err)
	}
	if p.Reserved("rank") || !p.Reserved("over") {
		t.Errorf("target parser: rank reserved %v, over reserved %v", p.Reserved("rank"), p.Reserved("over"))
	}
	got := issues(Compare(Source{Inventory: inv}, p))
	want := []string{"definers", "definers-orphaned"}
	if k := keys(got); strings.Join(k, ",") != strings.Join(want, ",") {
		t.Fatalf("issues against the live target: %v, want %v\n%+v", k, want, got)
	}
	// Once the target has the account, the DEFINER is fine.
	execAll(t, tgt, "CREATE OR REPLACE USER 'debian-sys-maint'@'localhost' IDENTIFIED BY 'x-secret-9'")
	t.Cleanup(func() { execAll(t, tgt, "DROP USER IF EXISTS 'debian-sys-maint'@'localhost'") })
	p, err = LiveProfile(c, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := issues(Compare(Source{Inventory: inv}, p))["definers"]; ok {
		t.Error("definers still reported after the account was created on the target")
	}
}

// A downgrade to an older MariaDB: types and collations it lacks.
func TestCompareWithOlderMariaDB(t *testing.T) {
	src := rootDB(t, theLab.Source)
	fixture(t, src, "compat_old")
	inv, err := Collect(ctx(t), src, CollectOptions{Databases: []string{"compat_old"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NamedProfile("mariadb-10.3")
	if err != nil {
		t.Fatal(err)
	}
	is := issues(Compare(Source{Inventory: inv}, p))
	hasObject(t, is, "types", "column compat_old.notes.ip (inet6)")
	hasObject(t, is, "collations", "(utf8mb4_uca1400_ai_ci)")
	for _, id := range []string{"reserved-words", "utf8mb3", "text-defaults", "removed-functions", "engines", "zero-dates"} {
		if _, ok := is[id]; ok {
			t.Errorf("%s reported against mariadb-10.3: %+v", id, is[id])
		}
	}
}

// The release table for MariaDB 10.11 agrees with the real parser.
func TestReservedWordsMatchLabParser(t *testing.T) {
	src := rootDB(t, theLab.Source)
	var all []string
	for w := range knownReserved {
		all = append(all, w)
	}
	got, err := ProbeReservedWords(ctx(t), src, all)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ReadVersion(ctx(t), src)
	if err != nil {
		t.Fatal(err)
	}
	table := ReservedWords(v)
	for _, w := range all {
		if !plainWord(w) {
			continue
		}
		if got[w] != table[w] {
			t.Errorf("%s: parser says reserved=%v, table says %v", w, got[w], table[w])
		}
	}
	if len(got) < 200 {
		t.Fatalf("probed only %d words", len(got))
	}
}

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		ver, comment, want, series string
		f                          Flavor
	}{
		{"10.11.6-MariaDB-0+deb12u1", "Debian 12", "MariaDB 10.11.6 (Debian 12)", "10.11", MariaDB},
		{"5.5.5-10.3.39-MariaDB-0+deb10u2", "Debian 10", "MariaDB 10.3.39 (Debian 10)", "10.3", MariaDB},
		{"8.0.36-0ubuntu0.22.04.1", "(Ubuntu)", "MySQL 8.0.36 ((Ubuntu))", "8.0", MySQL},
		{"5.7.44-48", "Percona Server (GPL), Release 48", "MySQL 5.7.44 (Percona Server (GPL), Release 48)", "5.7", MySQL},
		{"8.4.0", "MySQL Community Server - GPL", "MySQL 8.4.0", "8.4", MySQL},
	} {
		v, err := ParseVersion(c.ver, c.comment)
		if err != nil {
			t.Fatal(err)
		}
		if v.String() != c.want || v.Series() != c.series || v.Flavor != c.f {
			t.Errorf("%s: got %q series %s flavour %s", c.ver, v, v.Series(), v.Flavor)
		}
	}
	if _, err := ParseVersion("garbage", ""); err == nil {
		t.Error("garbage parsed")
	}
	v, _ := ParseVersion("5.7.44", "Percona Server")
	if !v.Percona() || !v.HasAlterUser() || !v.HasGrantIdentifiedBy() || v.HasGlobalPriv() {
		t.Errorf("5.7 features wrong: %+v", v)
	}
	v, _ = ParseVersion("8.0.36", "")
	if v.HasGrantIdentifiedBy() || !v.HasSuperReadOnly() {
		t.Error("8.0 features wrong")
	}
	for _, bad := range []string{"postgres-15", "mysql-eight", "mysql-8"} {
		if _, err := NamedProfile(bad); err == nil {
			t.Errorf("profile %q accepted", bad)
		}
	}
	p, err := NamedProfile("MySQL-8.0")
	if err != nil || p.Name != "mysql-8.0" || p.Version.String() != "MySQL 8.0.x" {
		t.Errorf("profile: %v %+v", err, p)
	}
}

func TestReleaseTables(t *testing.T) {
	m80, _ := ParseProfileName("mysql-8.0")
	m57, _ := ParseProfileName("mysql-5.7")
	m84, _ := ParseProfileName("mysql-8.4")
	md, _ := ParseProfileName("mariadb-10.11")
	if w := ReservedWords(m80); !w["RANK"] || !w["GROUPS"] || w["ADMIN"] || w["ARRAY"] || !w["LATERAL"] {
		t.Error("mysql 8.0 reserved words wrong")
	}
	if w := ReservedWords(m57); w["RANK"] || !w["VIRTUAL"] {
		t.Error("mysql 5.7 reserved words wrong")
	}
	if !ReservedWords(m84)["QUALIFY"] || ReservedWords(m80)["QUALIFY"] {
		t.Error("QUALIFY")
	}
	if miss, repl := missingVariable(md, m80, "query_cache_size"); !miss || repl != "" {
		t.Error("query_cache_size should be missing on 8.0")
	}
	if miss, repl := missingVariable(md, m80, "tx_isolation"); !miss || repl != "transaction_isolation" {
		t.Error("tx_isolation replacement")
	}
	if miss, _ := missingVariable(md, m80, "aria_pagecache_buffer_size"); !miss {
		t.Error("aria_ variables exist only on MariaDB")
	}
	if miss, _ := missingVariable(m57, md, "innodb_buffer_pool_size"); miss {
		t.Error("innodb_buffer_pool_size is everywhere")
	}
	if miss, _ := missingVariable(md, m84, "expire_logs_days"); !miss {
		t.Error("expire_logs_days removed in 8.2")
	}
	p80 := StaticProfile(m80)
	if p80.HasSQLMode("NO_AUTO_CREATE_USER") || !p80.HasSQLMode("strict_trans_tables") || !StaticProfile(m57).HasSQLMode("NO_AUTO_CREATE_USER") {
		t.Error("sql modes")
	}
	if p80.Plugin("mysql_old_password") != Unsupported || p80.Plugin("caching_sha2_password") != Available ||
		StaticProfile(m84).Plugin("mysql_native_password") != Loadable || StaticProfile(md).Plugin("mysql_old_password") != Available {
		t.Error("plugins")
	}
	if !p80.HasCollation("utf8mb4_0900_ai_ci") || p80.HasCollation("utf8mb4_uca1400_ai_ci") || StaticProfile(md).HasCollation("utf8mb4_0900_ai_ci") {
		t.Error("collations")
	}
	if !zeroDatesRejected(p80.SQLMode) || zeroDatesRejected(StaticProfile(md).SQLMode) {
		t.Error("zero dates under default modes")
	}
}

func TestSQLText(t *testing.T) {
	calls := FunctionCalls("SELECT PASSWORD(x), db.ENCRYPT(y), 'ENCODE(z)', `DECODE`(w), count (*) /* AREA(a) */ FROM t -- X(1)\n WHERE Y(p)=1")
	if strings.Join(calls, ",") != "PASSWORD,Y" {
		t.Errorf("function calls: %v", calls)
	}
	for q, want := range map[string]bool{
		"select a from t group by a desc":                       true,
		"select a from t group by a order by a desc":            false,
		"select a from t group by a, b ASC having count(*)>1":   true,
		"select (select max(b) from u group by c) from t":       false,
		"select a from t group by (a) limit 10":                 false,
		"select a from t group by a with rollup order by 1 asc": false,
	} {
		if GroupByOrder(q) != want {
			t.Errorf("GroupByOrder(%q) = %v", q, !want)
		}
	}
	for in, want := range map[string]string{
		"GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'":                               "GRANT USAGE ON *.* TO `app`@`%`",
		"GRANT ALL PRIVILEGES ON *.* TO `a`@`h` IDENTIFIED BY PASSWORD '*ABC' WITH GRANT OPTION":      "GRANT ALL PRIVILEGES ON *.* TO `a`@`h` WITH GRANT OPTION",
		"GRANT USAGE ON *.* TO `e`@`%` IDENTIFIED VIA ed25519 USING 'xyz' OR unix_socket REQUIRE SSL": "GRANT USAGE ON *.* TO `e`@`%` REQUIRE SSL",
		"GRANT SELECT ON `shop`.* TO `a`@`%`":                                                         "GRANT SELECT ON `shop`.* TO `a`@`%`",
	} {
		if got := StripIdentified(in); got != want {
			t.Errorf("StripIdentified(%q) = %q", in, got)
		}
	}
	g := ParseGrant("GRANT SELECT, INSERT (a, b), BINLOG MONITOR ON `shop`.`t` TO `a`@`%` WITH GRANT OPTION")
	if strings.Join(g.Privileges, "|") != "SELECT|INSERT|BINLOG MONITOR" {
		t.Fatalf("privileges %q", g.Privileges)
	}
	line, ok := g.Without(func(p string) bool { return p == "BINLOG MONITOR" })
	if !ok || line != "GRANT SELECT, INSERT (a, b) ON `shop`.`t` TO `a`@`%` WITH GRANT OPTION" {
		t.Errorf("without: %q", line)
	}
	if _, ok := g.Without(func(string) bool { return true }); ok {
		t.Error("nothing left should report false")
	}
	if r := ParseGrant("GRANT `reader` TO `a`@`%`"); !r.IsRoleGrant() || len(r.Privileges) != 0 {
		t.Errorf("role grant %+v", r)
	}
	for h, want := range map[string]string{"%": "any", "localhost": "local", "127.0.0.1": "local", "::1": "local",
		"10.0.0.5": "ip", "192.168.1.%": "ip", "10.0.0.0/255.0.0.0": "ip", "fe80::1": "ip", "web1.example.com": "name"} {
		if got := HostKind(h); got != want {
			t.Errorf("HostKind(%q) = %s, want %s", h, got, want)
		}
	}
	q := Quoter{}
	if q.String(`it's a \ test`) != `'it''s a \\ test'` || (Quoter{NoBackslashEscapes: true}).String(`a\b`) != `'a\b'` {
		t.Error("quoting")
	}
}
