package tui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"

	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// Timings of the UI's own ticks.
const (
	flushEvery = 100 * time.Millisecond // log pane redraw under output
	floodEvery = 300 * time.Millisecond // ... when it scrolls by more than a screen
	animEvery  = 120 * time.Millisecond // spinner frame
)

type (
	flushMsg struct{}
	animMsg  struct{}
	clockMsg struct{}
)

// progressInfo tracks a step's progress reports for the bar and the ETA.
type progressInfo struct {
	done, total int64
	unit        string
	first, last time.Time
	firstDone   int64
}

// model is the root of the UI. It owns all state; children (stepList,
// logView, planView, dialog) are concrete types it calls directly. Engine
// calls happen only in tea.Cmds built by runner; engine events arrive as
// eventsMsg batches from the bridge, with state snapshots, so Update never
// takes the engine's lock.
type model struct {
	// watching are the dns.propagation checks re-run every watchEvery
	// until every resolver shows the new address (x stops watching).
	watching map[string]bool
	rb       *runbook.Runbook
	run      *runner
	opts     Options
	keys     keyMap
	st       *styles
	bar      progress.Model

	isDark        bool
	width, height int
	started       time.Time

	states    map[string]runbook.StepState
	progress  map[string]progressInfo
	busy      map[string]opKind
	together  map[string]bool // checks started by c, until their result
	histSeq   int64
	tsigKey   string
	quitting  bool
	resumeMsg string

	list     stepList
	logs     logView
	focusLog bool
	follow   bool

	dialogs   []*dialog
	planV     *planView
	showHelp  bool
	searching bool
	search    textinput.Model

	msg    string
	msgErr bool

	frame        int
	animating    bool
	flushPending bool

	// received counts engine events delivered to the UI (for figures).
	received int64
}

func newModel(e *runbook.Engine, run *runner, opts Options) *model {
	rb := e.RB
	m := &model{
		rb:       rb,
		run:      run,
		opts:     opts,
		keys:     newKeyMap(),
		isDark:   true,
		started:  opts.now(),
		states:   map[string]runbook.StepState{},
		progress: map[string]progressInfo{},
		busy:     map[string]opKind{},
		together: map[string]bool{},
		list:     newStepList(rb),
		logs:     newLogView(opts.logLines(), opts.location()),
		follow:   true,
	}
	m.st = newStyles(m.isDark, opts.ascii())
	m.bar = m.newBar()
	settled, touched := 0, false
	for _, st := range rb.Steps() {
		s := e.State(st.ID)
		m.states[st.ID] = s
		if s.Status.Settled() {
			settled++
		}
		if s.Status != runbook.StatusPending {
			touched = true
		}
	}
	m.search = textinput.New()
	m.search.Prompt = "/"
	m.search.Placeholder = "search the log (enter: find, esc: cancel)"
	// Start on the first step that is not settled: where a resumed run
	// left off, or the first check of a new one.
	if next := m.nextStep(); next != nil {
		m.list.selectID(next.ID)
	}
	if touched {
		m.resumeMsg = fmt.Sprintf("Resumed from the journal: %d of %d steps settled.", settled, len(rb.Steps()))
		if n := len(m.interruptedSteps()); n > 0 {
			m.resumeMsg = fmt.Sprintf("Resumed from the journal: %d of %d steps settled, %d interrupted.", settled, len(rb.Steps()), n)
		}
	}
	if sel := m.list.selected(); sel != nil {
		m.logs.show(sel.ID)
	}
	return m
}

func (m *model) newBar() progress.Model {
	return progress.New(progress.WithWidth(20), progress.WithoutPercentage(),
		progress.WithFillCharacters([]rune(m.st.g.barFull)[0], []rune(m.st.g.barEmpty)[0]),
		progress.WithColors(m.st.barFull.GetForeground()))
}

// Init asks for the background colour (styles follow it), loads the
// journal's history for the log panes, and asks about interrupted steps.
func (m *model) Init() tea.Cmd {
	path, size := runbook.JournalPath(m.rb.Path), m.opts.logLines()
	cmds := []tea.Cmd{
		tea.RequestBackgroundColor,
		func() tea.Msg { return loadHistory(path, size) },
	}
	if !m.opts.Static {
		cmds = append(cmds, tea.Tick(time.Second, func(time.Time) tea.Msg { return clockMsg{} }))
	}
	for _, id := range m.interruptedSteps() {
		cmds = append(cmds, m.interrupted(id))
	}
	m.say(m.idleHint(), false)
	if m.resumeMsg != "" {
		m.say(m.resumeMsg+" "+m.idleHint(), false)
	}
	return tea.Batch(cmds...)
}

// say sets the status line message.
func (m *model) say(text string, isErr bool) { m.msg, m.msgErr = text, isErr }

func (m *model) idleHint() string { return m.idleHintAfter("") }

// idleHintAfter names the next step, not counting done, which just
// finished (its final state may still be on its way from the bridge).
func (m *model) idleHintAfter(done string) string {
	next := m.nextStep()
	if next != nil && next.ID == done {
		next = m.nextStepAfter(done)
	}
	if next == nil {
		return "All steps are settled. q quits; the journal keeps the run for decant transcript."
	}
	return fmt.Sprintf("Next: %s. Press n to run it, ? for help.", next.ID)
}

