package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

// Version is the decant version stamped into run.started events.
var Version = "dev"

// Engine runs a runbook's steps, journals every event and publishes them to
// subscribers (the TUI, the plain renderer). It knows nothing of terminals.
// Its methods are safe for concurrent use; steps may run in parallel (a
// phase's checks), but one step runs at most once at a time.
type Engine struct {
	RB      *Runbook
	Env     *steps.Env
	journal *Journal
	bus     bus
	session string

	mu      sync.Mutex
	states  map[string]*StepState
	running map[string]context.CancelFunc
	// Interrupted lists steps found running when the journal was opened.
	Interrupted []string
	closed      bool
}

// Options configure Open.
type Options struct {
	// Conn opens hosts and MySQL endpoints; default NewConnector(rb, secrets, nil).
	Conn steps.Connector
	// Secrets to redact; default a new set.
	Secrets *secret.Set
	// Now is the clock (tests).
	Now func() time.Time
}

// Open opens the runbook's journal (taking its lock), rebuilds state, and
// records steps left running by a dead process as interrupted.
func Open(rb *Runbook, o Options) (*Engine, error) {
	j, events, err := OpenJournal(rb.Path)
	if err != nil {
		return nil, err
	}
	if o.Secrets == nil {
		o.Secrets = secret.NewSet()
	}
	states, interrupted := Replay(events)
	sort.Strings(interrupted)
	e := &Engine{RB: rb, journal: j, states: states, running: map[string]context.CancelFunc{}, Interrupted: interrupted}
	e.session = fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	if o.Conn == nil {
		o.Conn = NewConnector(rb, o.Secrets, nil)
	}
	e.Env = &steps.Env{
		Runbook:  rb.Path,
		StateDir: StateDir(rb.Path),
		RunID:    e.session,
		DNS:      rb.DNS,
		Settings: rb.Settings,
		Secrets:  o.Secrets,
		Conn:     o.Conn,
		Now:      o.Now,
	}
	e.Env.HistoryFunc = e.history
	for _, st := range rb.Steps() {
		if e.states[st.ID] == nil {
			e.states[st.ID] = &StepState{ID: st.ID, Kind: st.Kind, Status: StatusPending}
		}
	}
	u, host := whoami()
	if err := e.emit(Event{Type: EvRunStarted, User: u, Host: host, Version: Version, Message: rb.Name}); err != nil {
		j.Close()
		return nil, err
	}
	for _, id := range interrupted {
		_ = e.emit(Event{Type: EvInterrupted, Step: id, Kind: e.states[id].Kind, Message: "the process stopped while this step was running"})
	}
	return e, nil
}

func whoami() (string, string) {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	h, _ := os.Hostname()
	return name, h
}

