// Package plain is decant's non-TTY face: it prints the engine's events as
// timestamped lines and drives a run from start to end, taking
// confirmations from stdin or flags. It consumes the same event stream as
// the TUI.
package plain

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// Printer formats events as one line each (two for a finding with a fix).
type Printer struct {
	W io.Writer
	// UTC prints times in UTC (default local time with offset).
	UTC bool
}

func (p *Printer) ts(t time.Time) string {
	if p.UTC {
		t = t.UTC()
	}
	return t.Format("2006-01-02T15:04:05Z07:00")
}

func (p *Printer) line(t time.Time, step, text string) {
	if step == "" {
		fmt.Fprintf(p.W, "%s  %s\n", p.ts(t), text)
		return
	}
	fmt.Fprintf(p.W, "%s  %-28s %s\n", p.ts(t), step, text)
}

// Print writes one event.
func (p *Printer) Print(ev runbook.Event) {
	t := ev.Time
	if ev.Dropped > 0 {
		p.line(t, ev.Step, fmt.Sprintf("| ... %d lines not shown (the journal has them)", ev.Dropped))
	}
	switch ev.Type {
	case runbook.EvRunStarted:
		p.line(t, "", fmt.Sprintf("decant %s: %q started by %s@%s", ev.Version, ev.Message, ev.User, ev.Host))
	case runbook.EvRunEnded:
		p.line(t, "", "session ended")
	case runbook.EvPlanned:
		if ev.Plan == nil {
			return
		}
		p.line(t, ev.Step, "plan: "+ev.Plan.Summary)
		for _, c := range ev.Plan.Changes {
			p.line(t, ev.Step, "  change: "+formatChange(c))
		}
		for _, c := range ev.Plan.Commands {
			p.line(t, ev.Step, "  $ "+firstLine(c))
		}
	case runbook.EvStarted:
		msg := "started"
		if ev.Attempt > 1 {
			msg = fmt.Sprintf("started (attempt %d)", ev.Attempt)
		}
		p.line(t, ev.Step, msg)
	case runbook.EvLog:
		p.line(t, ev.Step, "| "+ev.Message)
	case runbook.EvProgress:
		p.line(t, ev.Step, "progress "+FormatProgress(ev.Done, ev.Total, ev.Unit))
	case runbook.EvCheckpoint:
		// Checkpoints are for the journal and undo, not for reading.
	case runbook.EvCheckResult:
		p.line(t, ev.Step, strings.ToUpper(string(ev.Status)))
		for _, f := range ev.Findings {
			subj := ""
			if f.Subject != "" {
				subj = f.Subject + ": "
			}
			p.line(t, ev.Step, fmt.Sprintf("  %-4s %s%s", strings.ToUpper(string(f.Status)), subj, f.Message))
			if f.Fix != "" {
				p.line(t, ev.Step, "       fix: "+firstLine(f.Fix))
			}
			if f.FixAction != "" {
				p.line(t, ev.Step, "       fix action: "+f.FixAction)
			}
		}
	case runbook.EvFinished:
		msg := "done"
		if ev.Message != "" {
			msg += ": " + ev.Message
		}
		p.line(t, ev.Step, msg)
	case runbook.EvFailed:
		p.line(t, ev.Step, "FAILED: "+ev.Message)
	case runbook.EvCancelled:
		p.line(t, ev.Step, "INTERRUPTED: "+ev.Message)
	case runbook.EvInterrupted:
		p.line(t, ev.Step, "INTERRUPTED: "+ev.Message)
	case runbook.EvUndoStarted:
		p.line(t, ev.Step, "undo started")
	case runbook.EvUndone:
		msg := "undone"
		if ev.Message != "" {
			msg += ": " + ev.Message
		}
		p.line(t, ev.Step, msg)
	case runbook.EvUndoFailed:
		p.line(t, ev.Step, "UNDO FAILED: "+ev.Message)
	case runbook.EvSkipped:
		p.line(t, ev.Step, "skipped: "+ev.Message)
	case runbook.EvMarkedDone:
		p.line(t, ev.Step, "marked done: "+ev.Message)
	case runbook.EvWaived:
		p.line(t, ev.Step, "waived: "+ev.Message)
	case runbook.EvNote:
		p.line(t, ev.Step, "note: "+ev.Message)
	case runbook.EvConfirmation:
		p.line(t, ev.Step, "confirmed: "+ev.Message)
	default:
		p.line(t, ev.Step, string(ev.Type)+" "+ev.Message)
	}
}

func formatChange(c steps.Change) string {
	s := c.What
	if c.Before != "" || c.After != "" {
		s += fmt.Sprintf(" (%s -> %s)", orDash(c.Before), orDash(c.After))
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// FormatProgress renders "12.0 MiB / 100.0 MiB (12%)" or "1200 / 5000 rows (24%)".
func FormatProgress(done, total int64, unit string) string {
	f := func(n int64) string {
		if unit == "bytes" {
			return HumanBytes(n)
		}
		return fmt.Sprintf("%d", n)
	}
	suffix := ""
	if unit != "" && unit != "bytes" {
		suffix = " " + unit
	}
	if total <= 0 {
		return f(done) + suffix
	}
	return fmt.Sprintf("%s / %s%s (%d%%)", f(done), f(total), suffix, done*100/total)
}

// HumanBytes renders a byte count in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