// nextStep is the first step that is not settled and not running.
func (m *model) nextStep() *runbook.Step { return m.nextStepAfter("") }

// nextStepAfter is the first step left to do. A check that already failed
// is passed over while other steps remain: running it again changes
// nothing until its fix has run (which re-runs it), and its fix is often
// the next action.
func (m *model) nextStepAfter(skip string) *runbook.Step {
	var failedCheck *runbook.Step
	for _, st := range m.list.steps {
		s := m.states[st.ID].Status
		if st.ID != skip && !s.Settled() && s != runbook.StatusRunning && s != runbook.StatusUndoing && m.busy[st.ID] == "" {
			if st.Type == runbook.TypeCheck && s == runbook.StatusFailed {
				if failedCheck == nil {
					failedCheck = st
				}
				continue
			}
			return st
		}
	}
	return failedCheck
}

// fixedBy lists the failed checks whose failures all name kind as their
// fix action: they run again once that action has run.
func (m *model) fixedBy(kind string) []*runbook.Step {
	var out []*runbook.Step
	for _, st := range m.list.steps {
		s := m.states[st.ID]
		if st.Type != runbook.TypeCheck || s.Status != runbook.StatusFailed || m.busy[st.ID] != "" {
			continue
		}
		if runbook.OffersFix(s.Findings, kind) {
			out = append(out, st)
		}
	}
	return out
}

func (m *model) step(id string) *runbook.Step { return m.rb.Step(id) }

// anyRunning reports whether a step runs or the UI waits on the engine.
func (m *model) anyRunning() bool {
	if len(m.busy) > 0 {
		return true
	}
	for _, s := range m.states {
		if s.Status == runbook.StatusRunning || s.Status == runbook.StatusUndoing {
			return true
		}
	}
	return false
}

func (m *model) runningSteps() []string {
	var out []string
	for _, st := range m.list.steps {
		s := m.states[st.ID].Status
		if s == runbook.StatusRunning || s == runbook.StatusUndoing || m.busy[st.ID] != "" {
			out = append(out, st.ID)
		}
	}
	return out
}

// Update is the only place state changes. It does no I/O.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.BackgroundColorMsg:
		m.isDark = msg.IsDark()
		m.st = newStyles(m.isDark, m.opts.ascii())
		m.bar = m.newBar()
		m.logs.dirty = true
		m.logs.flush(m.st)
		return m, m.forwardDialog(msg)
	case *eventsMsg:
		return m, m.applyEvents(msg)
	case historyMsg:
		m.applyHistory(msg)
		return m, nil
	case hostKeyReq:
		return m, m.pushDialog(m.hostKeyDialog(msg))
	case planMsg:
		return m, m.onPlan(msg)
	case opDoneMsg:
		return m, tea.Batch(m.onOpDone(msg), m.watch(msg))
	case undoAllMsg:
		for _, id := range msg.ids {
			delete(m.busy, id)
		}
		switch {
		case msg.err != nil && !errors.Is(msg.err, errShuttingDown):
			m.say("undo stopped at "+msg.failed+": "+firstLine(msg.err.Error()), true)
		case msg.err == nil:
			m.say(fmt.Sprintf("Undid %d steps, newest first. %s", len(msg.ids), m.idleHint()), false)
		}
		return m, nil
	case watchMsg:
		return m, m.onWatch(msg)
	case phaseDoneMsg:
		return m, m.onPhaseDone(msg)
	case flushMsg:
		m.flushPending = false
		m.logs.flush(m.st)
		return m, nil
	case animMsg:
		if !m.anyRunning() {
			m.animating = false
			return m, nil
		}
		m.frame++
		return m, tea.Tick(animEvery, func(time.Time) tea.Msg { return animMsg{} })
	case clockMsg:
		return m, tea.Tick(time.Second, func(time.Time) tea.Msg { return clockMsg{} })
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	}
	// Everything else belongs to the open form or the search box (their
	// own commands: field moves, cursor blinks, pastes).
	if len(m.dialogs) > 0 {
		return m, m.forwardDialog(msg)
	}
	if m.searching {
		var cmd tea.Cmd
		m.search, cmd = m.search.Update(msg)
		return m, cmd
	}
	return m, nil
}

// layout sizes the panes from the window.
func (m *model) layout() {
	bodyH := max(m.height-3, 3)
	lw := m.leftWidth()
	m.list.setSize(lw-2, bodyH-2)
	m.logs.setSize(m.width-lw-2, bodyH-2)
	m.logs.flush(m.st)
	if m.planV != nil {
		m.planV.setSize(m.width-lw-2, bodyH-2)
	}
	for _, d := range m.dialogs {
		d.setSize(m.width-4, bodyH-2)
	}
	m.search.SetWidth(max(10, m.width-4))
}

func (m *model) leftWidth() int {
	return min(max(m.width*38/100, 28), 48, max(m.width/2, 4))
}

