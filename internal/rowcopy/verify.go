package rowcopy

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/decant-sh/decant/internal/schema"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Parallel is the number of chunks checksummed at once (each on both
	// servers at the same time); default: cores.
	Parallel int
	// ChunkRows fixes the rows per chunk; otherwise about ChunkBytes
	// (default 32 MiB) of table data.
	ChunkRows  int64
	ChunkBytes int64
	// MaxListed bounds the rows listed per table (default 20); all are counted.
	MaxListed int
	Logf      func(format string, args ...any)
	Progress  func(done, total int64)
}

// RowDiff is one row that differs.
type RowDiff struct {
	Key  schema.Tuple `json:"key,omitempty"`
	What string       `json:"what"` // "missing on target", "extra on target", "differs"
}

// TableCheck is the verdict for one table.
type TableCheck struct {
	Table      string `json:"table"`
	SourceRows int64  `json:"source_rows"`
	TargetRows int64  `json:"target_rows"`
	Chunks     int    `json:"chunks"`
	// BadChunks are the key ranges whose checksums differed.
	BadChunks []schema.Range `json:"bad_chunks,omitempty"`
	// Diffs lists the first differing rows; DiffCount counts them all.
	Diffs     []RowDiff `json:"diffs,omitempty"`
	DiffCount int64     `json:"diff_count,omitempty"`
	// Missing is set when the target has no such table.
	Missing bool `json:"missing,omitempty"`
	// NoKey: the table was checksummed whole and differing rows are
	// counted by content, not listed by key.
	NoKey bool `json:"no_key,omitempty"`
}

// OK reports whether the table matched.
func (c *TableCheck) OK() bool {
	return !c.Missing && len(c.BadChunks) == 0 && c.DiffCount == 0 && c.SourceRows == c.TargetRows
}

// rowExpr is the per-row checksum input: every copied column as bytes (so
// charset and encoding damage shows), a separator, and a NULL bitmap (so
// NULL and ” differ).
func rowExpr(t *schema.Table) string {
	cols := t.CopyColumns()
	parts := make([]string, 0, len(cols)+1)
	nulls := make([]string, 0, len(cols))
	for _, c := range cols {
		q := schema.QuoteIdent(c.Name)
		switch {
		case c.DataType == "float":
			// Printed as a double: every bit of the value shows.
			parts = append(parts, "("+q+" + 0e0)")
		case c.Collation != "" || c.Binary():
			parts = append(parts, "CAST("+q+" AS BINARY)")
		default:
			parts = append(parts, q)
		}
		nulls = append(nulls, "ISNULL("+q+")")
	}
	parts = append(parts, "CONCAT("+strings.Join(nulls, ",")+")")
	return "CRC32(CONCAT_WS('#'," + strings.Join(parts, ",") + "))"
}

type sum struct {
	count int64
	xor   int64
}

func chunkSum(ctx context.Context, conn *sql.Conn, t *schema.Table, where string, args []any) (sum, error) {
	k := schema.TableKey(t)
	q := "SELECT COUNT(*), COALESCE(BIT_XOR(" + rowExpr(t) + "),0) FROM " + t.Quoted()
	if len(k.Cols) > 0 {
		q += k.ForceIndex()
	}
	q += " WHERE " + where
	var s sum
	err := conn.QueryRowContext(ctx, q, args...).Scan(&s.count, &s.xor)
	return s, err
}

type vchunk struct {
	tc *tableVerify
	r  schema.Range
}

type tableVerify struct {
	t   *schema.Table
	key schema.Key
	mu  sync.Mutex
	res TableCheck
}

