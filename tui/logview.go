package tui

import (
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// ring keeps the last lines of one step's log. Lines are addressed by an
// absolute index (the count of lines ever pushed before it), so a scroll
// position or a search match stays put while old lines fall off the front.
type ring struct {
	buf   []logEntry
	head  int   // index in buf of the oldest line
	n     int   // lines held
	total int64 // lines ever pushed
}

func newRing(size int) *ring { return &ring{buf: make([]logEntry, size)} }

func (r *ring) push(e logEntry) {
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = e
		r.n++
	} else {
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
	}
	r.total++
}

// first is the absolute index of the oldest line held.
func (r *ring) first() int64 { return r.total - int64(r.n) }

func (r *ring) at(abs int64) logEntry {
	return r.buf[(r.head+int(abs-r.first()))%len(r.buf)]
}

// entries returns the lines held, oldest first.
func (r *ring) entries() []logEntry {
	out := make([]logEntry, 0, r.n)
	for i := r.first(); i < r.total; i++ {
		out = append(out, r.at(i))
	}
	return out
}

// logView is the log pane: the ring of the shown step, drawn from a scroll
// position. Appends only mark it dirty; the root model flushes it on a
// tick (or at once after a key), so a flood costs one redraw per tick, not
// one per line.
type logView struct {
	rings map[string]*ring
	size  int
	loc   *time.Location

	step   string
	tail   bool  // follow the newest line
	top    int64 // absolute index of the first shown line when not tailing
	width  int
	height int

	query   string
	current int64 // absolute index of the focused match, -1 for none
	matches int   // lines matching query, counted at flush

	dirty   bool     // the drawn lines are stale
	moved   bool     // ... because the operator moved the view: redraw now
	pending int      // lines appended to the shown step since the last flush
	lines   []string // flushed, styled lines ready for View
	pos     [3]int64 // from, to, total at the last flush, for the title
}

func newLogView(size int, loc *time.Location) logView {
	return logView{rings: map[string]*ring{}, size: size, loc: loc, tail: true, current: -1}
}

func (v *logView) ring(step string) *ring {
	r := v.rings[step]
	if r == nil {
		r = newRing(v.size)
		v.rings[step] = r
	}
	return r
}

// appendLines adds lines to a step's ring.
func (v *logView) appendLines(step string, es []logEntry) {
	if len(es) == 0 {
		return
	}
	r := v.ring(step)
	for _, e := range es {
		r.push(e)
	}
	if step == v.step {
		v.dirty = true
		v.pending += len(es)
	}
}

// burst reports whether more than a screenful arrived since the last
// flush: the pane then scrolls as a whole on every redraw, and redrawing
// less often saves the SSH link without hiding anything a person could
// read at that speed.
func (v *logView) burst() bool { return v.pending > v.height }

// mergeHistory merges lines read from the journal with those the live
// stream already delivered: history before the first live line, the live
// lines, then history after the last live line (those live copies are
// still on their way and will be dropped by seq).
func (v *logView) mergeHistory(step string, hist []logEntry) {
	old := v.rings[step]
	r := newRing(v.size)
	var live []logEntry
	if old != nil {
		live = old.entries()
	}
	first, last := int64(0), int64(0) // seq range of the live lines (local ones have none)
	for _, e := range live {
		if e.seq > 0 {
			if first == 0 {
				first = e.seq
			}
			last = e.seq
		}
	}
	if first == 0 {
		for _, e := range hist {
			r.push(e)
		}
		for _, e := range live {
			r.push(e)
		}
	} else {
		for _, e := range hist {
			if e.seq < first {
				r.push(e)
			}
		}
		for _, e := range live {
			r.push(e)
		}
		for _, e := range hist {
			if e.seq > last {
				r.push(e)
			}
		}
	}
	v.rings[step] = r
	if step == v.step {
		v.tail, v.current, v.dirty = true, -1, true
	}
}

// show switches the pane to a step, following its newest line.
func (v *logView) show(step string) {
	if v.step == step {
		return
	}
	v.step, v.tail, v.current, v.dirty, v.moved = step, true, -1, true, true
}

func (v *logView) setSize(w, h int) {
	if w != v.width || h != v.height {
		v.width, v.height, v.dirty, v.moved = max(w, 1), max(h, 1), true, true
	}
}

// scroll moves the view by n lines (negative: up).
func (v *logView) scroll(n int) {
	r := v.rings[v.step]
	if r == nil {
		return
	}
	top := v.topLine(r) + int64(n)
	maxTop := max(r.first(), r.total-int64(v.height))
	if top >= maxTop {
		v.tail = true
	} else {
		v.tail = false
		v.top = max(top, r.first())
	}
	v.dirty, v.moved = true, true
}

func (v *logView) gotoTop() {
	if r := v.rings[v.step]; r != nil {
		v.tail, v.top, v.dirty, v.moved = false, r.first(), true, true
		if r.total-r.first() <= int64(v.height) {
			v.tail = true
		}
	}
}

func (v *logView) gotoBottom() { v.tail, v.dirty, v.moved = true, true, true }

func (v *logView) topLine(r *ring) int64 {
	if v.tail {
		return max(r.first(), r.total-int64(v.height))
	}
	return max(v.top, r.first())
}

// setQuery starts a search; it focuses the newest match (logs are read
// from the end).
func (v *logView) setQuery(q string) bool {
	v.query, v.current, v.dirty, v.moved = q, -1, true, true
	if q == "" {
		return true
	}
	r := v.rings[v.step]
	if r == nil {
		return false
	}
	return v.findFrom(r, r.total, -1)
}