// applyEvents folds a bridge batch into the model.
func (m *model) applyEvents(b *eventsMsg) tea.Cmd {
	m.received += int64(b.count)
	for _, id := range b.order {
		lines := b.lines[id]
		if m.histSeq > 0 {
			// The history already holds what the journal had when read.
			i := 0
			for i < len(lines) && lines[i].seq <= m.histSeq {
				i++
			}
			lines = lines[i:]
		}
		m.logs.appendLines(id, lines)
	}
	for id, s := range b.states {
		m.states[id] = s
	}
	for id, ev := range b.progress {
		p := m.progress[id]
		if p.first.IsZero() || ev.Done < p.done {
			p.first, p.firstDone = ev.Time, ev.Done
		}
		p.done, p.total, p.unit, p.last = ev.Done, ev.Total, ev.Unit, ev.Time
		m.progress[id] = p
	}
	for _, ev := range b.events {
		switch ev.Type {
		case runbook.EvCheckResult, runbook.EvFailed, runbook.EvCancelled:
			delete(m.together, ev.Step)
		case runbook.EvStarted, runbook.EvUndoStarted:
			delete(m.progress, ev.Step)
			// Checks run together stay put: the list would jump between
			// them. A step already over by now (the snapshot is newer) is
			// not worth a jump either.
			now := m.states[ev.Step].Status
			if m.follow && len(m.dialogs) == 0 && m.planV == nil && !m.together[ev.Step] &&
				(now == runbook.StatusRunning || now == runbook.StatusUndoing) {
				m.list.selectID(ev.Step)
				m.logs.show(ev.Step)
			}
		}
	}
	var cmds []tea.Cmd
	if m.logs.dirty && !m.flushPending {
		m.flushPending = true
		every := flushEvery
		if m.logs.burst() {
			every = floodEvery
		}
		cmds = append(cmds, tea.Tick(every, func(time.Time) tea.Msg { return flushMsg{} }))
	}
	cmds = append(cmds, m.animate())
	return tea.Batch(cmds...)
}

// animate starts the spinner if a step runs and animation is on.
func (m *model) animate() tea.Cmd {
	if m.animating || m.opts.Static || !m.anyRunning() {
		return nil
	}
	m.animating = true
	return tea.Tick(animEvery, func(time.Time) tea.Msg { return animMsg{} })
}

func (m *model) applyHistory(h historyMsg) {
	if h.err != nil {
		m.say("could not read the journal's history: "+h.err.Error(), true)
		return
	}
	for id, lines := range h.lines {
		m.logs.mergeHistory(id, lines)
	}
	m.histSeq = h.maxSeq
	m.logs.flush(m.st)
}

// logLocal adds a line that did not come from the engine (a plan that
// could not be made) to a step's pane.
func (m *model) logLocal(id string, kind lineKind, text string) {
	m.logs.appendLines(id, []logEntry{{at: m.opts.now(), kind: kind, text: cleanLine(text)}})
	m.logs.flush(m.st)
}

// ---- keys ----

func (m *model) onKey(k tea.KeyPressMsg) tea.Cmd {
	if len(m.dialogs) > 0 {
		return m.forwardDialog(k)
	}
	if m.searching {
		return m.onSearchKey(k)
	}
	if m.showHelp {
		switch k.String() {
		case "?", "esc", "q", "enter":
			m.showHelp = false
		}
		return nil
	}
	if m.planV != nil {
		switch k.String() {
		case "esc", "p", "q":
			m.planV = nil
		case "enter":
			pv := m.planV
			m.planV = nil
			return m.proceed(pv.step, pv.plan)
		case "up", "k":
			m.planV.scroll(-1)
		case "down", "j":
			m.planV.scroll(1)
		case "pgup":
			m.planV.scroll(-m.planV.height + 1)
		case "pgdown", "space":
			m.planV.scroll(m.planV.height - 1)
		}
		return nil
	}
	keys := m.keys
	switch {
	case key.Matches(k, keys.Quit):
		return m.quit()
	case key.Matches(k, keys.Help):
		m.showHelp = true
	case key.Matches(k, keys.Up):
		if m.focusLog {
			m.logs.scroll(-1)
		} else {
			m.list.move(-1)
			m.showSelected()
		}
	case key.Matches(k, keys.Down):
		if m.focusLog {
			m.logs.scroll(1)
		} else {
			m.list.move(1)
			m.showSelected()
		}
	case key.Matches(k, keys.Top):
		if m.focusLog {
			m.logs.gotoTop()
		} else {
			m.list.move(-len(m.list.steps))
			m.showSelected()
		}
	case key.Matches(k, keys.Bottom):
		if m.focusLog {
			m.logs.gotoBottom()
		} else {
			m.list.move(len(m.list.steps))
			m.showSelected()
		}
	case key.Matches(k, keys.Focus):
		m.focusLog = !m.focusLog
	case key.Matches(k, keys.PageUp):
		m.logs.scroll(-max(1, m.logs.height-1))
	case key.Matches(k, keys.PageDown):
		m.logs.scroll(max(1, m.logs.height-1))
	case key.Matches(k, keys.Run):
		return m.startSelected(false)
	case key.Matches(k, keys.Retry):
		return m.startSelected(true)
	case key.Matches(k, keys.Next):
		next := m.nextStep()
		if next == nil {
			m.say("Nothing left to run: every step is settled or running.", false)
			return nil
		}
		m.list.selectID(next.ID)
		m.showSelected()
		return m.start(next, false)
	case key.Matches(k, keys.Plan):
		return m.planSelected()
	case key.Matches(k, keys.Undo):
		return m.undoSelected()
	case key.Matches(k, keys.UndoAll):
		return m.undoAllAsk()
	case key.Matches(k, keys.Skip):
		return m.skipSelected()
	case key.Matches(k, keys.Note):
		return m.noteSelected()
	case key.Matches(k, keys.Waive):
		return m.waiveSelected()
	case key.Matches(k, keys.Stop):
		return m.stopSelected()
	case key.Matches(k, keys.Phase):
		return m.phaseChecks()
	case key.Matches(k, keys.Failure):
		m.firstFailure()
	case key.Matches(k, keys.Follow):
		m.follow = !m.follow
		if m.follow {
			m.say("Following: the log shows each step as it starts.", false)
		} else {
			m.say("Not following: the selection stays where you put it.", false)
		}
	case key.Matches(k, keys.Search):
		m.searching = true
		m.search.SetValue(m.logs.query)
		m.search.CursorEnd()
		return m.search.Focus()
	case key.Matches(k, keys.SearchNext):
		if !m.logs.nextMatch(1) {
			m.say("no later match", false)
		}
	case key.Matches(k, keys.SearchPrv):
		if !m.logs.nextMatch(-1) {
			m.say("no earlier match", false)
		}
	case k.String() == "esc":
		if m.logs.query != "" {
			m.logs.setQuery("")
		}
		m.say(m.idleHint(), false)
	}
	m.logs.flushMoved(m.st)
	return nil
}

