package runbook

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

// Transcript is the postmortem view of a run, built from its journal.
type Transcript struct {
	Runbook  string            `json:"runbook"`
	Name     string            `json:"name"`
	Sessions []TranscriptRun   `json:"sessions"`
	Steps    []TranscriptStep  `json:"steps"`
	Timeline []TimelineEntry   `json:"timeline"`
	Notes    []TranscriptNote  `json:"notes,omitempty"`
	Undos    []TranscriptUndo  `json:"undo_history,omitempty"`
	Started  time.Time         `json:"started"`
	Ended    time.Time         `json:"ended"`
	Counts   map[string]int    `json:"counts"`
	Extra    map[string]string `json:"-"`
}

// TranscriptRun is one process session: who ran it, where, when.
type TranscriptRun struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Host    string    `json:"host"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitempty"`
}

// TranscriptStep is one step's outcome.
type TranscriptStep struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Phase    string          `json:"phase,omitempty"`
	Title    string          `json:"title,omitempty"`
	Outcome  string          `json:"outcome"`
	Started  time.Time       `json:"started,omitempty"`
	Ended    time.Time       `json:"ended,omitempty"`
	Duration string          `json:"duration,omitempty"`
	Attempts int             `json:"attempts,omitempty"`
	Findings []steps.Finding `json:"findings,omitempty"`
	Plan     *steps.Plan     `json:"plan,omitempty"`
	Error    string          `json:"error,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Waiver   string          `json:"waiver,omitempty"`
	// LastLines are the last log lines of a failed or interrupted step.
	LastLines []string `json:"last_lines,omitempty"`
}

// TimelineEntry is one lifecycle event in time order.
type TimelineEntry struct {
	Time time.Time `json:"time"`
	Step string    `json:"step,omitempty"`
	What string    `json:"what"`
}

// TranscriptNote is an operator note.
type TranscriptNote struct {
	Time time.Time `json:"time"`
	Step string    `json:"step,omitempty"`
	Text string    `json:"text"`
}

// TranscriptUndo is one undo in the history.
type TranscriptUndo struct {
	Time    time.Time `json:"time"`
	Step    string    `json:"step"`
	Outcome string    `json:"outcome"`
	Message string    `json:"message,omitempty"`
}

const lastLines = 20

// BuildTranscript folds the journal into a transcript. rb may be nil (the
// runbook file is gone); secrets are redacted again on the way out, since an
// older journal may predate a secret becoming known.
func BuildTranscript(rb *Runbook, events []Event, sec *secret.Set) *Transcript {
	t := &Transcript{Counts: map[string]int{}}
	if rb != nil {
		t.Runbook, t.Name = rb.Path, rb.Name
	}
	states, _ := Replay(events)
	logs := map[string][]string{}
	order := []string{}
	seen := map[string]bool{}
	sessions := map[string]*TranscriptRun{}
	for _, ev := range events {
		r := func(s string) string { return sec.Redact(s) }
		if t.Started.IsZero() || ev.Time.Before(t.Started) {
			t.Started = ev.Time
		}
		if ev.Time.After(t.Ended) {
			t.Ended = ev.Time
		}
		if ev.Session != "" && sessions[ev.Session] == nil {
			sessions[ev.Session] = &TranscriptRun{ID: ev.Session, Started: ev.Time}
		}
		if s := sessions[ev.Session]; s != nil {
			s.Ended = ev.Time
		}
		if ev.Step != "" && !seen[ev.Step] {
			seen[ev.Step] = true
			order = append(order, ev.Step)
		}
		switch ev.Type {
		case EvRunStarted:
			s := sessions[ev.Session]
			s.User, s.Host, s.Version = ev.User, ev.Host, ev.Version
			if t.Name == "" {
				t.Name = r(ev.Message)
			}
		case EvLog:
			l := append(logs[ev.Step], r(ev.Message))
			if len(l) > lastLines {
				l = l[len(l)-lastLines:]
			}
			logs[ev.Step] = l
		case EvNote:
			t.Notes = append(t.Notes, TranscriptNote{Time: ev.Time, Step: ev.Step, Text: r(ev.Message)})
		case EvUndone, EvUndoFailed:
			out := "undone"
			if ev.Type == EvUndoFailed {
				out = "undo failed"
			}
			t.Undos = append(t.Undos, TranscriptUndo{Time: ev.Time, Step: ev.Step, Outcome: out, Message: r(ev.Message)})
		}
		if ev.Lifecycle() && ev.Type != EvCheckpoint && ev.Type != EvPlanned {
			t.Timeline = append(t.Timeline, TimelineEntry{Time: ev.Time, Step: ev.Step, What: r(describe(ev))})
		}
	}

	for _, s := range sessions {
		t.Sessions = append(t.Sessions, *s)
	}
	sort.Slice(t.Sessions, func(i, j int) bool { return t.Sessions[i].Started.Before(t.Sessions[j].Started) })

	// Steps in runbook order first, then any the runbook no longer has.
	var ids []string
	if rb != nil {
		for _, st := range rb.Steps() {
			ids = append(ids, st.ID)
		}
	}
	for _, id := range order {
		if rb == nil || rb.Step(id) == nil {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		s := states[id]
		ts := TranscriptStep{ID: id, Outcome: string(StatusPending)}
		if rb != nil {
			if st := rb.Step(id); st != nil {
				ts.Kind, ts.Phase, ts.Title = st.Kind, st.Phase, st.Title
			}
		}
		if s != nil {
			if ts.Kind == "" {
				ts.Kind = s.Kind
			}
			ts.Outcome, ts.Started, ts.Ended, ts.Attempts = string(s.Status), s.Started, s.Ended, s.Attempts
			if !s.Started.IsZero() && !s.Ended.IsZero() {
				ts.Duration = s.Ended.Sub(s.Started).Round(time.Millisecond).String()
			}
			ts.Findings, ts.Plan, ts.Error, ts.Reason, ts.Waiver = s.Findings, s.Plan, sec.Redact(s.Error), sec.Redact(s.Reason), sec.Redact(s.Waiver)
			for i := range ts.Findings {
				f := &ts.Findings[i]
				f.Message, f.Fix = sec.Redact(f.Message), sec.Redact(f.Fix)
			}
			if ts.Plan != nil {
				p := *ts.Plan
				p.Summary, p.Commands, p.Data = sec.Redact(p.Summary), redactAll(sec, p.Commands), nil
				ts.Plan = &p
			}
			switch s.Status {
			case StatusFailed, StatusInterrupted:
				ts.LastLines = logs[id]
			}
		}
		t.Counts[ts.Outcome]++
		t.Steps = append(t.Steps, ts)
	}
	return t
}

func describe(ev Event) string {
	switch ev.Type {
	case EvRunStarted:
		return fmt.Sprintf("session started by %s@%s (decant %s)", ev.User, ev.Host, ev.Version)
	case EvRunEnded:
		return "session ended"
	case EvStarted:
		if ev.Attempt > 1 {
			return fmt.Sprintf("started (attempt %d)", ev.Attempt)
		}
		return "started"
	case EvCheckResult:
		return "check " + string(ev.Status)
	case EvFinished:
		return "done"
	case EvFailed:
		return "failed: " + ev.Message
	case EvCancelled:
		return "interrupted: " + ev.Message
	case EvInterrupted:
		return "found interrupted: " + ev.Message
	case EvUndoStarted:
		return "undo started"
	case EvUndone:
		return "undone"
	case EvUndoFailed:
		return "undo failed: " + ev.Message
	case EvSkipped:
		return "skipped: " + ev.Message
	case EvMarkedDone:
		return "marked done: " + ev.Message
	case EvWaived:
		return "waived: " + ev.Message
	case EvNote:
		return "note: " + ev.Message
	}
	return string(ev.Type) + " " + ev.Message
}

// WriteJSON writes the transcript as indented JSON.
func (t *Transcript) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// WriteMarkdown writes the transcript as a Markdown postmortem document.
func (t *Transcript) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	ts := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return x.UTC().Format("2006-01-02 15:04:05Z")
	}
	fmt.Fprintf(&b, "# Migration transcript: %s\n\n", mdEscape(t.Name))
	fmt.Fprintf(&b, "- Runbook: `%s`\n", t.Runbook)
	fmt.Fprintf(&b, "- From %s to %s (%s)\n", ts(t.Started), ts(t.Ended), t.Ended.Sub(t.Started).Round(time.Second))
	var counts []string
	for _, k := range []string{"passed", "warned", "failed", "waived", "done", "skipped", "undone", "interrupted", "pending"} {
		if n := t.Counts[k]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, k))
		}
	}
	fmt.Fprintf(&b, "- Steps: %s\n", strings.Join(counts, ", "))
	b.WriteString("\n## Sessions\n\n| started | ended | who | decant |\n|---|---|---|---|\n")
	for _, s := range t.Sessions {
		fmt.Fprintf(&b, "| %s | %s | %s@%s | %s |\n", ts(s.Started), ts(s.Ended), s.User, s.Host, s.Version)
	}
	b.WriteString("\n## Timeline\n\n| time | step | what |\n|---|---|---|\n")
	for _, e := range t.Timeline {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", ts(e.Time), e.Step, mdEscape(e.What))
	}
	b.WriteString("\n## Steps\n")
	for _, s := range t.Steps {
		title := s.ID
		if s.Title != "" {
			title += " — " + s.Title
		}
		fmt.Fprintf(&b, "\n### %s\n\n- Kind: `%s`", mdEscape(title), s.Kind)
		if s.Phase != "" {
			fmt.Fprintf(&b, " (phase %s)", s.Phase)
		}
		fmt.Fprintf(&b, "\n- Outcome: **%s**", s.Outcome)
		if s.Attempts > 1 {
			fmt.Fprintf(&b, " after %d attempts", s.Attempts)
		}
		b.WriteString("\n")
		if !s.Started.IsZero() {
			fmt.Fprintf(&b, "- Started %s, ended %s", ts(s.Started), ts(s.Ended))
			if s.Duration != "" {
				fmt.Fprintf(&b, ", took %s", s.Duration)
			}
			b.WriteString("\n")
		}
		if s.Reason != "" {
			fmt.Fprintf(&b, "- Reason: %s\n", mdEscape(s.Reason))
		}
		if s.Waiver != "" {
			fmt.Fprintf(&b, "- Waived: %s\n", mdEscape(s.Waiver))
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "- Error: %s\n", mdEscape(s.Error))
		}
		if s.Plan != nil && s.Plan.Summary != "" {
			fmt.Fprintf(&b, "- Plan: %s\n", mdEscape(s.Plan.Summary))
			for _, c := range s.Plan.Commands {
				fmt.Fprintf(&b, "  - `%s`\n", strings.ReplaceAll(strings.TrimSpace(c), "`", "'"))
			}
		}
		for _, f := range s.Findings {
			subj := ""
			if f.Subject != "" {
				subj = f.Subject + ": "
			}
			fmt.Fprintf(&b, "- %s %s%s\n", strings.ToUpper(string(f.Status)), mdEscape(subj), mdEscape(f.Message))
			if f.Fix != "" {
				fmt.Fprintf(&b, "  - fix: `%s`\n", strings.ReplaceAll(strings.TrimSpace(f.Fix), "`", "'"))
			}
		}
		if len(s.LastLines) > 0 {
			b.WriteString("\nLast log lines:\n\n```\n")
			for _, l := range s.LastLines {
				b.WriteString(strings.ReplaceAll(l, "```", "'''") + "\n")
			}
			b.WriteString("```\n")
		}
	}
	if len(t.Undos) > 0 {
		b.WriteString("\n## Undo history\n\n| time | step | outcome |\n|---|---|---|\n")
		for _, u := range t.Undos {
			out := u.Outcome
			if u.Message != "" {
				out += ": " + u.Message
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", ts(u.Time), u.Step, mdEscape(out))
		}
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n## Operator notes\n\n")
		for _, n := range t.Notes {
			step := ""
			if n.Step != "" {
				step = " (" + n.Step + ")"
			}
			fmt.Fprintf(&b, "- %s%s: %s\n", ts(n.Time), step, mdEscape(n.Text))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
