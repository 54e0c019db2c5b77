// Package tui is decant's terminal interface: a bubbletea app over the
// engine's event stream, made to be driven for hours in screen or tmux
// over a slow SSH link. A checklist of phases and steps, the live log of
// the selected step, a status bar with progress and ETA; every action on
// a key, dangerous ones behind a confirmation with the plan on screen.
//
// The UI never blocks: engine calls run in tea.Cmds (runner), engine
// events reach the UI through one bridge goroutine that merges them into
// batches (bridge), and the log pane redraws on a tick, not per line.
package tui

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/runbook"
)

// Available reports whether the interactive UI is built in.
func Available() bool { return true }

// Options tune the UI; the zero value is right for an operator.
type Options struct {
	// Now is the clock for elapsed times and running durations; tests pin
	// it (with runbook.Options.Now) for reproducible screens.
	Now func() time.Time
	// Static freezes animation and the clock tick (spinner frames, the
	// elapsed counter) for golden screens.
	Static bool
	// Glyphs is "unicode", "ascii", or "" to pick ASCII unless the locale
	// says UTF-8.
	Glyphs string
	// LogLines bounds each step's log pane (default 2000); the journal
	// keeps every line.
	LogLines int
	// UTC shows log times in UTC instead of local time.
	UTC bool
	// OnInterrupted answers the start-up question about interrupted steps
	// ("retry", "undo", "done"); empty asks.
	OnInterrupted string
	// Input and Output default to the terminal.
	Input  io.Reader
	Output io.Writer
	// FPS caps redraws (default 30: enough for a spinner, light on SSH).
	FPS int
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) logLines() int {
	if o.LogLines > 0 {
		return o.LogLines
	}
	return 2000
}

func (o Options) location() *time.Location {
	if o.UTC {
		return time.UTC
	}
	return time.Local
}

func (o Options) ascii() bool {
	switch o.Glyphs {
	case "ascii":
		return true
	case "unicode":
		return false
	}
	return !utf8Locale()
}

// utf8Locale follows the C library's precedence: LC_ALL, LC_CTYPE, LANG.
func utf8Locale() bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := os.Getenv(k); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
}

// app ties the model to the engine: the subscription, the bridge, the
// host key prompt and the runner.
type app struct {
	e     *runbook.Engine
	conn  *runbook.Connector
	sub   *runbook.Subscription
	run   *runner
	model *model
	opts  Options
	send  func(tea.Msg)
	done  chan struct{}
}

// newApp subscribes before the model reads the states, so no event falls
// between the snapshot and the stream.
func newApp(ctx context.Context, e *runbook.Engine, conn *runbook.Connector, opts Options) *app {
	a := &app{e: e, conn: conn, opts: opts, done: make(chan struct{})}
	a.sub = e.Subscribe(4096, true)
	a.run = newRunner(ctx, e)
	a.model = newModel(e, a.run, opts)
	return a
}

// start connects the engine to a running program's Send.
func (a *app) start(send func(tea.Msg)) {
	a.send = send
	if a.conn != nil {
		a.conn.SetPrompt(a.hostKeyPrompt)
	}
	b := &bridge{e: a.e, sub: a.sub, send: send, size: a.opts.logLines(), every: 20 * time.Millisecond}
	go b.run()
}

// hostKeyPrompt is called by the connector on an engine goroutine. It
// hands the question to the UI and waits for the answer there, never in
// Update.
func (a *app) hostKeyPrompt(hk *hosts.HostKeyError) bool {
	select {
	case <-a.done:
		return false
	default:
	}
	reply := make(chan bool, 1)
	a.send(hostKeyReq{err: hk, reply: reply})
	select {
	case ok := <-reply:
		return ok
	case <-a.done:
		return false
	}
}

// stop ends the UI side: pending prompts say no, and calls in flight get
// up to grace to record their end in the journal.
func (a *app) stop(cancel context.CancelFunc, grace time.Duration) {
	close(a.done)
	if a.conn != nil {
		a.conn.SetPrompt(nil)
	}
	cancel()
	a.run.wait(grace)
}

// Run shows the UI until the operator quits or ctx ends. Steps still
// running are stopped (they end as interrupted in the journal). The
// caller closes the engine.
func Run(ctx context.Context, e *runbook.Engine, conn *runbook.Connector, opts Options) error {
	opsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := newApp(opsCtx, e, conn, opts)
	fps := opts.FPS
	if fps <= 0 {
		fps = 30
	}
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(fps)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	p := tea.NewProgram(a.model, popts...)
	a.start(p.Send)
	_, err := p.Run()
	a.stop(cancel, 15*time.Second)
	if ctx.Err() != nil && (errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, tea.ErrInterrupted)) {
		return ctx.Err()
	}
	if errors.Is(err, tea.ErrInterrupted) {
		return context.Canceled
	}
	return err
}