func (m *model) onSearchKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "enter":
		m.searching = false
		m.search.Blur()
		q := m.search.Value()
		if !m.logs.setQuery(q) {
			m.say(fmt.Sprintf("%q: not in this step's log", q), true)
		} else if q != "" {
			m.say("ctrl+n / ctrl+p: next / previous match; esc clears the search", false)
		}
		m.logs.flush(m.st)
		return nil
	case "esc":
		m.searching = false
		m.search.Blur()
		return nil
	}
	var cmd tea.Cmd
	m.search, cmd = m.search.Update(k)
	return cmd
}

func (m *model) showSelected() {
	if st := m.list.selected(); st != nil {
		m.logs.show(st.ID)
	}
}

func (m *model) quit() tea.Cmd {
	if running := m.runningSteps(); len(running) > 0 {
		d := newDialog(dlgQuit, "", "Quit while a step runs?", []string{
			"Running: " + strings.Join(running, ", "),
			"",
			"Quitting stops it. The journal records it as interrupted, and the next",
			"start asks whether to retry it, undo it or mark it done.",
		})
		d.withForm(d.confirmField("Quit now?", "Quit", "Stay"))
		return m.pushDialog(d)
	}
	m.quitting = true
	return tea.Quit
}

// ---- running steps ----

func (m *model) startSelected(force bool) tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	return m.start(st, force)
}

// blocked finds a failing, unwaived check in the step's phase (as the
// engine's Blocked does, from the UI's snapshot).
func (m *model) blocked(st *runbook.Step) string {
	if st.Type == runbook.TypeCheck {
		return ""
	}
	for _, ph := range m.rb.Phases {
		if ph.Name != st.Phase {
			continue
		}
		for _, o := range ph.Steps {
			if o.Type == runbook.TypeCheck && m.states[o.ID].Status == runbook.StatusFailed && !runbook.OffersFix(m.states[o.ID].Findings, st.Kind) {
				return o.ID
			}
		}
	}
	return ""
}

// needsTSIG reports a DNS action while the runbook leaves the TSIG key
// open: the operator is asked for its path.
func (m *model) needsTSIG(st *runbook.Step) bool {
	return st.Type == runbook.TypeAction && strings.HasPrefix(st.Kind, "dns.") &&
		m.rb.DNS.TSIGKey == "" && m.tsigKey == ""
}

func (m *model) start(st *runbook.Step, force bool) tea.Cmd {
	s := m.states[st.ID]
	if m.busy[st.ID] != "" || s.Status == runbook.StatusRunning || s.Status == runbook.StatusUndoing {
		m.say(st.ID+" is already running.", false)
		return nil
	}
	if !force && st.Type != runbook.TypeCheck && s.Status.Settled() {
		m.say(fmt.Sprintf("%s is %s. r runs it again; n runs the next step.", st.ID, s.Status), false)
		return nil
	}
	if st.Type == runbook.TypeCheck {
		m.busy[st.ID] = opRun
		m.say("Running check "+st.ID+"...", false)
		return tea.Batch(m.run.run(st.ID, nil, ""), m.animate())
	}
	if b := m.blocked(st); b != "" {
		m.say(fmt.Sprintf("%s waits: check %s failed. Fix it and rerun it, or select it and press w to waive it.", st.ID, b), true)
		return nil
	}
	if m.needsTSIG(st) {
		if len(m.runningSteps()) > 0 {
			m.say(st.ID+" needs a TSIG key path: wait until no step runs.", true)
			return nil
		}
		d := newDialog(dlgTSIG, st.ID, "A value the runbook leaves open", []string{
			st.ID + " sends signed DNS updates (RFC 2136), and the runbook has no dns.tsig_key.",
			"Give the path of the TSIG key file (BIND key-file syntax, or \"name algorithm secret\").",
			"It is used for this run only; add tsig_key under dns: in the runbook to keep it.",
		})
		d.withForm(d.reasonField("TSIG key file", "/etc/bind/keys/update.key"))
		return m.pushDialog(d)
	}
	m.busy[st.ID] = opPlan
	m.say("Planning "+st.ID+"...", false)
	return m.run.plan(st.ID, planToRun, "")
}

