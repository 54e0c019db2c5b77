package schema

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tuple is one value of a table's key, column by column, as the server
// prints it on a utf8mb4 connection (binary columns: the raw bytes). A nil
// Tuple stands for an open end of a Range.
type Tuple []string

// Equal reports byte equality: range boundaries are only ever compared
// with boundaries the server gave, never ordered in Go.
func (t Tuple) Equal(o Tuple) bool {
	if (t == nil) != (o == nil) || len(t) != len(o) {
		return false
	}
	for i := range t {
		if t[i] != o[i] {
			return false
		}
	}
	return true
}

// String shows the tuple for messages: "42" or "(7,'x')".
func (t Tuple) String() string {
	if t == nil {
		return "∞"
	}
	parts := make([]string, len(t))
	for i, v := range t {
		if utf8.ValidString(v) {
			parts[i] = v
		} else {
			parts[i] = "0x" + hex.EncodeToString([]byte(v))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// MarshalJSON writes valid UTF-8 values as strings and others as
// {"hex": "..."}, so binary keys survive the journal.
func (t Tuple) MarshalJSON() ([]byte, error) {
	if t == nil {
		return []byte("null"), nil
	}
	out := make([]any, len(t))
	for i, v := range t {
		if utf8.ValidString(v) {
			out[i] = v
		} else {
			out[i] = map[string]string{"hex": hex.EncodeToString([]byte(v))}
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (t *Tuple) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = nil
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Tuple, len(raw))
	for i, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			out[i] = s
			continue
		}
		var h struct {
			Hex string `json:"hex"`
		}
		if err := json.Unmarshal(r, &h); err != nil {
			return fmt.Errorf("key value %s: %w", r, err)
		}
		d, err := hex.DecodeString(h.Hex)
		if err != nil {
			return fmt.Errorf("key value %s: %w", r, err)
		}
		out[i] = string(d)
	}
	*t = out
	return nil
}

// Range is the key interval (Lo, Hi]; a nil end is open (−∞ or +∞).
type Range struct {
	Lo Tuple `json:"lo"`
	Hi Tuple `json:"hi"`
}

// All is the whole key space.
func (r Range) All() bool { return r.Lo == nil && r.Hi == nil }

// String shows the range for messages.
func (r Range) String() string {
	lo, hi := "(−∞", "+∞)"
	if r.Lo != nil {
		lo = "(" + r.Lo.String()
	}
	if r.Hi != nil {
		hi = r.Hi.String() + "]"
	}
	return lo + ", " + hi
}

// Key describes how a table's key is compared in SQL.
type Key struct {
	Cols []Column
	// Index is the index to force for range scans ("PRIMARY" or a unique
	// key name); empty for none.
	Index string
}

// TableKey returns the chunking key of t (Cols empty when t has none).
func TableKey(t *Table) Key {
	return Key{Cols: t.KeyColumns(), Index: t.KeyIndex}
}

// ColumnList is "`a`,`b`".
func (k Key) ColumnList() string {
	names := make([]string, len(k.Cols))
	for i, c := range k.Cols {
		names[i] = QuoteIdent(c.Name)
	}
	return strings.Join(names, ",")
}

// Bind converts a tuple's values to driver arguments so the server
// compares them exactly as it orders the column: integers as integers (a
// string would be compared as a double and lose precision past 2^53),
// bytes for binary columns, strings otherwise (compared under the
// column's collation).
func (k Key) Bind(t Tuple) []any {
	out := make([]any, len(t))
	for i, v := range t {
		out[i] = v
		if i >= len(k.Cols) {
			continue
		}
		c := k.Cols[i]
		switch {
		case c.Binary():
			out[i] = []byte(v)
		case c.Integer() && strings.Contains(c.ColumnType, "unsigned"):
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				out[i] = n
			}
		case c.Integer():
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[i] = n
			}
		}
	}
	return out
}

// placeholder is the parameter marker for column c: DECIMAL values are
// cast back to the column's type, else a string would compare as a double.
func placeholder(c Column) string {
	if c.DataType == "decimal" || c.DataType == "numeric" {
		if i := strings.Index(c.ColumnType, "("); i >= 0 {
			if j := strings.Index(c.ColumnType[i:], ")"); j >= 0 {
				return "CAST(? AS DECIMAL" + c.ColumnType[i:i+j+1] + ")"
			}
		}
		return "CAST(? AS DECIMAL(65,30))"
	}
	return "?"
}

// compare builds "key OP tuple" for OP one of > >= < <=, expanded into
// ORs of ANDs (which every optimizer turns into index ranges, unlike row
// constructors on older MariaDB).
func (k Key) compare(op string, t Tuple) (string, []any) {
	if len(k.Cols) == 1 {
		return QuoteIdent(k.Cols[0].Name) + " " + op + " " + placeholder(k.Cols[0]), k.Bind(t)
	}
	strict := op[:1] // ">" or "<"
	var ors []string
	var args []any
	vals := k.Bind(t)
	for i := range k.Cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, QuoteIdent(k.Cols[j].Name)+" = "+placeholder(k.Cols[j]))
			args = append(args, vals[j])
		}
		o := strict
		if i == len(k.Cols)-1 {
			o = op
		}
		ands = append(ands, QuoteIdent(k.Cols[i].Name)+" "+o+" "+placeholder(k.Cols[i]))
		args = append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// Where returns the condition selecting r (without WHERE) and its
