package plain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// Driver runs a whole runbook without a TUI.
type Driver struct {
	Engine *runbook.Engine
	Out    io.Writer
	// In answers confirmations; nil means non-interactive.
	In *bufio.Reader
	// Yes answers plain confirmations (never typed ones).
	Yes bool
	// Confirm holds typed confirmations given on the command line.
	Confirm []string
	// OnInterrupted is "retry", "undo" or "done" for steps a dead process
	// left running; "" asks on In, or fails when non-interactive.
	OnInterrupted string
	// Only limits the run to checks (decant check).
	ChecksOnly bool
	UTC        bool

	printMu sync.Mutex
}

// ErrStopped means the run stopped at a failure or a refusal; the output
// says why.
var ErrStopped = errors.New("run stopped")

// Attach prints every event from the engine until it closes; wait blocks
// until the printer has drained.
func (d *Driver) Attach() (wait func()) {
	sub := d.Engine.Subscribe(1024, false)
	p := &Printer{W: d.Out, UTC: d.UTC}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range sub.C {
			d.printMu.Lock()
			p.Print(ev)
			d.printMu.Unlock()
		}
	}()
	return func() { <-done }
}

func (d *Driver) say(format string, args ...any) {
	d.printMu.Lock()
	defer d.printMu.Unlock()
	fmt.Fprintf(d.Out, format+"\n", args...)
}

// HostKeyPrompt asks on stdin whether to trust an unknown host key.
func (d *Driver) HostKeyPrompt(err *hosts.HostKeyError) bool {
	d.say("%v", err)
	if d.In == nil {
		d.say("not trusting it: no terminal to ask on. Check the fingerprint, then run again interactively or add the key to %s", err.KnownHosts)
		return false
	}
	ans := d.ask(fmt.Sprintf("Trust this key and add it to %s? Type yes to accept: ", err.KnownHosts))
	return ans == "yes"
}

func (d *Driver) ask(prompt string) string {
	d.printMu.Lock()
	fmt.Fprint(d.Out, prompt)
	d.printMu.Unlock()
	line, err := d.In.ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	return strings.TrimSpace(line)
}

// Run drives every unsettled step in order. It stops at the first failed
// action, at a failing unwaived check, or at a refused confirmation.
func (d *Driver) Run(ctx context.Context) error {
	e := d.Engine
	for _, id := range e.Interrupted {
		if err := d.resolveInterrupted(ctx, id); err != nil {
			return err
		}
	}
	failed := map[string]bool{} // checks failing in this session
	for _, st := range e.RB.Steps() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.ChecksOnly && st.Type != runbook.TypeCheck {
			continue
		}
		s := e.State(st.ID)
		// Checks always run again (the world may have changed while decant
		// was not looking); settled actions are never redone.
		if s.Status == runbook.StatusSkipped || st.Type != runbook.TypeCheck && s.Status.Settled() {
			continue
		}
		if st.Type == runbook.TypeCheck {
			err := e.Run(ctx, st.ID, nil)
			if errors.Is(err, runbook.ErrCheckFailed) {
				if e.State(st.ID).Status == runbook.StatusWaived {
					continue
				}
				failed[st.ID] = true
				continue
			}
			if err != nil {
				return err
			}
			continue
		}
		if len(failed) > 0 {
			if b := e.Blocked(st.ID); b != "" {
				d.say("stopped: check %s failed; fix it and run again, or waive it with --waive %s=REASON", b, e.RB.Step(b).Kind)
				return ErrStopped
			}
		}
		fixed := e.FixedBy(st.Kind)
		if err := d.runAction(ctx, st); err != nil {
			return err
		}
		// A fix action ran: its checks are run again, and no longer count
		// as failed if they now pass.
		for _, id := range fixed {
			if !failed[id] {
				continue
			}
			if err := e.Run(ctx, id, nil); err == nil {
				delete(failed, id)
			} else if !errors.Is(err, runbook.ErrCheckFailed) {
				return err
			}
		}
	}
	if len(failed) > 0 {
		return ErrStopped
	}
	return nil
}

