package rowcopy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/rowcopy"
	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/secret"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(labtest.Main(m, &theLab, lab.Options{}))
}

// pools opens the lab's source through its socket and the target through
// the lab sshd's tunnel, as the product does.
func pools(t *testing.T) (src, dst *sql.DB, dstSrv *schema.Server) {
	t.Helper()
	ctx := context.Background()
	sec := secret.NewSet()
	src, err := mysqlx.Open(ctx, hosts.Local("source"), mysqlx.Endpoint{Name: "source", Socket: theLab.Source.Socket, OptionsFile: theLab.Source.OptionFile}, sec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ssh, err := hosts.DialSSH(ctx, hosts.SSHConfig{Name: "target", Address: labtest.SSHHost(theLab),
		KeyFile: theLab.SSH.ClientKeyFile, KnownHosts: theLab.SSH.KnownHostsFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Close() })
	dst, err = mysqlx.Open(ctx, ssh, mysqlx.Endpoint{Name: "target", Address: theLab.Target.Addr, OptionsFile: theLab.Target.OptionFile}, sec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	if dstSrv, err = schema.Probe(ctx, dst); err != nil {
		t.Fatal(err)
	}
	return src, dst, dstSrv
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// setup creates db on both servers with the same DDL; rows go to the source.
func setup(t *testing.T, src, dst *sql.DB, db string, ddl []string, inserts ...string) []*schema.Table {
	t.Helper()
	for _, s := range []*sql.DB{src, dst} {
		exec(t, s, "DROP DATABASE IF EXISTS "+db, "CREATE DATABASE "+db)
		for _, d := range ddl {
			exec(t, s, "USE "+db)
			if _, err := s.Exec(strings.Replace(d, "CREATE TABLE ", "CREATE TABLE "+db+".", 1)); err != nil {
				t.Fatalf("%s: %v", d, err)
			}
		}
	}
	conn, err := src.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range append([]string{"SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO'", "USE " + db}, inserts...) {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	exec(t, src, "ANALYZE TABLE "+db+"."+tableName(ddl[0]))
	tables, err := schema.LoadTables(context.Background(), src, []string{db})
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

func tableName(ddl string) string {
	f := strings.Fields(ddl)
	return f[2]
}

const allTypes = `CREATE TABLE t (
  id int NOT NULL,
  ti tinyint, si smallint unsigned, mi mediumint, bi bigint unsigned,
  de decimal(20,6), fl float, db double, bt bit(12), yr year,
  d date, dt datetime(6), ts timestamp(3) NULL DEFAULT NULL, tm time,
  c char(5), vc varchar(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, l1 varchar(20) CHARACTER SET latin1,
  bn binary(4), vb varbinary(20), tb tinyblob, bl blob, mb mediumblob, lt longtext,
  en enum('a','b','c'), st set('x','y','z'), js json, pt point,
  gv int AS (id * 2) VIRTUAL, gs varchar(110) AS (concat(vc, '!')) STORED,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

func allTypesRows() []string {
	return []string{
		`INSERT INTO t (id,ti,si,mi,bi,de,fl,db,bt,yr,d,dt,ts,tm,c,vc,l1,bn,vb,tb,bl,mb,lt,en,st,js,pt) VALUES
		 (0, -128, 65535, -8388608, 18446744073709551615, -12345678901234.123456, 0.1234567, 1.0000000000000002, b'101010101010', 2024,
		  '0000-00-00', '0000-00-00 00:00:00.000000', '2020-03-29 01:30:00.123', '-838:59:59',
		  'ab', 'héllo wörld 😀 \t tab \n nl \\ bs', 'caf\xe9', x'00ff0a09', x'5c4e000d0a', x'00', x'0102035c', REPEAT(x'ab', 70000), REPEAT('ä', 5000),
		  'b', 'x,z', '{"k": [1, 2.5, "ü"]}', ST_GeomFromText('POINT(1.5 -2.25)'))`,
		`INSERT INTO t (id) VALUES (1)`,
		`INSERT INTO t (id, vc, lt, bl, c) VALUES (2, '', '', '', ''), (3, '\\N', 'NULL', x'', ' x ')`,
		`INSERT INTO t (id, d, dt) VALUES (4, '2024-02-00', '2024-00-10 10:00:00')`,
	}
}

func TestCopyAllTypesBothLoaders(t *testing.T) {
	src, dst, dstSrv := pools(t)
	for _, tc := range []struct {
		loader rowcopy.Loader
		bulk   bool
	}{{rowcopy.LoadData, false}, {rowcopy.Insert, false}, {rowcopy.LoadData, true}, {rowcopy.Insert, true}} {
		loader := tc.loader
		name := string(loader)
		if tc.bulk {
			name += "-bulk"
		}
		t.Run(name, func(t *testing.T) {
			tables := setup(t, src, dst, "types_"+strings.ReplaceAll(name, "-", "_"), []string{allTypes}, allTypesRows()...)
			tb := tables[0]
			if strings.Join(tb.Key, ",") != "id" {
				t.Fatalf("key = %v", tb.Key)
			}
			if len(tb.CopyColumns()) != len(tb.Columns)-2 {
				t.Fatalf("generated columns not skipped: %d of %d", len(tb.CopyColumns()), len(tb.Columns))
			}
			if tc.bulk {
				// Leftovers of an earlier attempt are truncated away.
				exec(t, dst, "INSERT INTO "+tb.Quoted()+" (id) VALUES (1), (77)")
			}
			st, err := rowcopy.Copy(context.Background(), src, dst, dstSrv, []*rowcopy.Job{{Table: tb, RangeDelete: true, Bulk: tc.bulk}},
				rowcopy.Options{Parallel: 2, ChunkRows: 2, Loader: loader})
			if err != nil {
				t.Fatal(err)
			}
			chunks := int64(3)
			if tc.bulk {
				chunks = 1
			}
			if st.Rows != 5 || st.Loader != loader || st.Chunks != chunks {
				t.Fatalf("stats %+v", st)
			}
			// Every column's bytes, as the server stores them, match.
			var cols []string
			for _, c := range tb.Columns {
				cols = append(cols, "HEX(`"+c.Name+"`)")
			}
			q := "SELECT " + strings.Join(cols, ",") + " FROM " + tb.Quoted() + " ORDER BY id"
			if a, b := dump(t, src, q), dump(t, dst, q); a != b {
				t.Fatalf("rows differ:\nsource %s\ntarget %s", a, b)
			}
			checks, err := rowcopy.Verify(context.Background(), src, dst, tables, rowcopy.VerifyOptions{ChunkRows: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !checks[0].OK() || checks[0].SourceRows != 5 {
				t.Fatalf("verify: %s", checks[0].Summary())
			}
		})
	}
}

func dump(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if v.Valid {
				b.WriteString(v.String)
			} else {
				b.WriteString("NULL")
			}
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// A copy stopped after some chunks resumes from its checkpoint: the
// finished ranges are not read again, and no row is lost or doubled.
func TestCopyResumesFromCheckpoint(t *testing.T) {
	src, dst, dstSrv := pools(t)
	ins := []string{"INSERT INTO c (a, b, v) SELECT seq % 7, CONCAT('k', seq), REPEAT('x', seq % 50) FROM seq_1_to_3000"}
	tables := setup(t, src, dst, "resume", []string{
		"CREATE TABLE c (a int NOT NULL, b varchar(20) NOT NULL, v text, PRIMARY KEY (a, b))",
		"CREATE TABLE n (x int, y varchar(5))",
	}, append(ins, "INSERT INTO n VALUES (1,'a'),(1,'a'),(NULL,'b')")...)
	var comp *schema.Table
	for _, tb := range tables {
		if tb.Name == "c" {
			comp = tb
		}
	}
	var mu sync.Mutex
	var last []rowcopy.TableState
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	_, err := rowcopy.Copy(ctx, src, dst, dstSrv, []*rowcopy.Job{{Table: comp, RangeDelete: true}}, rowcopy.Options{
		Parallel: 2, ChunkRows: 200,
		Checkpoint: func(s []rowcopy.TableState) error {
			mu.Lock()
			defer mu.Unlock()
			last = s
			chunks++
			if chunks == 4 {
				cancel()
			}
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first attempt: %v", err)
	}
	mu.Lock()
	state := last[0]
	mu.Unlock()
	if state.Complete || len(state.Done) == 0 || state.Rows == 0 || state.Rows >= 3000 {
		t.Fatalf("state after the stop: %+v", state)
	}
	// A partial chunk the first attempt may have committed on the target is
	// cleared by the range delete: pre-load junk in a later range to prove it.
	exec(t, dst, "INSERT IGNORE INTO resume.c VALUES (6, 'k999', 'junk'), (6, 'zzz', 'junk')")
	st, err := rowcopy.Copy(context.Background(), src, dst, dstSrv, []*rowcopy.Job{{Table: comp, Done: state.Done, PrevRows: state.Rows, RangeDelete: true}},
		rowcopy.Options{Parallel: 2, ChunkRows: 200, Checkpoint: func(s []rowcopy.TableState) error {
			mu.Lock()
			last = s
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows+state.Rows != 3000 {
		t.Fatalf("resumed copy read %d rows after %d: finished ranges were copied again or rows skipped", st.Rows, state.Rows)
	}
	if !last[0].Complete || len(last[0].Done) != 1 || !last[0].Done[0].All() {
		t.Fatalf("final state %+v", last[0])
	}
	checks, err := rowcopy.Verify(context.Background(), src, dst, tables, rowcopy.VerifyOptions{ChunkRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	if !checks[0].OK() {
		t.Fatalf("verify: %s", checks[0].Summary())
	}
	if checks[1].OK() {
		t.Fatalf("the keyless table was not copied, verify should fail: %s", checks[1].Summary())
	}
	// The keyless table, copied twice, is replaced whole, not doubled.
	var keyless *schema.Table
	for _, tb := range tables {
		if tb.Name == "n" {
			keyless = tb
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := rowcopy.Copy(context.Background(), src, dst, dstSrv, []*rowcopy.Job{{Table: keyless}}, rowcopy.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	checks, err = rowcopy.Verify(context.Background(), src, dst, []*schema.Table{keyless}, rowcopy.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !checks[0].OK() || checks[0].TargetRows != 3 || !checks[0].NoKey {
		t.Fatalf("keyless: %s", checks[0].Summary())
	}
}

// Verify finds a changed byte in a utf8mb4 text, a missing row and an
// extra row, and names them by key.
func TestVerifyNarrowsToRows(t *testing.T) {
	src, dst, dstSrv := pools(t)
	tables := setup(t, src, dst, "corrupt", []string{
		"CREATE TABLE p (id bigint NOT NULL PRIMARY KEY, name varchar(50) CHARACTER SET utf8mb4, note text)",
	}, "INSERT INTO p SELECT seq, CONCAT('naïve café ', seq), IF(seq % 3, NULL, 'x') FROM seq_1_to_5000")
	if _, err := rowcopy.Copy(context.Background(), src, dst, dstSrv, []*rowcopy.Job{{Table: tables[0], RangeDelete: true}}, rowcopy.Options{ChunkRows: 1000}); err != nil {
		t.Fatal(err)
	}
	checks, err := rowcopy.Verify(context.Background(), src, dst, tables, rowcopy.VerifyOptions{ChunkRows: 700, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !checks[0].OK() || checks[0].SourceRows != 5000 {
		t.Fatalf("clean copy: %s", checks[0].Summary())
	}
	// One byte of a multi-byte character (ï is c3 af; c3 ae is î), a NULL
	// turned into '', a missing row and an extra one.
	exec(t, dst,
		"UPDATE corrupt.p SET name = CONCAT('na', x'c3ae', 've café 1234') WHERE id = 1234",
		"UPDATE corrupt.p SET note = '' WHERE id = 4001",
		"DELETE FROM corrupt.p WHERE id = 77",
		"INSERT INTO corrupt.p VALUES (9999, 'extra', NULL)")
	checks, err = rowcopy.Verify(context.Background(), src, dst, tables, rowcopy.VerifyOptions{ChunkRows: 700, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := checks[0]
	if c.OK() || c.DiffCount != 4 {
		t.Fatalf("verify: %s", c.Summary())
	}
	got := map[string]string{}
	for _, d := range c.Diffs {
		got[d.Key.String()] = d.What
	}
	want := map[string]string{"1234": "differs", "4001": "differs", "77": "missing on target", "9999": "extra on target"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("diffs %v, want %v\n%s", got, want, c.Summary())
	}
}

// Rows go through a string key (offset scan), a unique key when there is
// no primary key, and a rate limit.
func TestCopyStringKeyAndRate(t *testing.T) {
	src, dst, dstSrv := pools(t)
	tables := setup(t, src, dst, "strkey", []string{
		"CREATE TABLE s (code varchar(20) COLLATE utf8mb4_unicode_ci NOT NULL, n int, UNIQUE KEY u (code))",
	}, "INSERT INTO s SELECT CONCAT(CHAR(65 + seq % 26), 'é', seq), seq FROM seq_1_to_2000")
	tb := tables[0]
	if tb.KeyIndex != "u" {
		t.Fatalf("key index %q", tb.KeyIndex)
	}
	start := time.Now()
	st, err := rowcopy.Copy(context.Background(), src, dst, dstSrv, []*rowcopy.Job{{Table: tb, RangeDelete: true}},
		rowcopy.Options{ChunkRows: 300, Parallel: 3, MaxRate: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks < 7 || st.Rows != 2000 {
		t.Fatalf("stats %+v", st)
	}
	// About 30 kB at 60 kB/s: the limiter must have slowed it down.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("rate limit ignored: %d bytes in %s", st.Bytes, el)
	}
	checks, err := rowcopy.Verify(context.Background(), src, dst, tables, rowcopy.VerifyOptions{ChunkRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	if !checks[0].OK() {
		t.Fatalf("verify: %s", checks[0].Summary())
	}
}