// arguments; "1=1" for the whole key space.
func (k Key) Where(r Range) (string, []any) {
	var conds []string
	var args []any
	if r.Lo != nil {
		c, a := k.compare(">", r.Lo)
		conds, args = append(conds, c), append(args, a...)
	}
	if r.Hi != nil {
		c, a := k.compare("<=", r.Hi)
		conds, args = append(conds, c), append(args, a...)
	}
	if len(conds) == 0 {
		return "1=1", nil
	}
	return strings.Join(conds, " AND "), args
}

// In returns the condition selecting exactly the given key values.
func (k Key) In(keys []Tuple) (string, []any) {
	if len(keys) == 0 {
		return "1=0", nil
	}
	var b strings.Builder
	args := make([]any, 0, len(keys)*len(k.Cols))
	if len(k.Cols) == 1 {
		b.WriteString(QuoteIdent(k.Cols[0].Name) + " IN (")
		for i, t := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(placeholder(k.Cols[0]))
			args = append(args, k.Bind(t)...)
		}
		b.WriteByte(')')
		return b.String(), args
	}
	b.WriteByte('(')
	for i, t := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for j, c := range k.Cols {
			if j > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(QuoteIdent(c.Name) + " = " + placeholder(c))
		}
		b.WriteByte(')')
		args = append(args, k.Bind(t)...)
	}
	b.WriteByte(')')
	return b.String(), args
}

// OrderBy is "`a`,`b`" for ORDER BY.
func (k Key) OrderBy() string { return k.ColumnList() }

// ForceIndex is " FORCE INDEX (`PRIMARY`)" or "".
func (k Key) ForceIndex() string {
	if k.Index == "" {
		return ""
	}
	return " FORCE INDEX (" + QuoteIdent(k.Index) + ")"
}

// Boundaries finds chunk ends in a table: Next returns the end of the
// chunk starting after cur (nil: the start), never beyond gapHi; it
// returns gapHi (nil: +∞) when the rest of the gap is one chunk.
type Boundaries interface {
	Next(ctx context.Context, cur, gapHi Tuple) (Tuple, error)
}

// NewBoundaries picks how to chunk t into pieces of about rows rows: by
// arithmetic on a dense integer key (no scan at all), else by reading the
// key at every rows-th position of the index.
func NewBoundaries(ctx context.Context, q Querier, t *Table, rows int64) (Boundaries, error) {
	if rows < 1 {
		rows = 1
	}
	k := TableKey(t)
	if len(k.Cols) == 0 {
		return wholeTable{}, nil
	}
	if len(k.Cols) == 1 && k.Cols[0].Integer() {
		var lo, hi sql.NullString
		col := QuoteIdent(k.Cols[0].Name)
		err := q.QueryRowContext(ctx, "SELECT MIN("+col+"), MAX("+col+") FROM "+t.Quoted()).Scan(&lo, &hi)
		if err != nil {
			return nil, fmt.Errorf("key bounds of %s: %w", t.FullName(), err)
		}
		if !lo.Valid {
			return wholeTable{}, nil // empty now: one chunk takes whatever arrives
		}
		min, _ := new(big.Int).SetString(lo.String, 10)
		max, _ := new(big.Int).SetString(hi.String, 10)
		if min != nil && max != nil {
			span := new(big.Int).Sub(max, min)
			span.Add(span, big.NewInt(1))
			est := t.Rows
			if est < 1 {
				est = 1
			}
			// step = rows * span / est, at least 1.
			step := new(big.Int).Mul(big.NewInt(rows), span)
			step.Quo(step, big.NewInt(est))
			if step.Sign() <= 0 {
				step.SetInt64(1)
			}
			// Dense enough (a chunk holds at most 4x the wanted rows)?
			lim := new(big.Int).Mul(big.NewInt(rows), big.NewInt(4))
			if step.Cmp(lim) <= 0 {
				return &intSteps{min: min, max: max, step: step}, nil
			}
		}
	}
	return &offsetScan{q: q, t: t, k: k, rows: rows}, nil
}

// WholeTable makes the whole key space one chunk.
var WholeTable Boundaries = wholeTable{}

type wholeTable struct{}

func (wholeTable) Next(_ context.Context, _, gapHi Tuple) (Tuple, error) { return gapHi, nil }

// intSteps cuts a dense integer key into fixed-width value ranges.
type intSteps struct {
	min, max, step *big.Int
}

