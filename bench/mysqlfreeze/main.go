// Command mysqlfreeze measures the write freeze of a live migration: a
// bounded writer (a fixed rate, every committed id logged) writes to the
// source while decant captures changes, copies, catches up in rounds, then
// the source is frozen (read_only), caught up a last time and verified. It
// reports the freeze window (read_only on → final catch-up done) and
// checks that every committed write is on the target.
//
//	go run ./bench/mysqlfreeze               # ~1 GiB, 100 writes/s
//
// It shares the lab and dataset of bench/mysqlcopy (-lab).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/bench/benchlab"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
)

func main() {
	labDir := flag.String("lab", filepath.Join(os.TempDir(), "decant-bench-lab"), "lab directory (shared with bench/mysqlcopy)")
	scale := flag.Float64("scale", 1, "dataset size in GiB of table data (about)")
	rate := flag.Int("rate", 100, "writes per second during the migration")
	threads := flag.Int("threads", 4, "mysql.copy parallel")
	flag.Parse()
	if err := run(*labDir, *scale, *rate, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// writer is the site: fixed-rate writes as an ordinary account (so
// read_only stops it), every committed id logged.
type writer struct {
	db       *sql.DB
	log      *bufio.Writer
	mu       sync.Mutex
	inserted map[int64]bool
	deleted  map[int64]bool
	writes   int
	frozenAt time.Time // first write refused by read_only
	err      error
}

func (w *writer) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	rng := mrand.New(mrand.NewPCG(7, 7))
	var ids []int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var err error
		op := rng.IntN(10)
		switch {
		case op < 6:
			var res sql.Result
			if res, err = w.db.ExecContext(ctx, "INSERT INTO bench.writes (payload) VALUES (?)", fmt.Sprintf("w %d ✓", w.writes)); err == nil {
				id, _ := res.LastInsertId()
				ids = append(ids, id)
				w.mu.Lock()
				w.inserted[id] = true
				fmt.Fprintf(w.log, "insert %d\n", id)
				w.mu.Unlock()
			}
		case op < 9:
			_, err = w.db.ExecContext(ctx, fmt.Sprintf("UPDATE bench.sbtest%d SET k = k + 1 WHERE id = ?", 1+rng.IntN(8)), 1+rng.IntN(400000))
		default:
			if len(ids) == 0 {
				continue
			}
			i := rng.IntN(len(ids))
			id := ids[i]
			if _, err = w.db.ExecContext(ctx, "DELETE FROM bench.writes WHERE id = ?", id); err == nil {
				ids = append(ids[:i], ids[i+1:]...)
				w.mu.Lock()
				w.deleted[id] = true
				fmt.Fprintf(w.log, "delete %d\n", id)
				w.mu.Unlock()
			}
		}
		w.mu.Lock()
		if err == nil {
			w.writes++
		} else if ctx.Err() == nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1290 {
				if w.frozenAt.IsZero() {
					w.frozenAt = time.Now()
				}
			} else if w.err == nil {
				w.err = err
			}
		}
		w.mu.Unlock()
	}
}

type event struct {
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Step    string          `json:"step"`
	Msg     string          `json:"msg"`
	Receipt json.RawMessage `json:"receipt"`
}