func (d *Driver) runAction(ctx context.Context, st *runbook.Step) error {
	e := d.Engine
	plan, err := e.Plan(ctx, st.ID)
	if err != nil {
		d.say("stopped: %v", err)
		return ErrStopped
	}
	if st.Confirm && !plan.Noop {
		ok, why := d.confirm(st, plan)
		if !ok {
			d.say("stopped before %s: %s", st.ID, why)
			return ErrStopped
		}
		_ = e.Note(st.ID, "confirmed by operator")
	}
	if err := e.Run(ctx, st.ID, plan); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrStopped
	}
	return nil
}

func (d *Driver) confirm(st *runbook.Step, plan *steps.Plan) (bool, string) {
	if st.ConfirmText != "" {
		for _, c := range d.Confirm {
			if c == st.ConfirmText {
				return true, ""
			}
		}
		if d.In == nil {
			return false, fmt.Sprintf("it needs the typed confirmation %q: pass --confirm %s", st.ConfirmText, st.ConfirmText)
		}
		ans := d.ask(fmt.Sprintf("%s changes %s. Type %q to go on: ", st.ID, plan.Summary, st.ConfirmText))
		if ans != st.ConfirmText {
			return false, "confirmation not typed"
		}
		return true, ""
	}
	if d.Yes {
		return true, ""
	}
	if d.In == nil {
		return false, "it asks for confirmation: pass --yes when not running interactively"
	}
	ans := strings.ToLower(d.ask(fmt.Sprintf("Run %s (%s)? [y/N] ", st.ID, plan.Summary)))
	if ans == "y" || ans == "yes" {
		return true, ""
	}
	return false, "not confirmed"
}

func (d *Driver) resolveInterrupted(ctx context.Context, id string) error {
	e := d.Engine
	st := e.RB.Step(id)
	if st == nil {
		return nil // the runbook no longer has it; the transcript keeps it
	}
	choice := d.OnInterrupted
	if choice == "" {
		if d.In == nil {
			d.say("step %s was interrupted when decant stopped; choose with --on-interrupted=retry|undo|done", id)
			return ErrStopped
		}
		choice = strings.ToLower(d.ask(fmt.Sprintf("Step %s was interrupted. retry, undo or done? ", id)))
	}
	switch choice {
	case "retry", "r":
		if st.Type == runbook.TypeCheck {
			return nil // the loop reruns it
		}
		return d.runAction(ctx, st)
	case "undo", "u":
		if st.Type == runbook.TypeCheck {
			return nil
		}
		if err := e.Undo(ctx, id); err != nil {
			d.say("undo failed: %v", err)
			return ErrStopped
		}
		return nil
	case "done", "d", "mark-done":
		return e.MarkDone(id, "operator: interrupted step had completed")
	}
	d.say("unknown choice %q: want retry, undo or done", choice)
	return ErrStopped
}

// UndoAll undoes the given steps, or every undoable step newest first.
func (d *Driver) UndoAll(ctx context.Context, ids []string) error {
	e := d.Engine
	if len(ids) == 0 {
		ids = e.Undoable()
	}
	if len(ids) == 0 {
		d.say("nothing to undo")
		return nil
	}
	if !d.Yes {
		if d.In == nil {
			d.say("undo of %s asks for confirmation: pass --yes when not running interactively", strings.Join(ids, ", "))
			return ErrStopped
		}
		ans := strings.ToLower(d.ask(fmt.Sprintf("Undo %s (newest first)? [y/N] ", strings.Join(ids, ", "))))
		if ans != "y" && ans != "yes" {
			return ErrStopped
		}
	}
	for _, id := range ids {
		if err := e.Undo(ctx, id); err != nil {
			d.say("stopped: %v", err)
			return ErrStopped
		}
	}
	return nil
}
