package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
	"github.com/decant-sh/decant/runbook/plain"
	"github.com/decant-sh/decant/tui"
)

// RunOptions are decant run's flags.
type RunOptions struct {
	Runbook       string
	Plain         bool
	Yes           bool
	Confirm       []string
	OnInterrupted string
	Waive         []string
	UTC           bool
	// demo: the lab goes away on exit, so there is nothing to resume.
	demo bool
}

func newRunCmd(ios *IO) *cobra.Command {
	o := &RunOptions{}
	cmd := &cobra.Command{
		Use:   "run [RUNBOOK]",
		Short: "Run a runbook: the TUI, or plain timestamped lines without a terminal",
		Long: `Run the runbook's steps in order. In a terminal this opens the checklist UI;
with --plain, or when stdout is not a terminal, it prints one timestamped
line per event and asks confirmations on stdin (or takes --yes).

A runbook with a journal resumes: finished steps stay finished, and a step
that was running when decant stopped is offered for retry, undo or mark-done
(--on-interrupted for automation).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runbook = runbookArg(args)
			return runRun(cmd.Context(), ios, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Plain, "plain", false, "print plain timestamped lines instead of the TUI")
	f.BoolVarP(&o.Yes, "yes", "y", false, "answer yes to confirmations (never to typed ones: see --confirm)")
	f.StringArrayVar(&o.Confirm, "confirm", nil, "give a typed confirmation, e.g. the domain for the DNS cut-over")
	f.StringVar(&o.OnInterrupted, "on-interrupted", "", "what to do with a step a dead process left running: retry, undo or done")
	f.StringArrayVar(&o.Waive, "waive", nil, "waive a failing check: ID=REASON (ID is a step id or a check kind)")
	f.BoolVar(&o.UTC, "utc", false, "print times in UTC")
	return cmd
}

// openEngine loads the runbook, opens its journal and applies waivers.
func openEngine(ios *IO, path string, prompt runbook.HostKeyPrompt) (*runbook.Engine, *runbook.Connector, error) {
	rb, err := runbook.Load(path)
	if err != nil {
		return nil, nil, err
	}
	sec := secret.NewSet()
	conn := runbook.NewConnector(rb, sec, prompt)
	e, err := runbook.Open(rb, runbook.Options{Conn: conn, Secrets: sec})
	if err != nil {
		return nil, nil, err
	}
	return e, conn, nil
}

func applyWaivers(e *runbook.Engine, waivers []string) error {
	for _, w := range waivers {
		id, reason, ok := strings.Cut(w, "=")
		if !ok || strings.TrimSpace(reason) == "" {
			return &exitError{code: ExitUsage, msg: fmt.Sprintf("--waive %q: want ID=REASON", w)}
		}
		matched := false
		for _, st := range e.RB.Steps() {
			if st.Type == runbook.TypeCheck && (st.ID == id || st.Kind == id) {
				matched = true
				if e.State(st.ID).Waiver == reason {
					continue
				}
				if err := e.Waive(st.ID, reason); err != nil {
					return err
				}
			}
		}
		if !matched {
			return &exitError{code: ExitUsage, msg: fmt.Sprintf("--waive %s: no check with that id or kind in this runbook", id)}
		}
	}
	return nil
}

func runRun(ctx context.Context, ios *IO, o *RunOptions) error {
	switch o.OnInterrupted {
	case "", "retry", "undo", "done":
	default:
		return &exitError{code: ExitUsage, msg: "--on-interrupted must be retry, undo or done"}
	}
	if !o.Plain && ios.OutTTY && ios.InTTY && tui.Available() {
		return runTUI(ctx, ios, o)
	}
	d := &plain.Driver{Out: ios.Out, In: ios.Stdin(), Yes: o.Yes, Confirm: o.Confirm, OnInterrupted: o.OnInterrupted, UTC: o.UTC}
	e, _, err := openEngine(ios, o.Runbook, d.HostKeyPrompt)
	if err != nil {
		return err
	}
	d.Engine = e
	wait := d.Attach()
	err = applyWaivers(e, o.Waive)
	if err == nil {
		err = d.Run(ctx)
	}
	cerr := e.Close()
	wait()
	return finish(ctx, ios, e, err, cerr)
}

// finish maps a driver result to an exit code and says where the journal is.
func finish(ctx context.Context, ios *IO, e *runbook.Engine, err, cerr error) error {
	if err == nil && cerr != nil {
		err = cerr
	}
	if ctx.Err() != nil {
		fmt.Fprintf(ios.Err, "decant: interrupted; the journal (%s) has every step, run again to resume\n", e.JournalPath())
		return &exitError{code: ExitSignal}
	}
	if errors.Is(err, plain.ErrStopped) || errors.Is(err, runbook.ErrCheckFailed) {
		return &exitError{code: ExitStopped, msg: "stopped; see above. Fix and run again to resume: finished steps stay finished"}
	}
	return err
}

func runTUI(ctx context.Context, ios *IO, o *RunOptions) error {
	// The TUI installs its own host key prompt: the connector calls it
	// from an engine goroutine and the UI answers through a channel.
	e, conn, err := openEngine(ios, o.Runbook, nil)
	if err != nil {
		return err
	}
	err = applyWaivers(e, o.Waive)
	if err == nil {
		err = tui.Run(ctx, e, conn, tui.Options{UTC: o.UTC, OnInterrupted: o.OnInterrupted, Input: ios.In, Output: ios.Out})
	}
	cerr := e.Close()
	if errors.Is(err, context.Canceled) && ctx.Err() == nil {
		fmt.Fprintf(ios.Err, "decant: interrupted; the journal (%s) has every step, run again to resume\n", e.JournalPath())
		return &exitError{code: ExitSignal}
	}
	if err == nil && cerr == nil && ctx.Err() == nil && !o.demo {
		fmt.Fprintf(ios.Out, "decant: state saved in %s; run decant run %s again to resume\n", e.JournalPath(), o.Runbook)
	}
	return finish(ctx, ios, e, err, cerr)
}

// CheckOptions are decant check's flags.
type CheckOptions struct {
	Runbook string
	JSON    bool
	Waive   []string
}

func newCheckCmd(ios *IO) *cobra.Command {
	o := &CheckOptions{}
	cmd := &cobra.Command{
		Use:   "check [RUNBOOK]",
		Short: "Run the preflight checks only; exit 0 all pass, 1 a warning, 2 a failure",
		Long: `Run every check in the runbook (read-only, safe to repeat days ahead) and
print each finding with its fix. Exit code: 0 all pass, 1 at least one
warning, 2 at least one failure (a waived failure counts as a warning).

--json prints one JSON document: {"status": "pass|warn|fail", "checks":
[{"id", "kind", "phase", "status", "waiver", "findings": [{"status",
"subject", "message", "fix", "fix_action"}]}]}.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runbook = runbookArg(args)
			return runCheck(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print results as JSON")
	cmd.Flags().StringArrayVar(&o.Waive, "waive", nil, "waive a failing check: ID=REASON")
	return cmd
}

// CheckJSON is decant check --json's document.
type CheckJSON struct {
	Status steps.Status     `json:"status"`
	Checks []CheckJSONEntry `json:"checks"`
}

// CheckJSONEntry is one check in decant check --json.
type CheckJSONEntry struct {
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Phase    string          `json:"phase"`
	Status   steps.Status    `json:"status"`
	Waiver   string          `json:"waiver,omitempty"`
	Findings []steps.Finding `json:"findings"`
}

func runCheck(ctx context.Context, ios *IO, o *CheckOptions) error {
	out := ios.Out
	if o.JSON {
		out = discard{}
	}
	d := &plain.Driver{Out: out, In: nil, ChecksOnly: true}
	if !o.JSON {
		d.In = ios.Stdin()
	}
	e, _, err := openEngine(ios, o.Runbook, d.HostKeyPrompt)
	if err != nil {
		return err
	}
	d.Engine = e
	wait := d.Attach()
	err = applyWaivers(e, o.Waive)
	if err == nil {
		err = d.Run(ctx)
	}
	doc := CheckJSON{Status: steps.Pass}
	for _, st := range e.RB.Steps() {
		if st.Type != runbook.TypeCheck {
			continue
		}
		s := e.State(st.ID)
		status := steps.Worst(s.Findings)
		if s.Status == runbook.StatusWaived {
			status = steps.Warn
		}
		if s.Status == runbook.StatusPending || s.Status == runbook.StatusInterrupted {
			status = steps.Fail
		}
		if status.Rank() > doc.Status.Rank() {
			doc.Status = status
		}
		doc.Checks = append(doc.Checks, CheckJSONEntry{ID: st.ID, Kind: st.Kind, Phase: st.Phase, Status: status, Waiver: s.Waiver, Findings: s.Findings})
	}
	cerr := e.Close()
	wait()
	if ctx.Err() != nil {
		return finish(ctx, ios, e, err, cerr)
	}
	if err != nil && !errors.Is(err, plain.ErrStopped) {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(ios.Out, "preflight: %s\n", strings.ToUpper(string(doc.Status)))
	}
	switch doc.Status {
	case steps.Fail:
		return &exitError{code: ExitFail}
	case steps.Warn:
		return &exitError{code: ExitWarn}
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// UndoOptions are decant undo's flags.
type UndoOptions struct {
	Runbook string
	Steps   []string
	Yes     bool
}

func newUndoCmd(ios *IO) *cobra.Command {
	o := &UndoOptions{}
	cmd := &cobra.Command{
		Use:   "undo RUNBOOK [STEP...]",
		Short: "Undo steps from their journal records, newest first (all undoable steps by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runbook, o.Steps = args[0], args[1:]
			d := &plain.Driver{Out: ios.Out, In: ios.Stdin(), Yes: o.Yes}
			e, _, err := openEngine(ios, o.Runbook, d.HostKeyPrompt)
			if err != nil {
				return err
			}
			d.Engine = e
			wait := d.Attach()
			err = d.UndoAll(cmd.Context(), o.Steps)
			cerr := e.Close()
			wait()
			return finish(cmd.Context(), ios, e, err, cerr)
		},
	}
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newNoteCmd(ios *IO) *cobra.Command {
	var step string
	cmd := &cobra.Command{
		Use:   "note RUNBOOK TEXT",
		Short: "Add an operator note to the journal (it appears in the transcript)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, _, err := openEngine(ios, args[0], nil)
			if err != nil {
				return err
			}
			err = e.Note(step, args[1])
			if cerr := e.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&step, "step", "", "attach the note to a step id")
	return cmd
}

// TranscriptOptions are decant transcript's flags.
type TranscriptOptions struct {
	Runbook string
	Format  string
	Output  string
}

func newTranscriptCmd(ios *IO) *cobra.Command {
	o := &TranscriptOptions{}
	cmd := &cobra.Command{
		Use:   "transcript [RUNBOOK]",
		Short: "Export the run as a postmortem document (Markdown or JSON)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runbook = runbookArg(args)
			return runTranscript(ios, o)
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "md", "md or json")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "write to this file (0600) instead of stdout")
	return cmd
}

func runTranscript(ios *IO, o *TranscriptOptions) error {
	if o.Format != "md" && o.Format != "json" {
		return &exitError{code: ExitUsage, msg: "--format must be md or json"}
	}
	rb, err := runbook.Load(o.Runbook)
	if err != nil {
		return err
	}
	events, err := runbook.ReadJournal(rb.Path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no journal for %s yet: run it first", o.Runbook)
	}
	if err != nil {
		return err
	}
	t := runbook.BuildTranscript(rb, events, secret.NewSet())
	w := ios.Out
	if o.Output != "" {
		f, err := os.OpenFile(o.Output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if o.Format == "json" {
		return t.WriteJSON(w)
	}
	return t.WriteMarkdown(w)
}