func (m *model) planSelected() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	if st.Type == runbook.TypeCheck {
		m.say(st.ID+" is a read-only check: it has no plan. enter runs it.", false)
		return nil
	}
	if m.busy[st.ID] != "" {
		m.say(st.ID+" is busy.", false)
		return nil
	}
	m.busy[st.ID] = opPlan
	m.say("Planning "+st.ID+" (dry run, changes nothing)...", false)
	return m.run.plan(st.ID, planToShow, "")
}

func (m *model) onPlan(p planMsg) tea.Cmd {
	delete(m.busy, p.id)
	if p.tsigKey != "" {
		m.tsigKey = p.tsigKey
	}
	if p.err != nil {
		m.say(p.id+": "+firstLine(p.err.Error()), true)
		m.logLocal(p.id, lkFail, "plan failed: "+p.err.Error())
		return nil
	}
	if p.purpose == planToShow {
		m.planV = newPlanView(p.id, p.plan)
		m.layout()
		m.say("The plan of "+p.id+": enter runs it, esc closes it.", false)
		return nil
	}
	return m.proceed(p.id, p.plan)
}

// proceed runs a planned action, asking first when it is dangerous.
func (m *model) proceed(id string, plan *steps.Plan) tea.Cmd {
	st := m.step(id)
	if st == nil {
		return nil
	}
	// confirm_text implies a confirmation even without confirm: true.
	if (st.Confirm || st.ConfirmText != "") && !plan.Noop {
		body := append([]string{named(st) + " will make these changes:", ""}, planLines(plan)...)
		var d *dialog
		if st.ConfirmText != "" {
			d = newDialog(dlgTyped, id, "Confirm: "+id, body)
			d.withForm(d.typedField(st.ConfirmText))
		} else {
			d = newDialog(dlgConfirmRun, id, "Confirm: "+id, body)
			d.withForm(d.confirmField("Run it now?", "Run it", "Not now"))
		}
		d.plan = plan
		return m.pushDialog(d)
	}
	m.busy[id] = opRun
	m.say("Running "+id+"...", false)
	return tea.Batch(m.run.run(id, plan, ""), m.animate())
}

func (m *model) undoSelected() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	s := m.states[st.ID]
	switch {
	case st.Type == runbook.TypeCheck:
		m.say(st.ID+" is a check: it changed nothing, so there is nothing to undo.", false)
		return nil
	case m.busy[st.ID] != "" || s.Status == runbook.StatusRunning || s.Status == runbook.StatusUndoing:
		m.say(st.ID+" is running: stop it first (x).", false)
		return nil
	case s.Status == runbook.StatusPending && len(s.Receipt) == 0, s.Status == runbook.StatusUndone, s.Status == runbook.StatusSkipped:
		m.say(fmt.Sprintf("%s is %s: it has changed nothing to undo.", st.ID, s.Status), false)
		return nil
	case s.Status == runbook.StatusDone && len(s.Receipt) == 0 && s.Reason != "":
		m.say(st.ID+" was marked done by hand: undo it by hand.", false)
		return nil
	case st.Type == runbook.TypeShell && len(s.Receipt) > 0 && !shellHasUndo(s.Receipt):
		m.say(st.ID+" has no undo command in its record: revert it by hand, or skip it.", false)
		return nil
	}
	body := []string{fmt.Sprintf("Undo %s, now %s.", named(st), s.Status), ""}
	if len(s.Receipt) > 0 {
		body = append(body, "The journal recorded what it changed; undo works from this record:", "")
		body = append(body, receiptLines(s.Receipt)...)
	} else {
		body = append(body, "The journal has no record of a change: undo will only mark it undone.")
	}
	d := newDialog(dlgUndo, st.ID, "Undo: "+st.ID, body)
	d.withForm(d.confirmField("Undo it now?", "Undo it", "Keep it"))
	return m.pushDialog(d)
}

// undoAllAsk shows every recorded change, newest first, and asks before
// undoing them all (the rehearsal's last step).
func (m *model) undoAllAsk() tea.Cmd {
	if m.anyRunning() {
		m.say("A step is running: wait for it, or stop it (x), before undoing the run.", false)
		return nil
	}
	ids := runbook.UndoOrder(m.rb, func(id string) *runbook.StepState {
		if s, ok := m.states[id]; ok {
			return &s
		}
		return nil
	})
	if len(ids) == 0 {
		m.say("Nothing to undo: no action has recorded a change.", false)
		return nil
	}
	body := []string{fmt.Sprintf("Undo these %d steps, newest first, each from its journal record:", len(ids)), ""}
	for _, id := range ids {
		body = append(body, "  "+named(m.step(id)))
	}
	body = append(body, "", "It stops at the first undo that fails.")
	d := newDialog(dlgUndoAll, "", "Undo the whole run", body)
	d.ids = ids
	d.withForm(d.confirmField("Undo them all now?", "Undo them all", "Keep them"))
	return m.pushDialog(d)
}

