package rowcopy

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/decant-sh/decant/internal/schema"
)

// Loader is how rows are written on the target.
type Loader string

// Loaders. LoadData streams tab-separated rows into LOAD DATA LOCAL INFILE
// (the target must allow local_infile); Insert sends multi-row REPLACE
// statements and works everywhere.
const (
	LoadData Loader = "load-data"
	Insert   Loader = "insert"
)

// Selection says which rows one transfer moves: Where (with Args) selects
// them on the source; Delete (with DeleteArgs), when set, removes the
// target's rows of the same key range or key set first, in the same
// transaction, which makes the transfer idempotent.
type Selection struct {
	Where      string
	Args       []any
	Delete     string
	DeleteArgs []any
	// Ordered reads rows in key order (they insert faster that way).
	Ordered bool
	// Bulk loads a whole table that this copy owns: the target table is
	// truncated, then filled in one transaction with unique_checks off,
	// which MariaDB 10.6+ turns into its bulk insert (no undo per row,
	// indexes built by sorting). The source rows come from one statement,
	// a consistent snapshot, so no key repeats. Where and Delete are
	// ignored.
	Bulk bool
	// Live, when set, counts rows as they go (for progress).
	Live *atomic.Int64
}

// Result counts what one transfer moved.
type Result struct {
	Rows     int64
	Bytes    int64 // payload bytes sent to the target
	Deleted  int64 // target rows the delete removed
	Warnings int64 // warnings the target reported while loading
	// FirstWarning is the first of them, for the log.
	FirstWarning string
}

// Pair is a source and a target connection set up for copying: raw bytes
// from the source, a permissive UTC session on the target. Close restores
// both sessions.
type Pair struct {
	src, dst *sql.Conn
	closers  []func()
	dstSrv   *schema.Server
	loader   Loader
	limiter  *Limiter
	// maxStmt bounds a multi-row REPLACE (Insert loader).
	maxStmt int
	// onBytes, when set, is told about payload bytes as they are sent.
	onBytes func(int64)
}

// PairOptions configure OpenPair.
type PairOptions struct {
	Loader  Loader
	Limiter *Limiter
	OnBytes func(int64)
}

// OpenPair takes one connection from each pool and prepares both sessions.
func OpenPair(ctx context.Context, src, dst *sql.DB, dstSrv *schema.Server, o PairOptions) (*Pair, error) {
	p := &Pair{dstSrv: dstSrv, loader: o.Loader, limiter: o.Limiter, onBytes: o.OnBytes}
	if p.loader == "" {
		p.loader = LoadData
		if dstSrv != nil && !dstSrv.LocalInfile {
			p.loader = Insert
		}
	}
	p.maxStmt = 1 << 20 // bigger statements save little and cost memory
	if dstSrv != nil && dstSrv.MaxAllowedPacket > 0 && int64(p.maxStmt) > dstSrv.MaxAllowedPacket/2 {
		p.maxStmt = int(dstSrv.MaxAllowedPacket / 2)
	}
	var err error
	var c func()
	if p.src, c, err = openConn(ctx, src, sourceSession); err != nil {
		return nil, fmt.Errorf("source session: %w", err)
	}
	p.closers = append(p.closers, c)
	if p.dst, c, err = openConn(ctx, dst, targetSession); err != nil {
		p.Close()
		return nil, fmt.Errorf("target session: %w", err)
	}
	p.closers = append(p.closers, c)
	return p, nil
}

// Close restores the sessions and returns the connections to their pools.
func (p *Pair) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Loader is the loader in use.
func (p *Pair) Loader() Loader { return p.loader }

var readerSeq atomic.Int64