// nextMatch moves to the next (dir 1) or previous (dir -1) matching line.
func (v *logView) nextMatch(dir int) bool {
	r := v.rings[v.step]
	if r == nil || v.query == "" {
		return false
	}
	from := v.current
	if from < 0 {
		from = r.total
		if dir > 0 {
			from = v.topLine(r) - 1
		}
	}
	return v.findFrom(r, from, dir)
}

func (v *logView) findFrom(r *ring, from int64, dir int) bool {
	q := strings.ToLower(v.query)
	for i := from + int64(dir); i >= r.first() && i < r.total; i += int64(dir) {
		if strings.Contains(strings.ToLower(r.at(i).text), q) {
			v.current = i
			v.reveal(r, i)
			v.dirty, v.moved = true, true
			return true
		}
	}
	return false
}

// reveal scrolls so that line abs is on screen, a third from the top.
func (v *logView) reveal(r *ring, abs int64) {
	top := v.topLine(r)
	if abs >= top && abs < top+int64(v.height) {
		return
	}
	v.tail = false
	v.top = max(r.first(), abs-int64(v.height/3))
	if v.top+int64(v.height) >= r.total {
		v.tail = true
	}
}

// position describes where the view was at the last flush, for the pane
// title (which then changes no more often than the pane).
func (v *logView) position() (from, to, total int64, tail bool) {
	return v.pos[0], v.pos[1], v.pos[2], v.tail
}

// flushMoved redraws at once after the operator moved the view; new
// output alone waits for the tick.
func (v *logView) flushMoved(s *styles) {
	if v.moved {
		v.flush(s)
	}
}

// flush redraws the visible lines if anything changed.
func (v *logView) flush(s *styles) {
	if !v.dirty {
		return
	}
	v.dirty, v.moved, v.pending = false, false, 0
	v.lines = v.lines[:0]
	r := v.rings[v.step]
	if r == nil {
		v.pos = [3]int64{}
		return
	}
	top := v.topLine(r)
	v.pos = [3]int64{top - r.first() + 1, min(top+int64(v.height), r.total) - r.first(), r.total - r.first()}
	if v.current >= 0 && v.current < r.first() {
		v.current = -1 // the focused match fell off the ring
	}
	q := strings.ToLower(v.query)
	if q != "" {
		v.matches = 0
		for i := r.first(); i < r.total; i++ {
			if strings.Contains(strings.ToLower(r.at(i).text), q) {
				v.matches++
			}
		}
	}
	// Long lines wrap (an error message matters most at its end); the
	// window is filled from the newest line up when following, from the
	// top line down when scrolled.
	var rows []string
	if v.tail {
		for i := r.total - 1; i >= r.first() && len(rows) < v.height; i-- {
			rows = append(v.rowsOf(s, r, i, q), rows...)
		}
		if len(rows) > v.height {
			rows = rows[len(rows)-v.height:]
		}
	} else {
		for i := v.topLine(r); i < r.total && len(rows) < v.height; i++ {
			rows = append(rows, v.rowsOf(s, r, i, q)...)
		}
		if len(rows) > v.height {
			rows = rows[:v.height]
		}
	}
	v.lines = append(v.lines, rows...)
}

// rowsOf renders line abs as one or more screen rows: the time, then the
// text wrapped under itself.
func (v *logView) rowsOf(s *styles, r *ring, abs int64, q string) []string {
	e := r.at(abs)
	const stamp = 9 // "15:04:05 "
	textW := v.width - stamp
	prefix := s.logTime.Render(e.at.In(v.loc).Format("15:04:05")) + " "
	indent := strings.Repeat(" ", stamp)
	if textW < 12 {
		textW, prefix, indent = v.width, "", ""
	}
	parts := strings.Split(ansi.Wrap(e.text, textW, " /,"), "\n")
	out := make([]string, len(parts))
	for i, p := range parts {
		lead := indent
		if i == 0 {
			lead = prefix
		}
		out[i] = lead + v.styleText(s, e, ansi.Truncate(p, textW, ""), q, abs)
	}
	return out
}

func (v *logView) styleText(s *styles, e logEntry, text, q string, abs int64) string {
	st := s.dim.UnsetForeground()
	switch e.kind {
	case lkEvent:
		st = s.logEvent
	case lkPass:
		st = s.logPass
	case lkWarn:
		st = s.logWarn
	case lkFail:
		st = s.logFail
	case lkDropped:
		st = s.logDropped
	}
	if q == "" {
		return st.Render(text)
	}
	lower := strings.ToLower(text)
	if len(lower) != len(text) || !strings.Contains(lower, q) {
		return st.Render(text)
	}
	hl := s.match
	if abs == v.current {
		hl = s.matchCurrent
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, q)
		if i < 0 {
			b.WriteString(st.Render(text))
			break
		}
		if i > 0 {
			b.WriteString(st.Render(text[:i]))
		}
		b.WriteString(hl.Render(text[i : i+len(q)]))
		text, lower = text[i+len(q):], lower[i+len(q):]
	}
	return b.String()
}

// view returns the flushed lines padded to the pane height.
func (v *logView) view() string {
	lines := v.lines
	if len(lines) == 0 {
		return "(no output yet)"
	}
	return strings.Join(lines, "\n")
}
