package rowcopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/internal/schema"
)

// Job is one table to copy.
type Job struct {
	Table *schema.Table
	// Done are the key ranges an earlier attempt finished; they are not
	// copied again. PrevRows and PrevBytes are what that attempt counted.
	Done      []schema.Range
	PrevRows  int64
	PrevBytes int64
	// RangeDelete says the target compares the key like the source (same
	// collations), so a chunk clears its key range on the target before
	// loading. Without it a chunk relies on REPLACE alone; a table without
	// a key is always cleared whole.
	RangeDelete bool
	// Bulk copies the table in one target transaction on MariaDB's bulk
	// insert path (see Selection.Bulk): only for a table this copy created
	// and may empty; its resume unit is the whole table.
	Bulk bool
}

// TableState is one table's progress, as a journal keeps it.
type TableState struct {
	Table    string         `json:"table"`
	Done     []schema.Range `json:"done,omitempty"`
	Complete bool           `json:"complete,omitempty"`
	Rows     int64          `json:"rows"`
	Bytes    int64          `json:"bytes"`
	Warnings int64          `json:"warnings,omitempty"`
}

// Options tune a copy.
type Options struct {
	// Parallel is the number of chunks in flight (default: cores).
	Parallel int
	// ChunkRows fixes the rows per chunk; otherwise chunks hold about
	// ChunkBytes of table data (default 16 MiB) by the average row length.
	ChunkRows  int64
	ChunkBytes int64
	// Loader is LoadData or Insert; "" picks LoadData when the target
	// allows local_infile.
	Loader Loader
	// MaxRate caps payload bytes per second (0: no cap).
	MaxRate int64
	// Logf receives progress and warning lines.
	Logf func(format string, args ...any)
	// Checkpoint journals every table's state. It is called from one
	// goroutine after chunks finish, coalesced when chunks finish faster
	// than it returns; an error stops the copy.
	Checkpoint func([]TableState) error
	// Progress reports estimated table-data bytes done out of the total.
	Progress func(done, total int64)
	// LogEvery is the interval of progress log lines (default 15s).
	LogEvery time.Duration
	// TableDone is told when a table's last chunk is in (from a worker:
	// it should hand slow work to another goroutine).
	TableDone func(table string)
}

// Stats sum up a copy.
type Stats struct {
	Rows     int64
	Bytes    int64
	Chunks   int64
	Warnings int64
	Elapsed  time.Duration
	Loader   Loader
}

type chunk struct {
	ts  *tableRun
	gap int
	seq int
	r   schema.Range
}

type tableRun struct {
	job      *Job
	key      schema.Key
	bounds   schema.Boundaries
	tracker  *schema.Tracker
	gaps     []schema.Range
	gapIdx   int
	cur      schema.Tuple
	seq      int
	started  bool
	out      bool // every chunk handed out
	inflight int
	complete bool
	rows     int64
	bytes    int64
	warnings int64
	warned   bool
	live     atomic.Int64 // rows of chunks in flight, for progress
}

func (t *tableRun) name() string { return t.job.Table.FullName() }

// estDone estimates the table-data bytes copied so far.
func (t *tableRun) estDone() int64 {
	dl := t.job.Table.DataLength
	if t.complete {
		return dl
	}
	rows := t.rows + t.live.Load()
	est := t.job.Table.Rows
	if rows > est {
		est = rows + rows/10
	}
	if est <= 0 {
		return 0
	}
	d := int64(float64(dl) * float64(rows) / float64(est))
	if d > dl {
		d = dl
	}
	return d
}

type copier struct {
	src, dst *sql.DB
	dstSrv   *schema.Server
	o        Options
	tables   []*tableRun
	limiter  *Limiter

	mu     sync.Mutex
	failed error

	dirty   chan struct{}
	sent    atomic.Int64
	stats   Stats
	statsMu sync.Mutex
}

