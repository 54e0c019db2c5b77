// Package benchlab is shared by the MySQL benchmarks: it starts (or
// reuses) a real lab, builds the benchmark dataset on its source server,
// builds the decant binary, and runs commands while measuring their wall
// time, CPU seconds and peak RSS.
package benchlab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
)

// Logf prints a timestamped progress line on stderr.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Open starts a lab in dir, or reuses the one running there.
func Open(ctx context.Context, dir string) (*lab.Lab, error) {
	if l, err := lab.Load(dir); err == nil && l.Running() {
		Logf("reusing the lab in %s", dir)
		return l, nil
	}
	os.RemoveAll(dir)
	Logf("starting a lab in %s", dir)
	return lab.Start(ctx, lab.Options{Dir: dir})
}

// DB opens a root pool on one lab server (UTC, text dates).
func DB(ctx context.Context, m *lab.MariaDB) (*sql.DB, error) {
	return mysqlx.Open(ctx, hosts.Local("bench"), mysqlx.Endpoint{Name: m.Name, Address: m.Addr, User: "root", Password: m.RootPassword}, secret.NewSet())
}

// DB name of the benchmark dataset.
const Database = "bench"

// Dataset describes the benchmark data as the source's information_schema
// sees it.
type Dataset struct {
	Tables     int
	Rows       int64
	DataLength int64 // table data bytes (DATA_LENGTH)
	IndexBytes int64
}

// MiB is the table data in MiB.
func (d Dataset) MiB() float64 { return float64(d.DataLength) / (1 << 20) }

// Describe reads the dataset's size.
func Describe(ctx context.Context, db *sql.DB) (Dataset, error) {
	var d Dataset
	_, _ = db.ExecContext(ctx, "ANALYZE TABLE "+tableList(ctx, db))
	err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(TABLE_ROWS),0), COALESCE(SUM(DATA_LENGTH),0), COALESCE(SUM(INDEX_LENGTH),0)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`, Database).Scan(&d.Tables, &d.Rows, &d.DataLength, &d.IndexBytes)
	return d, err
}

func tableList(ctx context.Context, db *sql.DB) string {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", Database)
	if err != nil {
		return Database + ".none"
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, Database+".`"+n+"`")
	}
	if len(out) == 0 {
		return Database + ".none"
	}
	return strings.Join(out, ",")
}

// Build creates the dataset on db unless it is there at this scale: 8
// sysbench-like tables (id, k, c, pad; index on k) and a docs table with
// utf8mb4 text, a blob, JSON and 3 secondary indexes. Scale 1 is about
// 1 GiB of InnoDB table data.
func Build(ctx context.Context, db *sql.DB, scale float64) (Dataset, error) {
	sbRows := int64(500000 * scale)
	docRows := int64(62000 * scale)
	marker := fmt.Sprintf("decant bench v2 scale %g", scale)
	var comment sql.NullString
	_ = db.QueryRowContext(ctx, "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", Database).Scan(&comment)
	if comment.String == marker {
		Logf("dataset %s already built", marker)
		return Describe(ctx, db)
	}
	t0 := time.Now()
	Logf("building the dataset (%s): 8 x %d sysbench rows, %d docs", marker, sbRows, docRows)
	stmts := []string{"DROP DATABASE IF EXISTS " + Database, "CREATE DATABASE " + Database + " CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"}
	for i := 1; i <= 8; i++ {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %s.sbtest%d (id int NOT NULL AUTO_INCREMENT, k int NOT NULL DEFAULT 0,
			c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '', PRIMARY KEY (id), KEY k_%d (k)) ENGINE=InnoDB`, Database, i, i))
	}
	stmts = append(stmts, `CREATE TABLE `+Database+`.docs (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
		title varchar(200) CHARACTER SET utf8mb4 NOT NULL, body text CHARACTER SET utf8mb4, payload blob, doc json,
		created datetime NOT NULL, score int NOT NULL, KEY created (created), KEY score (score), KEY title (title(40))) ENGINE=InnoDB`)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return Dataset{}, fmt.Errorf("%s: %w", s, err)
		}
	}
	num := func() string { return "LPAD(FLOOR(RAND()*99999999999), 11, '0')" }
	var c, pad []string
	for i := 0; i < 10; i++ {
		c = append(c, num())
	}
	for i := 0; i < 5; i++ {
		pad = append(pad, num())
	}
	const step = 50000
	for i := 1; i <= 8; i++ {
		for lo := int64(1); lo <= sbRows; lo += step {
			hi := min(lo+step-1, sbRows)
			q := fmt.Sprintf("INSERT INTO %s.sbtest%d (k, c, pad) SELECT FLOOR(RAND()*%d), CONCAT_WS('-', %s), CONCAT_WS('-', %s) FROM %s.seq_%d_to_%d",
				Database, i, sbRows, strings.Join(c, ","), strings.Join(pad, ","), Database, lo, hi)
			if _, err := db.ExecContext(ctx, q); err != nil {
				return Dataset{}, fmt.Errorf("fill sbtest%d: %w", i, err)
			}
		}
		Logf("sbtest%d filled", i)
	}
	for lo := int64(1); lo <= docRows; lo += 10000 {
		hi := min(lo+9999, docRows)
		q := fmt.Sprintf(`INSERT INTO %s.docs (title, body, payload, doc, created, score)
			SELECT CONCAT('Título ', seq, ' — ünïcödé ✓ ', MD5(seq)),
			  REPEAT(CONCAT('Lorem ipsum dolor sit amet, café crème brûlée 😀 ', MD5(RAND()), ' '), 12),
			  RANDOM_BYTES(1024),
			  JSON_OBJECT('id', seq, 'tags', JSON_ARRAY('α', 'β', MD5(seq)), 'price', ROUND(RAND()*100, 2), 'note', 'naïve'),
			  '2020-01-01' + INTERVAL FLOOR(RAND()*150000000) SECOND, FLOOR(RAND()*1000000)
			FROM %s.seq_%d_to_%d`, Database, Database, lo, hi)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return Dataset{}, fmt.Errorf("fill docs: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, "ALTER DATABASE "+Database+" COMMENT '"+marker+"'"); err != nil {
		return Dataset{}, err
	}
	d, err := Describe(ctx, db)
	Logf("dataset built in %s: %d rows, %.0f MiB of table data, %.0f MiB of indexes", time.Since(t0).Round(time.Second), d.Rows, d.MiB(), float64(d.IndexBytes)/(1<<20))
	return d, err
}