// history lists finished, not undone actions by finish order: what checks
// such as dns.ttl read (when was the TTL lowered?).
func (e *Engine) history() []steps.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []steps.Record
	for id, s := range e.states {
		if s.Status != StatusDone || s.FinishedSeq == 0 {
			continue
		}
		out = append(out, steps.Record{StepID: id, Kind: s.Kind, Time: s.Ended, Receipt: s.Receipt, Seq: s.FinishedSeq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Session identifies this process's run in the journal.
func (e *Engine) Session() string { return e.session }

// JournalPath is where the events go.
func (e *Engine) JournalPath() string { return e.journal.Path() }

// Subscribe returns a subscription with a buffer of n events. Lossy
// subscribers (the TUI) may miss log lines under a flood; lossless ones
// (the plain renderer) slow the engine down instead.
func (e *Engine) Subscribe(n int, lossy bool) *Subscription { return e.bus.subscribe(n, lossy) }

// emit redacts, journals (fsyncing lifecycle events), applies to state and
// publishes. A journal error is returned: an action must not be reported
// done if its record is not on disk.
func (e *Engine) emit(ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = e.Env.Clock().UTC()
	}
	ev.Session = e.session
	e.redact(&ev)
	e.mu.Lock()
	err := e.journal.Append(&ev, ev.Lifecycle())
	if err == nil && ev.Step != "" {
		s := e.states[ev.Step]
		if s == nil {
			s = &StepState{ID: ev.Step, Kind: ev.Kind, Status: StatusPending}
			e.states[ev.Step] = s
		}
		s.apply(ev)
	}
	e.mu.Unlock()
	if err != nil {
		return err
	}
	e.bus.publish(ev)
	return nil
}

func (e *Engine) redact(ev *Event) {
	sec := e.Env.Secrets
	ev.Message = sec.Redact(ev.Message)
	for i := range ev.Findings {
		f := &ev.Findings[i]
		f.Message, f.Fix, f.Subject = sec.Redact(f.Message), sec.Redact(f.Fix), sec.Redact(f.Subject)
	}
	if ev.Plan != nil {
		p := *ev.Plan
		p.Summary = sec.Redact(p.Summary)
		p.Commands = redactAll(sec, p.Commands)
		p.Changes = append([]steps.Change(nil), p.Changes...)
		for i := range p.Changes {
			c := &p.Changes[i]
			c.What, c.Before, c.After = sec.Redact(c.What), sec.Redact(c.Before), sec.Redact(c.After)
		}
		if len(p.Data) > 0 {
			p.Data = json.RawMessage(sec.Redact(string(p.Data)))
		}
		ev.Plan = &p
	}
	if len(ev.Receipt) > 0 {
		ev.Receipt = json.RawMessage(sec.Redact(string(ev.Receipt)))
	}
}

func redactAll(sec *secret.Set, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = sec.Redact(s)
	}
	return out
}

// State returns a copy of a step's state.
func (e *Engine) State(id string) StepState {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.states[id]; s != nil {
		return *s
	}
	return StepState{ID: id, Status: StatusPending}
}

// Note records an operator note.
func (e *Engine) Note(step, text string) error {
	return e.emit(Event{Type: EvNote, Step: step, Message: text})
}

// Skip marks a step skipped with a reason.
func (e *Engine) Skip(id, reason string) error {
	st, err := e.idle(id)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return errors.New("skip needs a reason")
	}
	return e.emit(Event{Type: EvSkipped, Step: id, Kind: st.Kind, Message: reason})
}

// MarkDone records that the operator did a step by hand (or that an
// interrupted step had in fact completed).
func (e *Engine) MarkDone(id, reason string) error {
	st, err := e.idle(id)
	if err != nil {
		return err
	}
	return e.emit(Event{Type: EvMarkedDone, Step: id, Kind: st.Kind, Message: reason})
}

// Waive lets a failing check stop blocking its phase; the reason is journaled.
func (e *Engine) Waive(id, reason string) error {
	st := e.RB.Step(id)
	if st == nil {
		return fmt.Errorf("no step %q in this runbook", id)
	}
	if st.Type != TypeCheck {
		return fmt.Errorf("%s is not a check; only checks can be waived", id)
	}
	if strings.TrimSpace(reason) == "" {
		return errors.New("a waiver needs a reason")
	}
	return e.emit(Event{Type: EvWaived, Step: id, Kind: st.Kind, Message: reason})
}

// idle returns the step if it exists and is not running.
func (e *Engine) idle(id string) (*Step, error) {
	st := e.RB.Step(id)
	if st == nil {
		return nil, fmt.Errorf("no step %q in this runbook", id)
	}
	e.mu.Lock()
	_, busy := e.running[id]
	e.mu.Unlock()
	if busy {
		return nil, fmt.Errorf("step %s is running", id)
	}
	return st, nil
}