// Copy moves the rows of t chosen by sel from the source to the target in
// one target transaction.
func (p *Pair) Copy(ctx context.Context, t *schema.Table, sel Selection) (Result, error) {
	var res Result
	cols := t.CopyColumns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = schema.QuoteIdent(c.Name)
	}
	q := "SELECT " + strings.Join(names, ",") + " FROM " + t.Quoted()
	k := schema.TableKey(t)
	if len(k.Cols) > 0 {
		q += k.ForceIndex()
	}
	if sel.Where != "" {
		q += " WHERE " + sel.Where
	}
	if sel.Ordered && len(k.Cols) > 0 {
		q += " ORDER BY " + k.OrderBy()
	}
	// READ COMMITTED: the range delete takes no gap locks, so chunks of one
	// table loading side by side do not deadlock on each other's edges.
	if sel.Bulk {
		sel.Where, sel.Args, sel.Delete = "", nil, ""
		if _, err := p.dst.ExecContext(ctx, "TRUNCATE TABLE "+t.Quoted()); err != nil {
			return res, fmt.Errorf("empty the table on the target: %w", err)
		}
		if _, err := p.dst.ExecContext(ctx, "SET SESSION unique_checks = 0"); err != nil {
			return res, fmt.Errorf("target session: %w", err)
		}
		defer p.dst.ExecContext(context.Background(), "SET SESSION unique_checks = 1")
	}
	tx, err := p.dst.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return res, fmt.Errorf("begin on target: %w", err)
	}
	defer tx.Rollback()
	if sel.Delete != "" {
		r, err := tx.ExecContext(ctx, "DELETE FROM "+t.Quoted()+" WHERE "+sel.Delete, sel.DeleteArgs...)
		if err != nil {
			return res, fmt.Errorf("clear the range on the target: %w", err)
		}
		res.Deleted, _ = r.RowsAffected()
	}
	// Always prepare: the binary protocol returns FLOAT and DOUBLE exactly,
	// where the text protocol rounds FLOAT to 6 digits.
	stmt, err := p.src.PrepareContext(ctx, q)
	if err != nil {
		return res, fmt.Errorf("read from the source: %w", err)
	}
	defer stmt.Close()
	rows, err := stmt.QueryContext(ctx, sel.Args...)
	if err != nil {
		return res, fmt.Errorf("read from the source: %w", err)
	}
	defer rows.Close()
	rr := newRowReader(rows, len(cols), p.limiter, p.onBytes)
	rr.live = sel.Live
	verb := "REPLACE"
	if sel.Bulk {
		verb = "" // REPLACE would take InnoDB off its bulk path
	}
	switch p.loader {
	case Insert:
		err = p.insert(ctx, tx, t, cols, names, rr, verb)
	default:
		err = p.loadData(ctx, tx, t, cols, names, rr, verb)
	}
	res.Rows, res.Bytes = rr.nrows, rr.bytes
	if err != nil {
		if rr.err != nil && rr.err != io.EOF {
			return res, fmt.Errorf("read from the source: %w", rr.err)
		}
		return res, fmt.Errorf("load into the target: %w", err)
	}
	if rr.err != nil && rr.err != io.EOF {
		return res, fmt.Errorf("read from the source: %w", rr.err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&res.Warnings); err == nil && res.Warnings > 0 {
		var level, msg string
		var code int
		if err := tx.QueryRowContext(ctx, "SHOW WARNINGS LIMIT 1").Scan(&level, &code, &msg); err == nil {
			res.FirstWarning = fmt.Sprintf("%s %d: %s", level, code, msg)
		}
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit on the target: %w", err)
	}
	return res, nil
}

// jsonOnMySQL reports whether a column must be converted on load: MySQL
// refuses to build a JSON value from a binary-charset string.
func (p *Pair) jsonOnMySQL(c schema.Column) bool {
	return c.DataType == "json" && p.dstSrv != nil && p.dstSrv.Flavor == schema.MySQL
}

func (p *Pair) loadData(ctx context.Context, tx *sql.Tx, t *schema.Table, cols []schema.Column, names []string, rr *rowReader, verb string) error {
	name := "decant-" + strconv.FormatInt(readerSeq.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return rr })
	defer mysql.DeregisterReaderHandler(name)
	target := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		target[i] = names[i]
		if p.jsonOnMySQL(c) {
			v := "@decant_v" + strconv.Itoa(i)
			target[i] = v
			sets = append(sets, names[i]+" = CONVERT("+v+" USING utf8mb4)")
		}
	}
	// CHARACTER SET binary: the bytes are stored as they came, whatever
	// the column's charset, so nothing is converted twice.
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' " + verb + " INTO TABLE " + t.Quoted() +
		" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" +
		strings.Join(target, ",") + ")"
	if len(sets) > 0 {
		q += " SET " + strings.Join(sets, ",")
	}
	_, err := tx.ExecContext(ctx, q)
	return err
}

func (p *Pair) insert(ctx context.Context, tx *sql.Tx, t *schema.Table, cols []schema.Column, names []string, rr *rowReader, verb string) error {
	if verb == "" {
		verb = "INSERT"
	}
	head := verb + " INTO " + t.Quoted() + " (" + strings.Join(names, ",") + ") VALUES "
	conv := make([]bool, len(cols))
	for i, c := range cols {
		conv[i] = p.jsonOnMySQL(c)
	}
	buf := make([]byte, 0, 1<<20)
	buf = append(buf, head...)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, string(buf)); err != nil {
			return err
		}
		buf = append(buf[:0], head...)
		n = 0
		return nil
	}
	for rr.next() {
		start := len(buf)
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '(')
		for i, v := range rr.vals {
			if i > 0 {
				buf = append(buf, ',')
			}
			if v == nil {
				buf = append(buf, "NULL"...)
				continue
			}
			if conv[i] {
				buf = append(buf, "CONVERT("...)
			}
			buf = append(buf, "_binary'"...)
			buf = appendSQLEscaped(buf, v)
			buf = append(buf, '\'')
			if conv[i] {
				buf = append(buf, " USING utf8mb4)"...)
			}
		}
		buf = append(buf, ')')
		rr.account(int64(len(buf) - start))
		n++
		if len(buf) >= p.maxStmt {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if rr.err != nil && rr.err != io.EOF {
		return rr.err
	}
	return flush()
}