// BuildDecant builds the decant binary (without -race) into dir.
func BuildDecant(dir string) (string, error) {
	bin := filepath.Join(dir, "decant")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/decant")
	cmd.Dir = labtest.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Usage is what a run cost.
type Usage struct {
	Wall   time.Duration
	CPU    time.Duration // user + system, all measured processes
	MaxRSS int64         // bytes, the largest single process
}

// Add folds another measured part of the same run into u (CPU adds up,
// the peak RSS is the largest).
func (u *Usage) Add(o Usage) {
	u.Wall += o.Wall
	u.CPU += o.CPU
	u.MaxRSS = max(u.MaxRSS, o.MaxRSS)
}

// Run runs a local command and measures it (and the children it waits
// for) with wait4's rusage.
func Run(ctx context.Context, name string, args []string, stdout, stderr *os.File) (Usage, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	t0 := time.Now()
	err := cmd.Run()
	u := Usage{Wall: time.Since(t0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.MaxRSS = ru.Maxrss * 1024
	}
	if err != nil {
		return u, fmt.Errorf("%s: %w", name, err)
	}
	return u, nil
}

// TimeWrap prefixes a remote command with GNU time writing to file, so
// processes sshd starts (not our children) are measured too.
func TimeWrap(file, cmd string) string {
	return "/usr/bin/time -f '%U %S %M' -o " + hosts.Quote(file) + " " + cmd
}

// ReadTime reads what TimeWrap wrote.
func ReadTime(file string) (Usage, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Usage{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return Usage{}, fmt.Errorf("%s: unexpected %q", file, b)
	}
	u, _ := strconv.ParseFloat(f[0], 64)
	s, _ := strconv.ParseFloat(f[1], 64)
	rss, _ := strconv.ParseInt(f[2], 10, 64)
	return Usage{CPU: time.Duration((u + s) * float64(time.Second)), MaxRSS: rss * 1024}, nil
}

// SSHArgs are the ssh client options to reach the lab sshd as its user.
func SSHArgs(l *lab.Lab) []string {
	return []string{"-p", strconv.Itoa(l.SSH.Port), "-i", l.SSH.ClientKeyFile, "-o", "UserKnownHostsFile=" + l.SSH.KnownHostsFile,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-F", "none", l.SSH.User + "@127.0.0.1"}
}

// Runbook writes a runbook copying the bench database with the given steps.
func Runbook(dir string, l *lab.Lab, steps string) (string, error) {
	src := labtest.Header(l, "decant benchmark") + "phases:\n  - name: move\n    steps:\n" + steps
	os.MkdirAll(dir, 0o700)
	path := filepath.Join(dir, fmt.Sprintf("rb-%d.yaml", time.Now().UnixNano()))
	return path, os.WriteFile(path, []byte(src), 0o600)
}

// ResetTarget drops the benchmark database on the target.
func ResetTarget(ctx context.Context, dst *sql.DB) error {
	_, err := dst.ExecContext(ctx, "DROP DATABASE IF EXISTS "+Database)
	return err
}

// ProcCPU is the CPU time (user + system) pid has used so far, read from
// /proc; servers are measured by the difference over a run.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