// Copy copies jobs from src to dst: tables are cut into key-range chunks
// and Parallel chunks are in flight across tables at any time. It returns
// when every table is complete, or at the first failure (the checkpoint
// then holds every chunk finished so far).
func Copy(ctx context.Context, src, dst *sql.DB, dstSrv *schema.Server, jobs []*Job, o Options) (Stats, error) {
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 16 << 20
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.LogEvery <= 0 {
		o.LogEvery = 15 * time.Second
	}
	c := &copier{src: src, dst: dst, dstSrv: dstSrv, o: o, limiter: NewLimiter(o.MaxRate), dirty: make(chan struct{}, 1)}
	for _, j := range jobs {
		t := &tableRun{job: j, key: schema.TableKey(j.Table), tracker: schema.NewTracker(j.Done), rows: j.PrevRows, bytes: j.PrevBytes}
		t.gaps = t.tracker.Gaps()
		if len(t.gaps) == 0 {
			t.out, t.complete = true, true
		} else {
			t.cur = t.gaps[0].Lo
		}
		c.tables = append(c.tables, t)
	}
	// Big tables first, so the longest one does not start last.
	sort.SliceStable(c.tables, func(i, j int) bool { return c.tables[i].job.Table.DataLength > c.tables[j].job.Table.DataLength })
	start := time.Now()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The journal writer: one checkpoint at a time, always the latest state.
	ckDone := make(chan error, 1)
	go func() { ckDone <- c.checkpointLoop(ctx) }()
	progDone := make(chan struct{})
	go func() { c.progressLoop(ctx, start); close(progDone) }()

	var wg sync.WaitGroup
	workers := o.Parallel
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.worker(ctx); err != nil {
				c.fail(err)
				cancel()
			}
		}()
	}
	wg.Wait()
	c.mu.Lock()
	err := c.failed
	c.mu.Unlock()
	if perr := parent.Err(); perr != nil {
		// Stopped from outside: whatever broke on the way is a consequence.
		err = perr
	}
	cancel()
	<-progDone
	if ckErr := <-ckDone; ckErr != nil && err == nil {
		err = ckErr
	}
	// The final state, whatever happened: what is done stays done.
	if o.Checkpoint != nil {
		if ckErr := o.Checkpoint(c.states()); ckErr != nil && err == nil {
			err = ckErr
		}
	}
	c.statsMu.Lock()
	st := c.stats
	c.statsMu.Unlock()
	st.Elapsed = time.Since(start)
	if o.Progress != nil {
		d, tot := c.estimate()
		o.Progress(d, tot)
	}
	return st, err
}

func (c *copier) fail(err error) {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = err
	}
	c.mu.Unlock()
}

func (c *copier) states() []TableState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TableState, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, TableState{Table: t.name(), Done: t.tracker.Done(), Complete: t.complete,
			Rows: t.rows, Bytes: t.bytes, Warnings: t.warnings})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

func (c *copier) estimate() (done, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tables {
		done += t.estDone()
		total += t.job.Table.DataLength
	}
	return done, total
}

func (c *copier) checkpointLoop(ctx context.Context) error {
	if c.o.Checkpoint == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.dirty:
			if err := c.o.Checkpoint(c.states()); err != nil {
				c.fail(fmt.Errorf("journal: %w", err))
				return err
			}
		}
	}
}

func (c *copier) progressLoop(ctx context.Context, start time.Time) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		done, total := c.estimate()
		if c.o.Progress != nil {
			c.o.Progress(done, total)
		}
		if time.Since(lastLog) >= c.o.LogEvery {
			lastLog = time.Now()
			c.statsMu.Lock()
			rows := c.stats.Rows
			c.statsMu.Unlock()
			el := time.Since(start)
			rate := float64(c.sent.Load()) / el.Seconds()
			eta := "unknown"
			if done > 0 && total > done {
				eta = (time.Duration(float64(el) * float64(total-done) / float64(done))).Round(time.Second).String()
			}
			c.o.Logf("copied %d rows, %s sent (%.1f MiB/s), ~%d%% of %s of table data, ETA %s",
				rows, mib(c.sent.Load()), rate/(1<<20), pct(done, total), mib(total), eta)
		}
	}
}

