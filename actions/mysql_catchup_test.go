package actions_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/lab"
)

// mysqlWriter is the site: it writes to the source at a steady rate and
// remembers which item ids are committed and alive.
type mysqlWriter struct {
	db    *sql.DB
	mu    sync.Mutex
	alive map[int64]bool
	dead  map[int64]bool
	pairs [][2]int64
	ops   int
	err   error
}

func (w *mysqlWriter) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(1, 2))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := w.step(ctx, rng); err != nil && ctx.Err() == nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
	}
}

func (w *mysqlWriter) pick(rng *rand.Rand) int64 {
	ids := make([]int64, 0, len(w.alive))
	for id := range w.alive {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids[rng.IntN(len(ids))]
}

func (w *mysqlWriter) step(ctx context.Context, rng *rand.Rand) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops++
	switch op := rng.IntN(10); {
	case op < 4:
		res, err := w.db.ExecContext(ctx, "INSERT INTO live.items (v, s) VALUES (?, ?)", rng.IntN(1000), fmt.Sprintf("new é %d", w.ops))
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		w.alive[id] = true
	case op < 6:
		_, err := w.db.ExecContext(ctx, "UPDATE live.items SET v = v + 1, s = CONCAT(s, '+') WHERE id = ?", w.pick(rng))
		return err
	case op < 7:
		id := w.pick(rng)
		if _, err := w.db.ExecContext(ctx, "DELETE FROM live.items WHERE id = ?", id); err != nil {
			return err
		}
		delete(w.alive, id)
		w.dead[id] = true
	case op < 8:
		// A key change: the old key must disappear from the target.
		i := rng.IntN(len(w.pairs))
		p := w.pairs[i]
		if _, err := w.db.ExecContext(ctx, "UPDATE live.pairs SET b = b + 100000 WHERE a = ? AND b = ?", p[0], p[1]); err != nil {
			return err
		}
		w.pairs[i][1] += 100000
	case op < 9:
		if _, err := w.db.ExecContext(ctx, "INSERT INTO live.bag VALUES (?, 'w')", w.ops); err != nil {
			return err
		}
	default:
		_, err := w.db.ExecContext(ctx, "UPDATE live.stamped SET v = v + 1 WHERE id = ?", 1+rng.IntN(200))
		return err
	}
	return nil
}

