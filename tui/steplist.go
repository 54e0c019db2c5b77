package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/runbook"
)

// listRow is one line of the checklist: a phase header (step < 0) or a step.
type listRow struct {
	phase int
	step  int
}

// stepList is the checklist pane: phases and their steps with a status
// mark and a duration. It owns the cursor; the root model owns the states
// and passes them in to draw.
type stepList struct {
	phases []*runbook.Phase
	steps  []*runbook.Step
	rows   []listRow
	cursor int // index into steps
	offset int // first visible row
	width  int
	height int
}

func newStepList(rb *runbook.Runbook) stepList {
	l := stepList{phases: rb.Phases}
	for pi, ph := range rb.Phases {
		l.rows = append(l.rows, listRow{phase: pi, step: -1})
		for _, st := range ph.Steps {
			l.rows = append(l.rows, listRow{phase: pi, step: len(l.steps)})
			l.steps = append(l.steps, st)
		}
	}
	return l
}

func (l *stepList) selected() *runbook.Step {
	if len(l.steps) == 0 {
		return nil
	}
	return l.steps[l.cursor]
}

func (l *stepList) move(d int) {
	if len(l.steps) == 0 {
		return
	}
	l.cursor = min(max(l.cursor+d, 0), len(l.steps)-1)
	l.keepVisible()
}

func (l *stepList) selectID(id string) bool {
	for i, st := range l.steps {
		if st.ID == id {
			l.cursor = i
			l.keepVisible()
			return true
		}
	}
	return false
}

func (l *stepList) setSize(w, h int) {
	l.width, l.height = max(w, 1), max(h, 1)
	l.keepVisible()
}

// keepVisible scrolls so the cursor row (and its phase header when it
// fits) is on screen.
func (l *stepList) keepVisible() {
	row := 0
	for i, r := range l.rows {
		if r.step == l.cursor {
			row = i
			break
		}
	}
	top := row
	if row > 0 && l.rows[row-1].step < 0 {
		top = row - 1
	}
	if top < l.offset {
		l.offset = top
	}
	if row >= l.offset+l.height {
		l.offset = row - l.height + 1
	}
	l.offset = max(0, min(l.offset, len(l.rows)-l.height))
}

// label is a step's name in the list: its title, or its id without the
// phase prefix the parser adds.
func label(st *runbook.Step) string {
	if st.Title != "" {
		return st.Title
	}
	return strings.TrimPrefix(st.ID, st.Phase+"/")
}

// phaseSummary is "settled/total" and, once checks ran, their counts.
func phaseSummary(s *styles, ph *runbook.Phase, states map[string]runbook.StepState) string {
	settled, pass, warn, fail := 0, 0, 0, 0
	for _, st := range ph.Steps {
		ss := states[st.ID]
		if ss.Status.Settled() {
			settled++
		}
		if st.Type != runbook.TypeCheck {
			continue
		}
		switch ss.Status {
		case runbook.StatusPassed:
			pass++
		case runbook.StatusWarned, runbook.StatusWaived:
			warn++
		case runbook.StatusFailed:
			fail++
		}
	}
	out := fmt.Sprintf("%d/%d", settled, len(ph.Steps))
	if pass+warn+fail > 0 {
		out += " " + s.pass.Render(fmt.Sprintf("%s%d", s.g.passed, pass)) +
			" " + s.warn.Render(fmt.Sprintf("%s%d", s.g.warned, warn)) +
			" " + s.fail.Render(fmt.Sprintf("%s%d", s.g.failed, fail))
	}
	return out
}

// stepDuration is what the duration column shows for a step.
func stepDuration(ss runbook.StepState, now time.Time) string {
	switch ss.Status {
	case runbook.StatusPending, runbook.StatusSkipped:
		return ""
	}
	if ss.Started.IsZero() {
		return ""
	}
	return fmtDuration(ss.Duration(now))
}

// View draws the visible rows, each exactly width cells wide.
func (l *stepList) View(s *styles, states map[string]runbook.StepState, frame int, now time.Time, focused bool) string {
	var out []string
	end := min(len(l.rows), l.offset+l.height)
	for _, r := range l.rows[l.offset:end] {
		if r.step < 0 {
			ph := l.phases[r.phase]
			sum := phaseSummary(s, ph, states)
			name := ansi.Truncate(strings.ToUpper(ph.Name), max(1, l.width-ansi.StringWidth(sum)-1), s.g.ellipsis)
			gap := max(1, l.width-ansi.StringWidth(name)-ansi.StringWidth(sum))
			out = append(out, s.phase.Render(name)+strings.Repeat(" ", gap)+sum)
			continue
		}
		st := l.steps[r.step]
		ss := states[st.ID]
		dur := stepDuration(ss, now)
		cur := " "
		if r.step == l.cursor {
			cur = s.g.cursor
		}
		room := max(1, l.width-4-len(dur)-1)
		name := ansi.Truncate(label(st), room, s.g.ellipsis)
		gap := max(1, l.width-4-ansi.StringWidth(name)-len(dur))
		text := name + strings.Repeat(" ", gap) + dur
		if r.step == l.cursor {
			if focused {
				text = s.selected.Render(text)
			} else {
				text = s.selectedBlur.Render(text)
			}
		}
		out = append(out, cur+" "+s.mark(ss.Status, frame)+" "+text)
	}
	return strings.Join(out, "\n")
}