func pct(a, b int64) int64 {
	if b <= 0 {
		return 100
	}
	return a * 100 / b
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// next hands out the next chunk: from the table with the fewest chunks in
// flight (the biggest first), so parallel loads go to different tables. It
// returns nil when nothing is left.
func (c *copier) next(ctx context.Context) (*chunk, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil || ctx.Err() != nil {
		return nil, nil
	}
	var pick *tableRun
	for _, t := range c.tables {
		if !t.out && (pick == nil || t.inflight < pick.inflight) {
			pick = t
		}
	}
	if pick == nil {
		return nil, nil
	}
	if !pick.started {
		pick.started = true
		rows := c.o.ChunkRows
		if rows <= 0 {
			avg := pick.job.Table.AvgRowLength
			if avg <= 0 {
				avg = 256
			}
			rows = max(100, min(c.o.ChunkBytes/avg, 5_000_000))
		}
		// Boundaries are found on a pooled connection of the source, in
		// the default (utf8mb4) character set the key values are bound in.
		var b schema.Boundaries = schema.WholeTable
		if !pick.job.Bulk {
			var err error
			if b, err = schema.NewBoundaries(ctx, c.src, pick.job.Table, rows); err != nil {
				return nil, err
			}
		}
		pick.bounds = b
		if len(pick.key.Cols) == 0 {
			c.o.Logf("%s: no usable key (%s): copying it whole in one transaction", pick.name(), pick.job.Table.NoKeyReason)
		}
	}
	g := pick.gaps[pick.gapIdx]
	hi, err := pick.bounds.Next(ctx, pick.cur, g.Hi)
	if err != nil {
		return nil, err
	}
	ch := &chunk{ts: pick, gap: pick.gapIdx, seq: pick.seq, r: schema.Range{Lo: pick.cur, Hi: hi}}
	pick.seq++
	pick.cur = hi
	if hi.Equal(g.Hi) {
		pick.gapIdx++
		pick.seq = 0
		if pick.gapIdx >= len(pick.gaps) {
			pick.out = true
		} else {
			pick.cur = pick.gaps[pick.gapIdx].Lo
		}
	}
	pick.inflight++
	return ch, nil
}

func (c *copier) finish(ch *chunk, res Result) {
	c.mu.Lock()
	t := ch.ts
	t.live.Add(-res.Rows)
	t.tracker.Finish(ch.gap, ch.seq, ch.r)
	t.inflight--
	t.rows += res.Rows
	t.bytes += res.Bytes
	t.warnings += res.Warnings
	firstWarn := res.Warnings > 0 && !t.warned
	if firstWarn {
		t.warned = true
	}
	done := false
	if t.out && t.inflight == 0 && t.tracker.Complete() {
		t.complete, done = true, true
	}
	c.mu.Unlock()
	if done && c.o.TableDone != nil {
		c.o.TableDone(t.name())
	}
	c.statsMu.Lock()
	c.stats.Rows += res.Rows
	c.stats.Bytes += res.Bytes
	c.stats.Chunks++
	c.stats.Warnings += res.Warnings
	c.statsMu.Unlock()
	if firstWarn {
		c.o.Logf("%s: the target reported %d warning(s) loading %s, first: %s (verify compares the data)", t.name(), res.Warnings, ch.r, res.FirstWarning)
	}
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *copier) worker(ctx context.Context) error {
	var p *Pair
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	for {
		ch, err := c.next(ctx)
		if err != nil {
			return err
		}
		if ch == nil {
			return nil
		}
		if p == nil {
			p, err = OpenPair(ctx, c.src, c.dst, c.dstSrv, PairOptions{Loader: c.o.Loader, Limiter: c.limiter,
				OnBytes: func(n int64) { c.sent.Add(n) }})
			if err != nil {
				return err
			}
			c.statsMu.Lock()
			c.stats.Loader = p.Loader()
			c.statsMu.Unlock()
		}
		res, err := c.copyChunk(ctx, p, ch)
		if err != nil {
			return fmt.Errorf("copy %s %s: %w", ch.ts.name(), ch.r, err)
		}
		c.finish(ch, res)
	}
}

// copyChunk copies one chunk, retrying deadlocks and lock wait timeouts
// (a live target may have other writers).
func (c *copier) copyChunk(ctx context.Context, p *Pair, ch *chunk) (Result, error) {
	t := ch.ts
	where, args := t.key.Where(ch.r)
	sel := Selection{Where: where, Args: args, Ordered: true, Live: &t.live, Bulk: t.job.Bulk}
	switch {
	case len(t.key.Cols) == 0:
		sel.Delete = "1=1"
	case t.job.RangeDelete:
		sel.Delete, sel.DeleteArgs = where, args
	}
	for attempt := 1; ; attempt++ {
		res, err := p.Copy(ctx, t.job.Table, sel)
		var me *mysql.MySQLError
		if err != nil && attempt < 6 && errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
			t.live.Add(-res.Rows)
			c.o.Logf("%s %s: %v; retrying", t.name(), ch.r, err)
			select {
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			case <-ctx.Done():
				return res, ctx.Err()
			}
			continue
		}
		return res, err
	}
}