func run(labDir string, scale float64, rate, threads int) error {
	ctx := context.Background()
	l, err := benchlab.Open(ctx, labDir)
	if err != nil {
		return err
	}
	src, err := benchlab.DB(ctx, l.Source)
	if err != nil {
		return err
	}
	dst, err := benchlab.DB(ctx, l.Target)
	if err != nil {
		return err
	}
	ds, err := benchlab.Build(ctx, src, scale)
	if err != nil {
		return err
	}
	work := filepath.Join(labDir, "freeze")
	os.RemoveAll(work)
	os.MkdirAll(work, 0o700)
	decant, err := benchlab.BuildDecant(work)
	if err != nil {
		return err
	}
	pw := rand.Text()
	for _, q := range []string{"SET GLOBAL read_only = OFF", "DROP DATABASE IF EXISTS decant_capture",
		"DROP TABLE IF EXISTS bench.writes",
		"CREATE TABLE bench.writes (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, at datetime(6) NOT NULL DEFAULT NOW(6), payload varchar(100))",
		"DROP USER IF EXISTS 'benchapp'@'%'", "CREATE USER 'benchapp'@'%' IDENTIFIED BY '" + pw + "'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON bench.* TO 'benchapp'@'%'"} {
		if _, err := src.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	defer src.ExecContext(ctx, "SET GLOBAL read_only = OFF")
	if err := benchlab.ResetTarget(ctx, dst); err != nil {
		return err
	}
	app, err := mysqlx.Open(ctx, hosts.Local("app"), mysqlx.Endpoint{Name: "app", Address: l.Source.Addr, User: "benchapp", Password: pw}, secret.NewSet())
	if err != nil {
		return err
	}
	defer app.Close()
	sqlOn := func(q string) string {
		return "mysql --defaults-file=" + hosts.Quote(l.Source.OptionFile) + " -e " + hosts.Quote(q)
	}
	rb, err := benchlab.Runbook(work, l, fmt.Sprintf(`      - id: capture
        action: mysql.capture
        with: {databases: [%[1]s]}
      - id: copy
        action: mysql.copy
        with: {databases: [%[1]s], parallel: %[2]d}
      - id: catchup
        action: mysql.catchup
        with: {rounds: 6, max_backlog: 300}
      - id: freeze
        shell: source
        run: %[3]s
        undo: %[4]s
      - id: final
        action: mysql.catchup
      - id: verify
        action: mysql.verify
        with: {databases: [%[1]s], parallel: %[2]d}
`, benchlab.Database, threads, sqlOn("SET GLOBAL read_only = ON"), sqlOn("SET GLOBAL read_only = OFF")))
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(work, "committed.log"))
	if err != nil {
		return err
	}
	w := &writer{db: app, log: bufio.NewWriter(logf), inserted: map[int64]bool{}, deleted: map[int64]bool{}}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(wctx, rate) }()
	benchlab.Logf("dataset %.0f MiB; writer at %d writes/s; decant run --plain %s", ds.MiB(), rate, rb)
	out, err := os.Create(filepath.Join(work, "decant.log"))
	if err != nil {
		return err
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, decant, "run", "--plain", "--yes", rb)
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	total := time.Since(t0)
	stop()
	wg.Wait()
	w.log.Flush()
	logf.Close()
	out.Close()
	if runErr != nil {
		return fmt.Errorf("decant run failed (%v): see %s", runErr, out.Name())
	}
	if w.err != nil {
		return fmt.Errorf("writer: %w", w.err)
	}
	// Step times from the journal.
	b, err := os.ReadFile(rb + ".decant/journal.jsonl")
	if err != nil {
		return err
	}
	started, finished := map[string]time.Time{}, map[string]time.Time{}
	var rounds []string
	for _, line := range strings.Split(string(b), "\n") {
		var ev event
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		switch ev.Type {
		case "step.started":
			started[ev.Step] = ev.Time
		case "step.finished":
			finished[ev.Step] = ev.Time
		case "step.log":
			if strings.HasPrefix(ev.Msg, "round ") {
				rounds = append(rounds, ev.Step+" "+ev.Msg)
			}
		}
	}
	// Every committed write is on the target.
	rows, err := dst.QueryContext(ctx, "SELECT id FROM bench.writes")
	if err != nil {
		return err
	}
	on := map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		on[id] = true
	}
	rows.Close()
	missing, resurrected := 0, 0
	for id := range w.inserted {
		if !w.deleted[id] && !on[id] {
			missing++
		}
	}
	for id := range w.deleted {
		if on[id] {
			resurrected++
		}
	}
	window := finished["final"].Sub(started["freeze"])
	fmt.Printf("\nMySQL live migration benchmark: %.0f MiB of table data, writer at %d writes/s, copy parallel %d\n\n", ds.MiB(), rate, threads)
	for _, s := range []string{"capture", "copy", "catchup", "freeze", "final", "verify"} {
		fmt.Printf("  %-8s %7.1fs\n", s, finished[s].Sub(started[s]).Seconds())
	}
	for _, r := range rounds {
		fmt.Printf("  %s\n", r)
	}
	fmt.Printf("\nfreeze window (read_only on → final catch-up done): %.2fs\n", window.Seconds())
	if !w.frozenAt.IsZero() {
		fmt.Printf("first write refused by read_only %.2fs after the freeze step started\n", w.frozenAt.Sub(started["freeze"]).Seconds())
	}
	fmt.Printf("committed writes: %d (%d inserts, %d deletes logged in %s); verify passed\n", w.writes, len(w.inserted), len(w.deleted), logf.Name())
	fmt.Printf("inserted and not deleted, missing on the target: %d; deleted, still on the target: %d\n", missing, resurrected)
	fmt.Printf("whole run %.1fs\n", total.Seconds())
	if missing > 0 || resurrected > 0 {
		return errors.New("writes were lost or resurrected")
	}
	// Leave the source as it was: no capture triggers, writable.
	undo := exec.CommandContext(ctx, decant, "undo", "--yes", rb)
	if o, err := undo.CombinedOutput(); err != nil {
		benchlab.Logf("undo: %v\n%s", err, o)
	}
	return nil
}
