package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
	"github.com/decant-sh/decant/runbook/plain"
)

// lineKind picks the style of a log line.
type lineKind uint8

const (
	lkLog lineKind = iota
	lkEvent
	lkPass
	lkWarn
	lkFail
	lkDropped
)

// logEntry is one line of a step's log pane. Text is already clean: no
// escape sequences, no control characters, one line.
type logEntry struct {
	seq  int64
	at   time.Time
	kind lineKind
	text string
}

// maxLineBytes bounds one stored line; the journal keeps the full text.
const maxLineBytes = 2048

// cleanLine makes remote output safe to draw: escape sequences stripped
// (a remote program must not move our cursor or change our colours), a
// carriage-return progress line reduced to its last state, tabs expanded,
// other control characters dropped, and the length bounded.
func cleanLine(s string) string {
	if strings.IndexByte(s, 0x1b) >= 0 || strings.Contains(s, "\u009b") {
		s = ansi.Strip(s)
	}
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r == '\t':
				b.WriteString("    ")
			case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			default:
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	if len(s) > maxLineBytes {
		cut := maxLineBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + " [line cut: the journal has all of it]"
	}
	return s
}

// splitClean turns a possibly multi-line message into clean lines.
func splitClean(s string) []string {
	s = strings.TrimRight(s, "\n")
	if !strings.Contains(s, "\n") {
		return []string{cleanLine(s)}
	}
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = cleanLine(p)
	}
	return parts
}

// entriesFor renders one engine event as log lines for its step's pane.
// Progress and checkpoints have no lines: the status bar shows progress,
// and checkpoints are for the journal.
func entriesFor(ev runbook.Event) []logEntry {
	var out []logEntry
	add := func(k lineKind, text string) {
		for _, l := range splitClean(text) {
			out = append(out, logEntry{seq: ev.Seq, at: ev.Time, kind: k, text: l})
		}
	}
	if ev.Dropped > 0 {
		out = append(out, logEntry{seq: ev.Seq, at: ev.Time, kind: lkDropped,
			text: fmt.Sprintf("... %d lines not shown here (the journal has them)", ev.Dropped)})
	}
	switch ev.Type {
	case runbook.EvLog:
		add(lkLog, ev.Message)
	case runbook.EvStarted:
		if ev.Attempt > 1 {
			add(lkEvent, fmt.Sprintf("started (attempt %d)", ev.Attempt))
		} else {
			add(lkEvent, "started")
		}
	case runbook.EvPlanned:
		if ev.Plan != nil {
			for _, l := range planLines(ev.Plan) {
				add(lkEvent, l)
			}
		}
	case runbook.EvCheckResult:
		add(statusKind(ev.Status), "check "+strings.ToUpper(string(ev.Status)))
		for _, f := range ev.Findings {
			for _, l := range findingLines(f) {
				add(statusKind(f.Status), l)
			}
		}
	case runbook.EvFinished:
		msg := "done"
		if ev.Message != "" {
			msg += ": " + ev.Message
		}
		add(lkPass, msg)
	case runbook.EvFailed:
		add(lkFail, "FAILED: "+ev.Message)
	case runbook.EvCancelled, runbook.EvInterrupted:
		add(lkFail, "INTERRUPTED: "+ev.Message)
	case runbook.EvUndoStarted:
		add(lkEvent, "undo started")
	case runbook.EvUndone:
		msg := "undone"
		if ev.Message != "" {
			msg += ": " + ev.Message
		}
		add(lkEvent, msg)
	case runbook.EvUndoFailed:
		add(lkFail, "UNDO FAILED: "+ev.Message)
	case runbook.EvSkipped:
		add(lkEvent, "skipped: "+ev.Message)
	case runbook.EvMarkedDone:
		add(lkEvent, "marked done: "+ev.Message)
	case runbook.EvWaived:
		add(lkWarn, "waived: "+ev.Message)
	case runbook.EvNote:
		add(lkEvent, "note: "+ev.Message)
	case runbook.EvConfirmation:
		add(lkEvent, "confirmed: "+ev.Message)
	}
	return out
}

func statusKind(s steps.Status) lineKind {
	switch s {
	case steps.Fail:
		return lkFail
	case steps.Warn:
		return lkWarn
	}
	return lkPass
}

// findingLines lays out one check finding: status, subject, message, and
// the fix on its own line so it can be copied.
func findingLines(f steps.Finding) []string {
	subj := ""
	if f.Subject != "" {
		subj = f.Subject + ": "
	}
	out := []string{fmt.Sprintf("  %-4s %s%s", strings.ToUpper(string(f.Status)), subj, f.Message)}
	for i, l := range strings.Split(strings.TrimSpace(f.Fix), "\n") {
		if l == "" {
			continue
		}
		if i == 0 {
			out = append(out, "       fix: "+l)
		} else {
			out = append(out, "            "+l)
		}
	}
	if f.FixAction != "" {
		out = append(out, "       fix action: "+f.FixAction)
	}
	return out
}

// planLines lays out a plan: summary, changes with before and after, and
// the commands that will run.
func planLines(p *steps.Plan) []string {
	out := []string{"plan: " + p.Summary}
	if p.Noop {
		out = append(out, "  already satisfied: nothing to do")
	}
	for _, c := range p.Changes {
		s := "  change: " + c.What
		if c.Before != "" || c.After != "" {
			s += fmt.Sprintf(" (%s -> %s)", orDash(c.Before), orDash(c.After))
		}
		out = append(out, s)
	}
	for _, c := range p.Commands {
		for i, l := range strings.Split(strings.TrimSpace(c), "\n") {
			if i == 0 {
				out = append(out, "  $ "+l)
			} else {
				out = append(out, "    "+l)
			}
		}
	}
	if p.Total > 0 {
		out = append(out, "  expected work: "+plain.FormatProgress(p.Total, 0, p.Unit))
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtDuration is a compact duration for the checklist column.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return ""
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// fmtClock is an elapsed time as H:MM:SS.
func fmtClock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}