func (s *intSteps) Next(_ context.Context, cur, gapHi Tuple) (Tuple, error) {
	var cand *big.Int
	if cur == nil {
		cand = new(big.Int).Add(s.min, s.step)
		cand.Sub(cand, big.NewInt(1))
	} else {
		c, ok := new(big.Int).SetString(cur[0], 10)
		if !ok {
			return nil, fmt.Errorf("key value %q is not an integer", cur[0])
		}
		cand = c.Add(c, s.step)
	}
	if cand.Cmp(s.max) >= 0 {
		return gapHi, nil
	}
	if gapHi != nil {
		g, ok := new(big.Int).SetString(gapHi[0], 10)
		if !ok {
			return nil, fmt.Errorf("key value %q is not an integer", gapHi[0])
		}
		if cand.Cmp(g) >= 0 {
			return gapHi, nil
		}
	}
	return Tuple{cand.String()}, nil
}

// offsetScan reads the key at every rows-th index entry.
type offsetScan struct {
	q    Querier
	t    *Table
	k    Key
	rows int64
}

func (s *offsetScan) Next(ctx context.Context, cur, gapHi Tuple) (Tuple, error) {
	var conds []string
	var args []any
	if cur != nil {
		c, a := s.k.compare(">", cur)
		conds, args = append(conds, c), append(args, a...)
	}
	if gapHi != nil {
		c, a := s.k.compare("<", gapHi)
		conds, args = append(conds, c), append(args, a...)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	q := fmt.Sprintf("SELECT %s FROM %s%s%s ORDER BY %s LIMIT 1 OFFSET %d",
		s.k.ColumnList(), s.t.Quoted(), s.k.ForceIndex(), where, s.k.OrderBy(), s.rows-1)
	vals := make([]sql.RawBytes, len(s.k.Cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find chunk end in %s: %w", s.t.FullName(), err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("find chunk end in %s: %w", s.t.FullName(), err)
		}
		return gapHi, nil
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("find chunk end in %s: %w", s.t.FullName(), err)
	}
	out := make(Tuple, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out, rows.Err()
}

// Gaps returns the parts of the key space not covered by done (sorted,
// merged ranges as Merge returns them), in key order.
func Gaps(done []Range) []Range {
	if len(done) == 0 {
		return []Range{{}}
	}
	var out []Range
	if done[0].Lo != nil {
		out = append(out, Range{Lo: nil, Hi: done[0].Lo})
	}
	for i := 0; i+1 < len(done); i++ {
		out = append(out, Range{Lo: done[i].Hi, Hi: done[i+1].Lo})
	}
	if last := done[len(done)-1]; last.Hi != nil {
		out = append(out, Range{Lo: last.Hi, Hi: nil})
	}
	return out
}

// Merge joins adjacent ranges of a list already in key order.
func Merge(rs []Range) []Range {
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].Hi != nil && out[n-1].Hi.Equal(r.Lo) {
			out[n-1].Hi = r.Hi
			continue
		}
		out = append(out, r)
	}
	return out
}

// Tracker records which chunks of one table are finished, as the sorted,
// merged list of ranges a journal keeps. Chunks are handed out in key
// order gap by gap, so an ordinal (gap index, sequence) orders them without
// comparing key values in Go.
type Tracker struct {
	segs []trackSeg // done segments and finished chunks, by ordinal
	gaps []Range
}

type trackSeg struct {
	gap, seq int
	r        Range
}

// NewTracker starts from the ranges an earlier attempt finished.
func NewTracker(done []Range) *Tracker {
	done = Merge(done)
	t := &Tracker{gaps: Gaps(done)}
	// Done range i sits after gap i when the key space starts with a gap,
	// else before it; give done ranges the ordinal (gap, +inf) of the gap
	// they follow so they sort after that gap's chunks.
	startsWithGap := len(done) == 0 || done[0].Lo != nil
	for i, d := range done {
		g := i
		if !startsWithGap {
			g = i - 1
		}
		t.segs = append(t.segs, trackSeg{gap: g, seq: int(^uint(0) >> 1), r: d})
	}
	return t
}

// Gaps is what remains to be copied, in key order; a chunk handed out in
// gap i must be reported with that index.
func (t *Tracker) Gaps() []Range { return t.gaps }

// Finish records chunk seq (0, 1, ... in the order it was cut) of gap
// gapIndex as done.
func (t *Tracker) Finish(gapIndex, seq int, r Range) {
	s := trackSeg{gap: gapIndex, seq: seq, r: r}
	i := len(t.segs)
	for i > 0 && less(s, t.segs[i-1]) {
		i--
	}
	t.segs = append(t.segs, trackSeg{})
	copy(t.segs[i+1:], t.segs[i:])
	t.segs[i] = s
}

func less(a, b trackSeg) bool {
	if a.gap != b.gap {
		return a.gap < b.gap
	}
	return a.seq < b.seq
}

// Done returns the finished ranges, merged: what a checkpoint journals.
func (t *Tracker) Done() []Range {
	rs := make([]Range, len(t.segs))
	for i, s := range t.segs {
		rs[i] = s.r
	}
	return Merge(rs)
}

// Complete reports whether the whole key space is finished.
func (t *Tracker) Complete() bool {
	d := t.Done()
	return len(d) == 1 && d[0].All()
}

// ErrNoKey is returned where a key is required and the table has none.
var ErrNoKey = errors.New("table has no usable key")