// begin claims a step for running; it fails if the step already runs.
func (e *Engine) begin(ctx context.Context, id string) (*Step, context.Context, func(), error) {
	st := e.RB.Step(id)
	if st == nil {
		return nil, nil, nil, fmt.Errorf("no step %q in this runbook", id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, nil, errors.New("engine is closed")
	}
	if _, busy := e.running[id]; busy {
		return nil, nil, nil, fmt.Errorf("step %s is already running", id)
	}
	if st.Timeout > 0 {
		var c1 context.CancelFunc
		ctx, c1 = context.WithTimeout(ctx, st.Timeout)
		ctx2, c2 := context.WithCancel(ctx)
		e.running[id] = c2
		return st, ctx2, func() { c2(); c1(); e.release(id) }, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	e.running[id] = cancel
	return st, ctx, func() { cancel(); e.release(id) }, nil
}

func (e *Engine) release(id string) {
	e.mu.Lock()
	delete(e.running, id)
	e.mu.Unlock()
}

// Cancel stops a running step; it ends as interrupted.
func (e *Engine) Cancel(id string) {
	e.mu.Lock()
	c := e.running[id]
	e.mu.Unlock()
	if c != nil {
		c()
	}
}

// Running reports whether any step is running.
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.running) > 0
}

// Plan runs an action's dry run and records it. Checks have no plan.
func (e *Engine) Plan(ctx context.Context, id string) (*steps.Plan, error) {
	st := e.RB.Step(id)
	if st == nil {
		return nil, fmt.Errorf("no step %q in this runbook", id)
	}
	a := st.Action()
	if a == nil {
		return &steps.Plan{Summary: "read-only check: " + st.Kind}, nil
	}
	p, err := a.Plan(ctx, e.Env)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", id, err)
	}
	if err := e.emit(Event{Type: EvPlanned, Step: id, Kind: st.Kind, Plan: p}); err != nil {
		return nil, err
	}
	return p, nil
}

// Run runs a step: a check records its findings; an action is planned (if
// plan is nil) and done. It returns the step's error; a failed check
// returns ErrCheckFailed.
func (e *Engine) Run(ctx context.Context, id string, plan *steps.Plan) error {
	st, ctx, done, err := e.begin(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	attempt := e.State(id).Attempts + 1
	if st.Type == TypeCheck {
		return e.runCheck(ctx, st, attempt)
	}
	a := st.Action()
	if plan == nil {
		if plan, err = a.Plan(ctx, e.Env); err != nil {
			err = fmt.Errorf("plan: %w", err)
			_ = e.emit(Event{Type: EvStarted, Step: id, Kind: st.Kind, Attempt: attempt})
			return e.fail(ctx, st, nil, err)
		}
		if err := e.emit(Event{Type: EvPlanned, Step: id, Kind: st.Kind, Plan: plan}); err != nil {
			return err
		}
	}
	prev := e.State(id)
	if err := e.emit(Event{Type: EvStarted, Step: id, Kind: st.Kind, Attempt: attempt}); err != nil {
		return err
	}
	rep := &reporter{e: e, st: st, resume: prev.Checkpoint}
	if prev.Status == StatusDone {
		rep.resume = nil
	}
	if plan.Noop {
		rep.Logf("nothing to do: %s", plan.Summary)
		return e.emit(Event{Type: EvFinished, Step: id, Kind: st.Kind, Message: "already satisfied"})
	}
	receipt, err := safeDo(ctx, a, e.Env, plan, rep)
	rb, merr := marshalReceipt(receipt)
	if merr != nil && err == nil {
		err = merr
	}
	if err != nil {
		return e.fail(ctx, st, rb, err)
	}
	return e.emit(Event{Type: EvFinished, Step: id, Kind: st.Kind, Receipt: rb})
}

// ErrCheckFailed is returned by Run for a check whose findings include a failure.
var ErrCheckFailed = errors.New("check failed")

func (e *Engine) runCheck(ctx context.Context, st *Step, attempt int) error {
	if err := e.emit(Event{Type: EvStarted, Step: st.ID, Kind: st.Kind, Attempt: attempt}); err != nil {
		return err
	}
	findings, err := safeCheck(ctx, st.Check(), e.Env)
	if err != nil {
		if ctx.Err() != nil {
			return e.fail(ctx, st, nil, err)
		}
		// A check that cannot run is a failed check with a finding saying why.
		findings = append(findings, steps.Finding{Status: steps.Fail, Message: oneLine(err.Error())})
	}
	status := steps.Worst(findings)
	if err := e.emit(Event{Type: EvCheckResult, Step: st.ID, Kind: st.Kind, Status: status, Findings: findings}); err != nil {
		return err
	}
	if status == steps.Fail {
		return ErrCheckFailed
	}
	return nil
}

func (e *Engine) fail(ctx context.Context, st *Step, receipt json.RawMessage, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, context.Canceled) {
		msg := "cancelled: " + oneLine(err.Error())
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("timed out after %s", st.Timeout)
		}
		if eerr := e.emit(Event{Type: EvCancelled, Step: st.ID, Kind: st.Kind, Message: msg, Receipt: receipt}); eerr != nil {
			return eerr
		}
		return fmt.Errorf("%s: %s", st.ID, msg)
	}
	if eerr := e.emit(Event{Type: EvFailed, Step: st.ID, Kind: st.Kind, Message: oneLine(err.Error()), Receipt: receipt}); eerr != nil {
		return eerr
	}
	return fmt.Errorf("%s: %w", st.ID, err)
}