func mysqlTestCatchupUnderWrites(t *testing.T, l *lab.Lab) {
	src, dst := mysqlCopyDB(t, l.Source), mysqlCopyDB(t, l.Target)
	mysqlCopyExec(t, dst, "DROP DATABASE IF EXISTS live")
	mysqlCopyExec(t, src, "DROP DATABASE IF EXISTS live", "DROP DATABASE IF EXISTS decant_capture", "CREATE DATABASE live", "USE live",
		"CREATE TABLE items (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, v int, s varchar(200) CHARACTER SET utf8mb4)",
		"CREATE TABLE items_log (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, item bigint, at_v int)",
		"CREATE TABLE pairs (a int NOT NULL, b int NOT NULL, x varchar(10), PRIMARY KEY (a, b))",
		"CREATE TABLE bag (n int, tag varchar(5))",
		"CREATE TABLE stamped (id int NOT NULL PRIMARY KEY, v int, lastupdate timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
		"CREATE TRIGGER items_upd AFTER UPDATE ON items FOR EACH ROW INSERT INTO items_log (item, at_v) VALUES (NEW.id, NEW.v)",
		"INSERT INTO items (v, s) SELECT seq, CONCAT('item ', seq, ' ü') FROM seq_1_to_3000",
		"INSERT INTO pairs SELECT seq % 10, seq, 'p' FROM seq_1_to_500",
		"INSERT INTO bag SELECT seq, 'b' FROM seq_1_to_50",
		"INSERT INTO stamped (id, v, lastupdate) SELECT seq, 0, '2024-01-01 00:00:00' FROM seq_1_to_200",
		"ANALYZE TABLE items, pairs, bag, stamped")
	w := &mysqlWriter{db: src, alive: map[int64]bool{}, dead: map[int64]bool{}}
	for i := int64(1); i <= 3000; i++ {
		w.alive[i] = true
	}
	for i := int64(1); i <= 500; i++ {
		w.pairs = append(w.pairs, [2]int64{i % 10, i})
	}
	e := mysqlCopyRunbook(t, l, `      - id: capture
        action: mysql.capture
        with: {databases: [live], timestamp: {live.stamped: lastupdate}}
      - id: copy
        action: mysql.copy
        with: {databases: [live], chunk_rows: 100, parallel: 2, max_rate_mib: 0.1, bulk_mib: 0}
      - id: catchup
        action: mysql.catchup
        with: {rounds: 2, batch: 50}
      - id: final
        action: mysql.catchup
        with: {batch: 50}
      - id: verify
        action: mysql.verify
        with: {databases: [live], chunk_rows: 200}
`)
	ctx := context.Background()
	if err := e.Run(ctx, "capture", nil); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(wctx, 5*time.Millisecond) }()
	if err := e.Run(ctx, "copy", nil); err != nil {
		stop()
		t.Fatal(err)
	}
	// A transaction that stays open across the first catch-up round: its
	// captured key has a lower sequence number than keys applied before it
	// commits, and must not be skipped.
	late, err := src.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := late.Exec("INSERT INTO live.items (v, s) VALUES (-1, 'late commit')")
	if err != nil {
		t.Fatal(err)
	}
	lateID, _ := res.LastInsertId()
	if err := e.Run(ctx, "catchup", nil); err != nil {
		stop()
		t.Fatal(err)
	}
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	// The freeze: the site stops writing.
	stop()
	wg.Wait()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	if w.ops < 100 {
		t.Fatalf("only %d writes happened during the copy and catch-up: the test does not test anything", w.ops)
	}
	if err := e.Run(ctx, "final", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx, "verify", nil); err != nil {
		t.Fatalf("verify after the final catch-up: %v", err)
	}
	var got []int64
	rows, err := dst.Query("SELECT id FROM live.items")
	if err != nil {
		t.Fatal(err)
	}
	on := map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		on[id] = true
		got = append(got, id)
	}
	rows.Close()
	w.alive[lateID] = true
	for id := range w.alive {
		if !on[id] {
			t.Errorf("committed item %d is not on the target", id)
		}
	}
	for id := range w.dead {
		if on[id] {
			t.Errorf("deleted item %d is still on the target", id)
		}
	}
	if len(got) != len(w.alive) {
		t.Errorf("target has %d items, the source %d", len(got), len(w.alive))
	}
	// The target's copy of the trigger is back and was not fired by the
	// replay (items_log matched in verify); the catch-up journaled rounds.
	if got := mysqlCopyQuery(t, dst, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'live'"); got != "1" {
		t.Fatalf("target triggers after catch-up: %s", got)
	}
	var rc actions.MySQLCatchupReceipt
	if err := json.Unmarshal(e.State("catchup").Receipt, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Rounds != 2 || rc.Keys == 0 || len(rc.DroppedTriggers) != 0 || rc.Marks["live.stamped"] == "" {
		t.Fatalf("catch-up receipt %+v", rc)
	}
	t.Logf("%d writes during copy and catch-up; %d keys in the live rounds", w.ops, rc.Keys)

	// Undo of the capture leaves the source as it was.
	if err := e.Undo(ctx, "capture"); err != nil {
		t.Fatal(err)
	}
	if got := mysqlCopyQuery(t, src, "SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'live'"); got != "items_upd" {
		t.Fatalf("source triggers after undo: %s", got)
	}
	if got := mysqlCopyQuery(t, src, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'decant_capture'"); got != "0" {
		t.Fatal("decant_capture left on the source")
	}
	if _, err := src.Exec("INSERT INTO live.items (v) VALUES (1)"); err != nil {
		t.Fatalf("the site cannot write after undo: %v", err)
	}
}