// shellHasUndo reports whether a shell step's journaled receipt carries
// an undo command (the one from when it ran, not today's runbook).
func shellHasUndo(r json.RawMessage) bool {
	var rc struct {
		Undo string `json:"undo"`
	}
	return json.Unmarshal(r, &rc) == nil && strings.TrimSpace(rc.Undo) != ""
}

// named is "id (title)", or the id alone when the list shows it as is.
func named(st *runbook.Step) string {
	if l := label(st); l != st.ID && l != strings.TrimPrefix(st.ID, st.Phase+"/") {
		return st.ID + " (" + l + ")"
	}
	return st.ID
}

// receiptLines pretty-prints a journaled receipt (already redacted).
func receiptLines(r json.RawMessage) []string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, r, "  ", "  "); err != nil {
		return []string{"  " + string(r)}
	}
	return strings.Split("  "+buf.String(), "\n")
}

func (m *model) skipSelected() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	if m.busy[st.ID] != "" || m.states[st.ID].Status == runbook.StatusRunning {
		m.say(st.ID+" is running: stop it first (x).", false)
		return nil
	}
	d := newDialog(dlgSkip, st.ID, "Skip: "+st.ID, []string{
		fmt.Sprintf("Skip %s. The run moves past it; the reason goes to the journal and the transcript.", named(st)),
	})
	d.withForm(d.reasonField("Why skip it?", "e.g. done by hand on the new server"))
	return m.pushDialog(d)
}

func (m *model) noteSelected() tea.Cmd {
	st := m.list.selected()
	id := ""
	if st != nil {
		id = st.ID
	}
	d := newDialog(dlgNote, id, "Note", []string{
		"A note goes to the journal with the time and the selected step (" + id + "), and appears in the transcript.",
	})
	d.withForm(d.reasonField("Note", "what you saw or did"))
	return m.pushDialog(d)
}

func (m *model) waiveSelected() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	if st.Type != runbook.TypeCheck || m.states[st.ID].Status != runbook.StatusFailed {
		m.say("Only a failed check can be waived (select it first).", false)
		return nil
	}
	d := newDialog(dlgWaive, st.ID, "Waive: "+st.ID, []string{
		st.ID + " failed. Waiving it lets the actions of its phase run anyway; the reason is journaled.",
	})
	d.withForm(d.reasonField("Why is it safe to go on?", "e.g. checked by hand"))
	return m.pushDialog(d)
}

func (m *model) stopSelected() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	if m.watching[st.ID] && m.busy[st.ID] == "" {
		delete(m.watching, st.ID)
		m.say("Stopped watching "+st.ID+"; enter runs it again.", false)
		return nil
	}
	s := m.states[st.ID].Status
	if s != runbook.StatusRunning && s != runbook.StatusUndoing {
		m.say(st.ID+" is not running.", false)
		return nil
	}
	d := newDialog(dlgStop, st.ID, "Stop: "+st.ID, []string{
		"Stop " + st.ID + "? It ends as interrupted; then retry (r) or undo (u) it.",
	})
	d.withForm(d.confirmField("Stop it?", "Stop it", "Let it run"))
	return m.pushDialog(d)
}

func (m *model) phaseChecks() tea.Cmd {
	st := m.list.selected()
	if st == nil {
		return nil
	}
	var ids []string
	for _, ph := range m.rb.Phases {
		if ph.Name != st.Phase {
			continue
		}
		for _, o := range ph.Steps {
			s := m.states[o.ID].Status
			if o.Type == runbook.TypeCheck && m.busy[o.ID] == "" && s != runbook.StatusRunning {
				ids = append(ids, o.ID)
			}
		}
	}
	if len(ids) == 0 {
		m.say("Phase "+st.Phase+" has no checks to run.", false)
		return nil
	}
	for _, id := range ids {
		m.busy[id] = opPhase
		m.together[id] = true
	}
	m.say(fmt.Sprintf("Running %d checks of %s together...", len(ids), st.Phase), false)
	return tea.Batch(m.run.phaseChecks(st.Phase, ids, m.rb.Settings.Parallel), m.animate())
}

func (m *model) onPhaseDone(p phaseDoneMsg) tea.Cmd {
	for _, id := range p.ids {
		delete(m.busy, id)
	}
	counts := map[runbook.StepStatus]int{}
	for _, id := range p.ids {
		counts[p.status[id]]++
	}
	msg := fmt.Sprintf("%s checks: %d passed, %d warned, %d failed", p.phase,
		counts[runbook.StatusPassed], counts[runbook.StatusWarned]+counts[runbook.StatusWaived], counts[runbook.StatusFailed])
	if n := counts[runbook.StatusInterrupted]; n > 0 {
		msg += fmt.Sprintf(", %d interrupted", n)
	}
	msg += fmt.Sprintf(" (%s).", fmtDuration(p.took))
	failed := counts[runbook.StatusFailed] > 0
	if failed {
		msg += " f jumps to the first failure."
	} else {
		msg += " " + m.idleHint()
	}
	m.say(msg, failed)
	return nil
}

func (m *model) firstFailure() {
	for _, st := range m.list.steps {
		s := m.states[st.ID].Status
		if s == runbook.StatusFailed || s == runbook.StatusInterrupted {
			m.list.selectID(st.ID)
			m.showSelected()
			m.say(fmt.Sprintf("%s %s: read its log, then r retries, u undoes, s skips.", st.ID, s), false)
			return
		}
	}
	m.say("No step has failed.", false)
}