// Undo reverts a done (or failed, or interrupted) action from its journaled
// receipt.
func (e *Engine) Undo(ctx context.Context, id string) error {
	st, ctx, done, err := e.begin(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	s := e.State(id)
	if st.Type == TypeCheck {
		return fmt.Errorf("%s is a check: there is nothing to undo", id)
	}
	if s.Status == StatusUndone || (s.Status == StatusPending && len(s.Receipt) == 0) {
		return fmt.Errorf("%s has not changed anything: nothing to undo", id)
	}
	if s.Status == StatusSkipped {
		return fmt.Errorf("%s was skipped: nothing to undo", id)
	}
	if len(s.Receipt) == 0 && s.Status != StatusDone {
		// It failed before recording anything: nothing was changed.
		return e.emit(Event{Type: EvUndone, Step: id, Kind: st.Kind, Message: "nothing was recorded as changed"})
	}
	if s.Status == StatusDone && len(s.Receipt) == 0 && s.Reason != "" {
		return fmt.Errorf("%s was marked done by hand: undo it by hand", id)
	}
	if err := e.emit(Event{Type: EvUndoStarted, Step: id, Kind: st.Kind, Receipt: s.Receipt}); err != nil {
		return err
	}
	rep := &reporter{e: e, st: st}
	if err := safeUndo(ctx, st.Action(), e.Env, s.Receipt, rep); err != nil {
		if eerr := e.emit(Event{Type: EvUndoFailed, Step: id, Kind: st.Kind, Message: oneLine(err.Error())}); eerr != nil {
			return eerr
		}
		return fmt.Errorf("undo %s: %w", id, err)
	}
	return e.emit(Event{Type: EvUndone, Step: id, Kind: st.Kind})
}

// Undoable lists the steps that have something to undo, newest first.
func (e *Engine) Undoable() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return UndoOrder(e.RB, func(id string) *StepState { return e.states[id] })
}

// UndoOrder lists rb's actions that recorded a change, newest first: the
// order to undo a whole run in. state returns a step's state (nil: none).
func UndoOrder(rb *Runbook, state func(id string) *StepState) []string {
	type item struct {
		id  string
		seq int64
	}
	var items []item
	for _, st := range rb.Steps() {
		s := state(st.ID)
		if st.Type == TypeCheck || s == nil || len(s.Receipt) == 0 {
			continue
		}
		switch s.Status {
		case StatusDone, StatusFailed, StatusInterrupted:
			seq := s.FinishedSeq
			if seq == 0 {
				seq = 1 << 62 // unfinished attempts are the newest changes
			}
			items = append(items, item{st.ID, seq})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].seq > items[j].seq })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}

