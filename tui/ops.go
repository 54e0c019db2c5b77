package tui

import (
	"context"
	"errors"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// runner calls the engine from tea.Cmds, never from Update: every engine
// call journals (and fsyncs) or does remote I/O. It counts calls in flight
// so that Run can wait for cancelled steps to record their end before the
// engine closes.
type runner struct {
	e   *runbook.Engine
	ctx context.Context

	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{}
}

func newRunner(ctx context.Context, e *runbook.Engine) *runner {
	return &runner{e: e, ctx: ctx}
}

// enter registers a call; it fails once the UI is shutting down.
func (r *runner) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.n++
	return true
}

func (r *runner) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	if r.n == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// wait refuses new calls and waits up to d for those in flight.
func (r *runner) wait(d time.Duration) bool {
	r.mu.Lock()
	r.closing = true
	if r.n == 0 {
		r.mu.Unlock()
		return true
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-time.After(d):
		return false
	}
}

// opKind names what the UI asked the engine to do.
type opKind string

const (
	opRun    opKind = "run"
	opUndo   opKind = "undo"
	opSkip   opKind = "skip"
	opNote   opKind = "note"
	opWaive  opKind = "waive"
	opDone   opKind = "mark done"
	opCancel opKind = "stop"
	opPhase  opKind = "phase checks"
	opPlan   opKind = "plan"
)

// opDoneMsg reports the end of an engine call.
type opDoneMsg struct {
	op  opKind
	id  string
	err error
	// status is the step's status when the call returned (read in the
	// command's goroutine, so Update never asks the engine).
	status runbook.StepStatus
}

// planPurpose says what to do with a plan once it is made.
type planPurpose int

const (
	planToShow planPurpose = iota // the p key: show it
	planToRun                     // run after confirmation
)

// planMsg carries an action's dry run.
type planMsg struct {
	id      string
	plan    *steps.Plan
	err     error
	purpose planPurpose
	tsigKey string // the TSIG key path now installed, if one was given
}

// phaseDoneMsg reports a phase's checks run together.
type phaseDoneMsg struct {
	phase  string
	ids    []string
	status map[string]runbook.StepStatus
	took   time.Duration
}

var errShuttingDown = errors.New("decant is quitting")

func (r *runner) call(op opKind, id string, f func(ctx context.Context) error) tea.Cmd {
	return func() tea.Msg {
		if !r.enter() {
			return opDoneMsg{op: op, id: id, err: errShuttingDown}
		}
		defer r.leave()
		err := f(r.ctx)
		return opDoneMsg{op: op, id: id, err: err, status: r.e.State(id).Status}
	}
}

func (r *runner) run(id string, plan *steps.Plan, confirmed string) tea.Cmd {
	return r.call(opRun, id, func(ctx context.Context) error {
		if confirmed != "" {
			if err := r.e.Note(id, confirmed); err != nil {
				return err
			}
		}
		return r.e.Run(ctx, id, plan)
	})
}

// undoAllMsg reports the end of an undo of the whole run.
type undoAllMsg struct {
	ids    []string
	failed string
	err    error
}

// undoAll undoes ids in order (newest first), stopping at the first failure.
func (r *runner) undoAll(ids []string) tea.Cmd {
	return func() tea.Msg {
		if !r.enter() {
			return undoAllMsg{ids: ids, err: errShuttingDown}
		}
		defer r.leave()
		for _, id := range ids {
			if err := r.e.Undo(r.ctx, id); err != nil {
				return undoAllMsg{ids: ids, failed: id, err: err}
			}
		}
		return undoAllMsg{ids: ids}
	}
}

func (r *runner) undo(id string) tea.Cmd {
	return r.call(opUndo, id, func(ctx context.Context) error { return r.e.Undo(ctx, id) })
}

func (r *runner) skip(id, reason string) tea.Cmd {
	return r.call(opSkip, id, func(context.Context) error { return r.e.Skip(id, reason) })
}

func (r *runner) note(id, text string) tea.Cmd {
	return r.call(opNote, id, func(context.Context) error { return r.e.Note(id, text) })
}

func (r *runner) waive(id, reason string) tea.Cmd {
	return r.call(opWaive, id, func(context.Context) error { return r.e.Waive(id, reason) })
}

func (r *runner) markDone(id, reason string) tea.Cmd {
	return r.call(opDone, id, func(context.Context) error { return r.e.MarkDone(id, reason) })
}

func (r *runner) cancel(id string) tea.Cmd {
	return r.call(opCancel, id, func(context.Context) error { r.e.Cancel(id); return nil })
}

// plan makes an action's dry run. tsigKey, when set, is a value the
// runbook left open and the operator gave in a form; it is checked and
// installed before planning (the caller made sure no step is running, as
// steps read the environment).
func (r *runner) plan(id string, purpose planPurpose, tsigKey string) tea.Cmd {
	return func() tea.Msg {
		if !r.enter() {
			return planMsg{id: id, err: errShuttingDown, purpose: purpose}
		}
		defer r.leave()
		if tsigKey != "" {
			// Check it as the DNS actions will read it, so a wrong path or
			// mode is said now and asked again next time.
			if _, err := dnsq.LoadKey(dnsq.ExpandPath(tsigKey, r.e.RB.Path)); err != nil {
				return planMsg{id: id, err: err, purpose: purpose}
			}
			r.e.Env.DNS.TSIGKey = tsigKey
		}
		p, err := r.e.Plan(r.ctx, id)
		return planMsg{id: id, plan: p, err: err, purpose: purpose, tsigKey: tsigKey}
	}
}

// phaseChecks runs checks together, at most parallel at a time.
func (r *runner) phaseChecks(phase string, ids []string, parallel int) tea.Cmd {
	return func() tea.Msg {
		start := time.Now()
		if !r.enter() {
			return phaseDoneMsg{phase: phase, ids: ids}
		}
		defer r.leave()
		if parallel < 1 {
			parallel = 4
		}
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				// A failing check is shown by its own events; other errors
				// (it was already running) are not worth a dialog.
				_ = r.e.Run(r.ctx, id, nil)
			}()
		}
		wg.Wait()
		status := map[string]runbook.StepStatus{}
		for _, id := range ids {
			status[id] = r.e.State(id).Status
		}
		return phaseDoneMsg{phase: phase, ids: ids, status: status, took: time.Since(start)}
	}
}