func (m *model) onOpDone(o opDoneMsg) tea.Cmd {
	delete(m.busy, o.id)
	if o.err != nil {
		switch {
		case errors.Is(o.err, errShuttingDown):
		case errors.Is(o.err, runbook.ErrCheckFailed):
			m.say(o.id+": check failed. Its log shows the findings and the fix; w waives it.", true)
		default:
			prefix := ""
			if o.op != opRun {
				prefix = string(o.op) + " "
			}
			m.say(prefix+firstLine(o.err.Error()), true)
		}
		return nil
	}
	switch o.op {
	case opRun:
		m.say(o.id+" finished. "+m.idleHintAfter(o.id), false)
		// A fix action ran: the checks it fixes run again.
		if st := m.step(o.id); st != nil && st.Type != runbook.TypeCheck {
			var cmds []tea.Cmd
			for _, c := range m.fixedBy(st.Kind) {
				m.busy[c.ID] = opRun
				cmds = append(cmds, m.run.run(c.ID, nil, ""))
			}
			if len(cmds) > 0 {
				return tea.Batch(append(cmds, m.animate())...)
			}
		}
	case opUndo:
		m.say(o.id+" undone. "+m.idleHint(), false)
	case opSkip:
		m.say(o.id+" skipped. "+m.idleHintAfter(o.id), false)
	case opNote:
		m.say("Note added to the journal.", false)
	case opWaive:
		m.say(o.id+" waived: its phase's actions may run.", false)
	case opDone:
		m.say(o.id+" marked done. "+m.idleHintAfter(o.id), false)
	case opCancel:
		m.say("Stopping "+o.id+"...", false)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ---- dialogs ----

// interruptedSteps lists the steps to ask about at start-up: those a
// dead process left running (engine.Interrupted) and those stopped when
// the operator quit or pressed x (status interrupted), in runbook order.
func (m *model) interruptedSteps() []string {
	dead := map[string]bool{}
	for _, id := range m.run.e.Interrupted {
		dead[id] = true
	}
	var out []string
	for _, st := range m.list.steps {
		if dead[st.ID] || m.states[st.ID].Status == runbook.StatusInterrupted {
			out = append(out, st.ID)
		}
	}
	return out
}

// interrupted asks what to do with a step a dead process left running,
// or applies the --on-interrupted choice.
func (m *model) interrupted(id string) tea.Cmd {
	st := m.step(id)
	if st == nil {
		return nil
	}
	switch m.opts.OnInterrupted {
	case "retry":
		return m.start(st, true)
	case "undo":
		if st.Type == runbook.TypeCheck {
			return nil
		}
		m.busy[id] = opUndo
		return m.run.undo(id)
	case "done":
		return m.run.markDone(id, "operator: interrupted step had completed")
	}
	s := m.states[id]
	body := []string{
		named(st) + " was running when decant stopped.",
		"It may have finished, done part of its work, or nothing. Its log shows how far it got.",
	}
	opts := []huh.Option[string]{huh.NewOption("Retry it (run it again)", "retry")}
	if st.Type != runbook.TypeCheck {
		if len(s.Receipt) > 0 {
			body = append(body, "", "The journal recorded this before it stopped; undo works from it:", "")
			body = append(body, receiptLines(s.Receipt)...)
		}
		if st.Type != runbook.TypeShell || len(s.Receipt) == 0 || shellHasUndo(s.Receipt) {
			opts = append(opts, huh.NewOption("Undo it (revert what it recorded)", "undo"))
		}
	}
	opts = append(opts,
		huh.NewOption("Mark it done (it did complete)", "done"),
		huh.NewOption("Decide later", "later"))
	d := newDialog(dlgInterrupted, id, "Interrupted: "+id, body)
	d.choice = "retry"
	d.withForm(d.selectField("What now?", opts...))
	return m.pushDialog(d)
}

func (m *model) hostKeyDialog(r hostKeyReq) *dialog {
	hk := r.err
	body := []string{
		"decant has never seen this server's SSH host key.",
		"",
		"  host:        " + hk.Host,
		"  key type:    " + hk.KeyType,
		"  fingerprint: " + hk.Fingerprint,
		"",
		"Compare the fingerprint with the one the server shows, on its console:",
		"  ssh-keygen -lf /etc/ssh/ssh_host_" + hostKeyFile(hk.KeyType) + "_key.pub",
		"Trusting it adds it to " + hk.KnownHosts + ".",
	}
	d := newDialog(dlgHostKey, "", "Unknown host key: "+hk.Host, body)
	d.hostKey = r
	d.withForm(d.confirmField("Trust this key?", "Trust it", "Reject"))
	return d
}

// hostKeyFile names the sshd host key file of a key type.
func hostKeyFile(keyType string) string {
	switch {
	case strings.HasPrefix(keyType, "ecdsa-"):
		return "ecdsa"
	case strings.Contains(keyType, "ed25519"):
		return "ed25519"
	case strings.Contains(keyType, "rsa"):
		return "rsa"
	}
	return strings.TrimPrefix(keyType, "ssh-")
}

// pushDialog queues a dialog; the first in the queue has the keys.
func (m *model) pushDialog(d *dialog) tea.Cmd {
	d.setSize(m.width-4, max(m.height-3, 3)-2)
	m.dialogs = append(m.dialogs, d)
	if len(m.dialogs) == 1 {
		return d.init()
	}
	return nil
}

// forwardDialog hands a message to the open dialog and acts on its answer
// when it completes.
func (m *model) forwardDialog(msg tea.Msg) tea.Cmd {
	if len(m.dialogs) == 0 {
		return nil
	}
	d := m.dialogs[0]
	var cmd tea.Cmd
	m.dialogs[0], cmd = d.Update(msg)
	if !d.done() {
		return cmd
	}
	m.dialogs = m.dialogs[1:]
	cmds := []tea.Cmd{m.answer(d)}
	if len(m.dialogs) > 0 {
		cmds = append(cmds, m.dialogs[0].init())
	}
	return tea.Batch(cmds...)
}

// answer acts on a completed (or cancelled) dialog.
func (m *model) answer(d *dialog) tea.Cmd {
	ok := d.submitted()
	switch d.kind {
	case dlgHostKey:
		d.hostKey.reply <- ok && d.ok // buffered: never blocks
		if ok && d.ok {
			m.say("Host key trusted and saved; connecting...", false)
		} else {
			m.say("Host key rejected: the step fails with the fingerprint in its log.", true)
		}
	case dlgConfirmRun:
		if ok && d.ok {
			m.busy[d.step] = opRun
			m.say("Running "+d.step+"...", false)
			return tea.Batch(m.run.run(d.step, d.plan, "confirmed by operator"), m.animate())
		}
		m.say(d.step+" not run.", false)
	case dlgTyped:
		if ok {
			m.busy[d.step] = opRun
			m.say("Running "+d.step+"...", false)
			return tea.Batch(m.run.run(d.step, d.plan, "confirmed by operator, typed "+strings.TrimSpace(d.text)), m.animate())
		}
		m.say(d.step+" not run: the confirmation was not typed.", false)
	case dlgUndoAll:
		if ok && d.ok {
			for _, id := range d.ids {
				m.busy[id] = opUndo
			}
			m.say(fmt.Sprintf("Undoing %d steps, newest first...", len(d.ids)), false)
			return tea.Batch(m.run.undoAll(d.ids), m.animate())
		}
		m.say("Nothing undone.", false)
	case dlgUndo:
		if ok && d.ok {
			m.busy[d.step] = opUndo
			m.say("Undoing "+d.step+"...", false)
			return tea.Batch(m.run.undo(d.step), m.animate())
		}
		m.say(d.step+" kept.", false)
	case dlgSkip:
		if ok {
			return m.run.skip(d.step, strings.TrimSpace(d.text))
		}
	case dlgNote:
		if ok {
			return m.run.note(d.step, strings.TrimSpace(d.text))
		}
	case dlgWaive:
		if ok {
			return m.run.waive(d.step, strings.TrimSpace(d.text))
		}
	case dlgStop:
		if ok && d.ok {
			return m.run.cancel(d.step)
		}
	case dlgQuit:
		if ok && d.ok {
			m.quitting = true
			return tea.Quit
		}
	case dlgTSIG:
		if ok {
			m.busy[d.step] = opPlan
			m.say("Checking the TSIG key and planning "+d.step+"...", false)
			return m.run.plan(d.step, planToRun, strings.TrimSpace(d.text))
		}
	case dlgInterrupted:
		if !ok {
			m.say(d.step+": decide later (r retries, u undoes it).", false)
			return nil
		}
		switch d.choice {
		case "retry":
			if st := m.step(d.step); st != nil {
				return m.start(st, true)
			}
		case "undo":
			m.busy[d.step] = opUndo
			return tea.Batch(m.run.undo(d.step), m.animate())
		case "done":
			return m.run.markDone(d.step, "operator: the interrupted step had completed")
		default:
			m.say(d.step+": decide later (r retries, u undoes it).", false)
		}
	}
	return nil
}

// watchEvery is how often a lagging dns.propagation check refreshes.
const watchEvery = 5 * time.Second

// watchMsg asks for the next refresh of a watched check.
type watchMsg struct{ id string }

// watch keeps a dns.propagation check refreshing live after a run that
// found resolvers still on the old answer, until all agree or x is pressed.
func (m *model) watch(o opDoneMsg) tea.Cmd {
	st := m.step(o.id)
	if o.op != opRun || st == nil || st.Kind != "dns.propagation" {
		return nil
	}
	if o.status == runbook.StatusPassed || o.err != nil && !errors.Is(o.err, runbook.ErrCheckFailed) {
		if m.watching[o.id] && o.err == nil {
			delete(m.watching, o.id)
			m.say(o.id+": every resolver shows the new address.", false)
		}
		return nil
	}
	if m.watching == nil {
		m.watching = map[string]bool{}
	}
	m.watching[o.id] = true
	m.say(fmt.Sprintf("%s: resolvers still lag; refreshing every %s (x stops watching).", o.id, watchEvery), false)
	return tea.Tick(watchEvery, func(time.Time) tea.Msg { return watchMsg{o.id} })
}

func (m *model) onWatch(w watchMsg) tea.Cmd {
	st := m.step(w.id)
	if !m.watching[w.id] || st == nil || m.busy[w.id] != "" {
		return nil
	}
	m.busy[w.id] = opRun
	return m.run.run(w.id, nil, "")
}