// Next returns the first step that is not settled, or nil when all are.
func (e *Engine) Next() *Step {
	for _, st := range e.RB.Steps() {
		if !e.State(st.ID).Status.Settled() {
			return st
		}
	}
	return nil
}

// Blocked reports the failing, unwaived check that blocks an action in the
// same phase, if any.
func (e *Engine) Blocked(id string) string {
	st := e.RB.Step(id)
	if st == nil || st.Type == TypeCheck {
		return ""
	}
	for _, ph := range e.RB.Phases {
		if ph.Name != st.Phase {
			continue
		}
		for _, o := range ph.Steps {
			if o.Type == TypeCheck && e.State(o.ID).Status == StatusFailed && !OffersFix(e.State(o.ID).Findings, st.Kind) {
				return o.ID
			}
		}
	}
	return ""
}

// OffersFix reports whether every failure among a check's findings names
// kind as its fix action: that action may run although the check fails.
func OffersFix(fs []steps.Finding, kind string) bool {
	for _, f := range fs {
		if f.Status == steps.Fail && f.FixAction != kind {
			return false
		}
	}
	return true
}

// FixedBy lists the failed checks whose failures all name kind as their fix
// action: the checks to run again once that action has run.
func (e *Engine) FixedBy(kind string) []string {
	var out []string
	for _, st := range e.RB.Steps() {
		if st.Type != TypeCheck {
			continue
		}
		s := e.State(st.ID)
		if s.Status == StatusFailed && OffersFix(s.Findings, kind) {
			out = append(out, st.ID)
		}
	}
	return out
}

// Close records the end of the session and closes the journal.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, c := range e.running {
		c()
	}
	e.mu.Unlock()
	_ = e.emit(Event{Type: EvRunEnded})
	e.bus.close()
	if c, ok := e.Env.Conn.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	return e.journal.Close()
}

func marshalReceipt(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	if r, ok := v.(json.RawMessage); ok {
		return r, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	return b, nil
}

// safeDo, safeCheck and safeUndo turn a panicking step into a failed step:
// one bad action must not take the journal down with it.
func safeDo(ctx context.Context, a steps.Action, env *steps.Env, p *steps.Plan, r steps.Reporter) (rc any, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("internal error (panic): %v", x)
		}
	}()
	return a.Do(ctx, env, p, r)
}

func safeCheck(ctx context.Context, c steps.Check, env *steps.Env) (fs []steps.Finding, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("internal error (panic): %v", x)
		}
	}()
	return c.Run(ctx, env)
}

func safeUndo(ctx context.Context, a steps.Action, env *steps.Env, rc json.RawMessage, r steps.Reporter) (err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("internal error (panic): %v", x)
		}
	}()
	return a.Undo(ctx, env, rc, r)
}

// reporter is the steps.Reporter the engine hands to a running action.
type reporter struct {
	e      *Engine
	st     *Step
	resume json.RawMessage

	mu       sync.Mutex
	lastProg time.Time
}

func (r *reporter) Logf(format string, args ...any) {
	_ = r.e.emit(Event{Type: EvLog, Step: r.st.ID, Message: fmt.Sprintf(format, args...)})
}

// Progress is throttled to 5 events a second; the last value always wins
// on the next call, and the finished event closes the bar.
func (r *reporter) Progress(done, total int64, unit string) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.lastProg) < 200*time.Millisecond && (total == 0 || done < total) {
		r.mu.Unlock()
		return
	}
	r.lastProg = now
	r.mu.Unlock()
	_ = r.e.emit(Event{Type: EvProgress, Step: r.st.ID, Done: done, Total: total, Unit: unit})
}

func (r *reporter) Checkpoint(receipt any) error {
	b, err := marshalReceipt(receipt)
	if err != nil {
		return err
	}
	return r.e.emit(Event{Type: EvCheckpoint, Step: r.st.ID, Kind: r.st.Kind, Receipt: b})
}

func (r *reporter) Resume(v any) bool {
	if len(r.resume) == 0 {
		return false
	}
	return json.Unmarshal(r.resume, v) == nil
}