// rowReader turns source rows into LOAD DATA's tab-separated text as the
// driver asks for it: memory stays at one buffer and one row whatever the
// chunk size.
// rowSource is what rowReader reads: *sql.Rows.
type rowSource interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

type rowReader struct {
	rows    rowSource
	vals    []sql.RawBytes
	ptrs    []any
	buf     []byte
	off     int
	err     error
	limiter *Limiter
	onBytes func(int64)
	nrows   int64 // rows read
	bytes   int64 // payload bytes produced
	live    *atomic.Int64
}

func newRowReader(rows rowSource, ncols int, l *Limiter, onBytes func(int64)) *rowReader {
	r := &rowReader{rows: rows, vals: make([]sql.RawBytes, ncols), ptrs: make([]any, ncols), limiter: l, onBytes: onBytes}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r
}

// next advances to the next row (in r.vals); false at the end or on error
// (r.err is io.EOF at the end).
func (r *rowReader) next() bool {
	if r.err != nil {
		return false
	}
	if !r.rows.Next() {
		r.err = r.rows.Err()
		if r.err == nil {
			r.err = io.EOF
		}
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	r.nrows++
	if r.live != nil {
		r.live.Add(1)
	}
	return true
}

// account counts payload bytes and applies the rate limit.
func (r *rowReader) account(n int64) {
	r.bytes += n
	if r.onBytes != nil {
		r.onBytes(n)
	}
	if r.limiter != nil {
		r.limiter.Wait(n)
	}
}

// Read implements io.Reader for the driver's LOAD DATA LOCAL handler.
func (r *rowReader) Read(p []byte) (int, error) {
	if r.off > 0 && len(r.buf)-r.off < len(p) {
		// Keep the buffer at one read plus one row: move the rest down.
		n := copy(r.buf, r.buf[r.off:])
		r.buf, r.off = r.buf[:n], 0
	}
	for len(r.buf)-r.off < len(p) && r.next() {
		start := len(r.buf)
		for i, v := range r.vals {
			if i > 0 {
				r.buf = append(r.buf, '\t')
			}
			if v == nil {
				r.buf = append(r.buf, '\\', 'N')
				continue
			}
			r.buf = appendTSVEscaped(r.buf, v)
		}
		r.buf = append(r.buf, '\n')
		r.account(int64(len(r.buf) - start))
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	if r.off == len(r.buf) {
		r.buf, r.off = r.buf[:0], 0
	}
	if n == 0 && r.err != nil {
		return 0, r.err
	}
	return n, nil
}

// appendTSVEscaped escapes what LOAD DATA's default FIELDS ESCAPED BY '\\'
// would misread: the escape itself, the separators and NUL.
func appendTSVEscaped(dst, v []byte) []byte {
	start := 0
	for i, c := range v {
		var esc byte
		switch c {
		case '\\':
			esc = '\\'
		case '\t':
			esc = 't'
		case '\n':
			esc = 'n'
		case 0:
			esc = '0'
		default:
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// appendSQLEscaped escapes a value for a '...' literal in a session
// without NO_BACKSLASH_ESCAPES.
func appendSQLEscaped(dst, v []byte) []byte {
	start := 0
	for i, c := range v {
		var esc byte
		switch c {
		case '\\':
			esc = '\\'
		case '\'':
			esc = '\''
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case 0:
			esc = '0'
		case 0x1a:
			esc = 'Z'
		default:
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	return append(dst, v[start:]...)
}

// Limiter caps the payload rate of all transfers sharing it (bytes/s), so
// a copy from a live server leaves it room to serve its site.
type Limiter struct {
	rate  float64
	start time.Time
	sent  atomic.Int64
}

// NewLimiter returns a limiter for rate bytes per second (nil when rate <= 0).
func NewLimiter(rate int64) *Limiter {
	if rate <= 0 {
		return nil
	}
	return &Limiter{rate: float64(rate), start: time.Now()}
}

// Wait accounts n bytes and sleeps while the total is ahead of the rate.
func (l *Limiter) Wait(n int64) {
	if l == nil {
		return
	}
	total := l.sent.Add(n)
	due := l.start.Add(time.Duration(float64(total) / l.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}