// Verify compares tables on both servers chunk by chunk: COUNT(*) and
// BIT_XOR(CRC32(row bytes)) per key range, computed on both at once;
// ranges that differ are narrowed down to their rows. It returns one
// verdict per table (in the order given).
func Verify(ctx context.Context, src, dst *sql.DB, tables []*schema.Table, o VerifyOptions) ([]*TableCheck, error) {
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 32 << 20
	}
	if o.MaxListed <= 0 {
		o.MaxListed = 20
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	var total, done int64
	var progMu sync.Mutex
	tvs := make([]*tableVerify, len(tables))
	for i, t := range tables {
		tvs[i] = &tableVerify{t: t, key: schema.TableKey(t), res: TableCheck{Table: t.FullName(), NoKey: len(t.Key) == 0}}
		total += t.DataLength
	}
	// Tables missing on the target fail without being read.
	for _, tv := range tvs {
		names, err := schema.TableNames(ctx, dst, tv.t.DB)
		if err != nil {
			return nil, err
		}
		if names[tv.t.Name] != "BASE TABLE" {
			tv.res.Missing = true
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan vchunk, o.Parallel)
	var firstErr error
	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	go func() {
		defer close(work)
		for _, tv := range tvs {
			if tv.res.Missing {
				continue
			}
			rows := o.ChunkRows
			if rows <= 0 {
				avg := tv.t.AvgRowLength
				if avg <= 0 {
					avg = 256
				}
				rows = max(1000, min(o.ChunkBytes/avg, 10_000_000))
			}
			b, err := schema.NewBoundaries(ctx, src, tv.t, rows)
			if err != nil {
				fail(err)
				return
			}
			var cur schema.Tuple
			for {
				hi, err := b.Next(ctx, cur, nil)
				if err != nil {
					fail(err)
					return
				}
				select {
				case work <- vchunk{tc: tv, r: schema.Range{Lo: cur, Hi: hi}}:
				case <-ctx.Done():
					return
				}
				if hi == nil {
					break
				}
				cur = hi
			}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < o.Parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc, sclose, err := openConn(ctx, src, [][2]string{{"time_zone", "'+00:00'"}})
			if err != nil {
				fail(fmt.Errorf("source: %w", err))
				return
			}
			defer sclose()
			dc, dclose, err := openConn(ctx, dst, [][2]string{{"time_zone", "'+00:00'"}})
			if err != nil {
				fail(fmt.Errorf("target: %w", err))
				return
			}
			defer dclose()
			for ch := range work {
				if err := verifyChunk(ctx, sc, dc, ch, o.MaxListed); err != nil {
					fail(fmt.Errorf("verify %s %s: %w", ch.tc.t.FullName(), ch.r, err))
					return
				}
				if o.Progress != nil {
					progMu.Lock()
					done = 0
					for _, tv := range tvs {
						tv.mu.Lock()
						rows := tv.res.SourceRows
						tv.mu.Unlock()
						est := max(tv.t.Rows, 1)
						done += min(tv.t.DataLength, int64(float64(tv.t.DataLength)*float64(rows)/float64(est)))
					}
					o.Progress(done, total)
					progMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]*TableCheck, len(tvs))
	for i, tv := range tvs {
		out[i] = &tv.res
	}
	if o.Progress != nil {
		o.Progress(total, total)
	}
	return out, nil
}

func verifyChunk(ctx context.Context, sc, dc *sql.Conn, ch vchunk, maxListed int) error {
	tv := ch.tc
	where, args := tv.key.Where(ch.r)
	var ss, ds sum
	var serr, derr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ds, derr = chunkSum(ctx, dc, tv.t, where, args)
	}()
	ss, serr = chunkSum(ctx, sc, tv.t, where, args)
	wg.Wait()
	if serr != nil {
		return fmt.Errorf("source: %w", serr)
	}
	if derr != nil {
		return fmt.Errorf("target: %w", derr)
	}
	tv.mu.Lock()
	tv.res.Chunks++
	tv.res.SourceRows += ss.count
	tv.res.TargetRows += ds.count
	tv.mu.Unlock()
	if ss == ds {
		return nil
	}
	diffs, n, err := narrow(ctx, sc, dc, tv, where, args, maxListed)
	if err != nil {
		return fmt.Errorf("narrow down: %w", err)
	}
	tv.mu.Lock()
	defer tv.mu.Unlock()
	tv.res.BadChunks = append(tv.res.BadChunks, ch.r)
	tv.res.DiffCount += n
	for _, d := range diffs {
		if len(tv.res.Diffs) < maxListed {
			tv.res.Diffs = append(tv.res.Diffs, d)
		}
	}
	return nil
}

// narrow lists the rows of a range that differ: each side's (key, row
// checksum) pairs, compared by key. Memory is one chunk's keys.
func narrow(ctx context.Context, sc, dc *sql.Conn, tv *tableVerify, where string, args []any, maxListed int) ([]RowDiff, int64, error) {
	t := tv.t
	nk := len(tv.key.Cols)
	sel := rowExpr(t)
	if nk > 0 {
		sel = tv.key.ColumnList() + "," + sel
	}
	q := "SELECT " + sel + " FROM " + t.Quoted() + " WHERE " + where
	read := func(conn *sql.Conn, each func(key string, tup schema.Tuple, crc int64)) error {
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		vals := make([]sql.RawBytes, nk)
		var crc int64
		ptrs := make([]any, nk+1)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ptrs[nk] = &crc
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			tup := make(schema.Tuple, nk)
			for i, v := range vals {
				tup[i] = string(v)
			}
			each(strings.Join(tup, "\x00"), tup, crc)
		}
		return rows.Err()
	}
	var diffs []RowDiff
	var n int64
	add := func(d RowDiff) {
		n++
		if len(diffs) < maxListed {
			diffs = append(diffs, d)
		}
	}
	if nk == 0 {
		// No key: compare the multisets of row checksums.
		counts := map[int64]int{}
		if err := read(sc, func(_ string, _ schema.Tuple, crc int64) { counts[crc]++ }); err != nil {
			return nil, 0, fmt.Errorf("source: %w", err)
		}
		if err := read(dc, func(_ string, _ schema.Tuple, crc int64) { counts[crc]-- }); err != nil {
			return nil, 0, fmt.Errorf("target: %w", err)
		}
		for _, c := range counts {
			for ; c > 0; c-- {
				add(RowDiff{What: "missing on target"})
			}
			for ; c < 0; c++ {
				add(RowDiff{What: "extra on target"})
			}
		}
		return diffs, n, nil
	}
	type srow struct {
		tup schema.Tuple
		crc int64
	}
	srcRows := map[string]srow{}
	var order []string
	if err := read(sc, func(k string, tup schema.Tuple, crc int64) {
		srcRows[k] = srow{tup, crc}
		order = append(order, k)
	}); err != nil {
		return nil, 0, fmt.Errorf("source: %w", err)
	}
	var extra []RowDiff
	seen := map[string]bool{}
	if err := read(dc, func(k string, tup schema.Tuple, crc int64) {
		s, ok := srcRows[k]
		switch {
		case !ok:
			extra = append(extra, RowDiff{Key: tup, What: "extra on target"})
		case s.crc != crc:
			seen[k] = true
			add(RowDiff{Key: tup, What: "differs"})
		default:
			seen[k] = true
		}
	}); err != nil {
		return nil, 0, fmt.Errorf("target: %w", err)
	}
	for _, k := range order {
		if !seen[k] {
			add(RowDiff{Key: srcRows[k].tup, What: "missing on target"})
		}
	}
	for _, d := range extra {
		add(d)
	}
	return diffs, n, nil
}

// Summary is a one-line verdict for a table check.
func (c *TableCheck) Summary() string {
	switch {
	case c.Missing:
		return fmt.Sprintf("%s: missing on the target", c.Table)
	case c.OK():
		return fmt.Sprintf("%s: %d rows match (%d chunks)", c.Table, c.SourceRows, c.Chunks)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows on the source, %d on the target; %d row(s) differ in %d of %d chunks", c.Table,
		c.SourceRows, c.TargetRows, c.DiffCount, len(c.BadChunks), c.Chunks)
	if len(c.Diffs) > 0 {
		var parts []string
		for _, d := range c.Diffs {
			if d.Key != nil {
				parts = append(parts, fmt.Sprintf("%s %s", d.Key, d.What))
			} else {
				parts = append(parts, d.What)
			}
		}
		more := ""
		if c.DiffCount > int64(len(c.Diffs)) {
			more = fmt.Sprintf(", and %d more", c.DiffCount-int64(len(c.Diffs)))
		}
		fmt.Fprintf(&b, ": %s%s", strings.Join(parts, "; "), more)
	}
	return b.String()
}
