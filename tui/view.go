package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/runbook"
	"github.com/decant-sh/decant/runbook/plain"
)

// View draws the screen: a header, the checklist and the log side by side
// (or a dialog, the plan, the help over them), a status line and the key
// hints. Every line is exactly the window's width, so the renderer's line
// diff sends only what changed: a clock tick is a few bytes over SSH.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "decant: " + m.rb.Name
	return v
}

func (m *model) render() string {
	if m.width <= 0 || m.height <= 0 || m.quitting {
		return ""
	}
	bodyH := max(m.height-3, 3)
	var body []string
	switch {
	case m.showHelp:
		body = m.box("Help: keys and marks (? or esc closes)", m.helpView(), m.width, bodyH, true)
	case len(m.dialogs) > 0:
		d := m.dialogs[0]
		body = m.box(d.title, d.View(m.st), m.width, bodyH, true)
	default:
		lw := m.leftWidth()
		now := m.opts.now()
		left := m.box("Checklist", m.list.View(m.st, m.states, m.frame, now, !m.focusLog), lw, bodyH, !m.focusLog)
		var right []string
		if m.planV != nil {
			right = m.box("Plan: "+m.planV.step+" (dry run)", m.planV.View(m.st), m.width-lw, bodyH, true)
		} else {
			right = m.box(m.logTitle(), m.logContent(), m.width-lw, bodyH, m.focusLog)
		}
		body = make([]string, bodyH)
		for i := range body {
			body[i] = left[i] + right[i]
		}
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.header())
	lines = append(lines, body...)
	lines = append(lines, m.statusLine(), m.hints())
	return strings.Join(lines, "\n")
}

// fit truncates or pads a styled line to exactly w cells.
func fit(s string, w int, tail string) string {
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, tail)
	}
	if n := w - ansi.StringWidth(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// box draws a titled frame of w x h cells around content.
func (m *model) box(title, content string, w, h int, focused bool) []string {
	s := m.st
	bs := s.pane
	if focused {
		bs = s.paneFocus
	}
	b := bs.GetBorderStyle()
	edge := func(t string) string { return bs.UnsetBorderStyle().Foreground(bs.GetBorderTopForeground()).Render(t) }
	inner := max(w-2, 1)
	title = ansi.Truncate(title, max(inner-4, 1), s.g.ellipsis)
	topFill := max(inner-ansi.StringWidth(title)-3, 0)
	out := make([]string, 0, h)
	out = append(out, edge(b.TopLeft+b.Top)+" "+s.paneTitle.Render(title)+" "+edge(strings.Repeat(b.Top, topFill)+b.TopRight))
	lines := strings.Split(content, "\n")
	for i := 0; i < h-2; i++ {
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		out = append(out, edge(b.Left)+fit(l, inner, s.g.ellipsis)+edge(b.Right))
	}
	out = append(out, edge(b.BottomLeft+strings.Repeat(b.Bottom, inner)+b.BottomRight))
	return out
}

func (m *model) header() string {
	s := m.st
	src, tgt := m.rb.Hosts["source"].Address, ""
	if h, ok := m.rb.Hosts["target"]; ok {
		tgt = h.Address
	} else {
		for _, n := range sortedHosts(m.rb) {
			if n != "source" {
				tgt = m.rb.Hosts[n].Address
				break
			}
		}
	}
	if src == "" {
		src = "local"
	}
	route := strings.TrimPrefix(src, "ssh://")
	if tgt != "" {
		route += " " + s.g.arrow + " " + strings.TrimPrefix(tgt, "ssh://")
	}
	settled := 0
	for _, st := range m.list.steps {
		if m.states[st.ID].Status.Settled() {
			settled++
		}
	}
	right := fmt.Sprintf("%d/%d settled  elapsed %s ", settled, len(m.list.steps), fmtClock(m.opts.now().Sub(m.started)))
	left := " " + s.header.Render("decant") + "  " + s.headerName.Render(m.rb.Name) + "  " + s.dim.Render(route)
	room := m.width - ansi.StringWidth(right)
	if room < 20 {
		return fit(left, m.width, s.g.ellipsis)
	}
	return fit(left, room, s.g.ellipsis) + s.dim.Render(right)
}

func sortedHosts(rb *runbook.Runbook) []string {
	var out []string
	for n := range rb.Hosts {
		out = append(out, n)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (m *model) logTitle() string {
	id := m.logs.step
	if id == "" {
		return "Log"
	}
	s := m.states[id]
	t := fmt.Sprintf("%s: %s", id, s.Status)
	if s.Attempts > 1 {
		t += fmt.Sprintf(" (attempt %d)", s.Attempts)
	}
	if from, to, total, tail := m.logs.position(); total > 0 {
		t += fmt.Sprintf("  %d-%d/%d", from, to, total)
		if !tail {
			t += " scrolled (G follows)"
		}
	}
	if m.logs.query != "" {
		t += fmt.Sprintf("  /%s: %d lines", m.logs.query, m.logs.matches)
	}
	return t
}

// logContent is the log, or for a step with no output yet, what it is and
// how to run it: a newcomer reads the screen, not the manual.
func (m *model) logContent() string {
	if len(m.logs.lines) > 0 {
		return m.logs.view()
	}
	st := m.step(m.logs.step)
	if st == nil {
		return ""
	}
	s := m.st
	what := fmt.Sprintf("%s %s", st.Type, st.Kind)
	if st.Type == runbook.TypeShell {
		what = "shell step on " + st.Host
	}
	out := []string{s.bold.Render(st.ID) + s.dim.Render(fmt.Sprintf("  (%s, phase %s)", what, st.Phase))}
	if st.Title != "" {
		out = append(out, st.Title)
	}
	out = append(out, "")
	switch st.Type {
	case runbook.TypeCheck:
		out = append(out, "A read-only check: it changes nothing and can run any number of times.",
			"enter runs it; c runs every check of this phase together.")
	case runbook.TypeShell:
		out = append(out, "Runs on "+st.Host+":", "  "+firstLine(strings.TrimSpace(st.Run)))
		if st.Undo != "" {
			out = append(out, "Undo runs:", "  "+firstLine(strings.TrimSpace(st.Undo)))
		} else {
			out = append(out, "It has no undo command: undo it by hand if needed.")
		}
		out = append(out, "", "p shows its plan; enter runs it.")
	default:
		out = append(out, "An action: it changes things, records what it changed, and can be undone (u).",
			"p shows its plan (a dry run); enter runs it.")
	}
	if st.ConfirmText != "" {
		out = append(out, "", "It asks you to type "+st.ConfirmText+" before it runs.")
	} else if st.Confirm {
		out = append(out, "", "It asks for confirmation, with its plan on screen, before it runs.")
	}
	return ansi.Wrap(strings.Join(out, "\n"), max(m.logs.width, 10), " /")
}

// statusLine shows the search box, or the running step's progress and
// the latest message.
func (m *model) statusLine() string {
	s := m.st
	if m.searching {
		return fit(" "+m.search.View(), m.width, "")
	}
	var parts []string
	if id := m.currentStep(); id != "" {
		parts = append(parts, m.progressText(id))
	}
	if m.msg != "" {
		st := s.info
		if m.msgErr {
			st = s.errMsg
		}
		parts = append(parts, st.Render(m.msg))
	}
	return fit(" "+strings.Join(parts, s.dim.Render(" | ")), m.width, s.g.ellipsis)
}

// currentStep is the running step the status bar follows: the selected
// one if it runs, else the first running one.
func (m *model) currentStep() string {
	running := m.runningSteps()
	if len(running) == 0 {
		return ""
	}
	if sel := m.list.selected(); sel != nil {
		for _, id := range running {
			if id == sel.ID {
				return id
			}
		}
	}
	return running[0]
}

func (m *model) progressText(id string) string {
	s := m.st
	ss := m.states[id]
	mark := s.mark(runbook.StatusRunning, m.frame)
	text := mark + " " + id
	if ss.Status == runbook.StatusUndoing {
		text += " undoing"
	}
	if d := stepDuration(ss, m.opts.now()); d != "" && !ss.Started.IsZero() && ss.Status == runbook.StatusRunning {
		text += " " + d
	}
	p, ok := m.progress[id]
	if !ok {
		return text
	}
	if p.total > 0 {
		text += " " + m.bar.ViewAs(min(max(float64(p.done)/float64(p.total), 0), 1))
	}
	text += " " + plain.FormatProgress(p.done, p.total, p.unit)
	if eta, ok := p.eta(); ok {
		text += " ETA " + fmtClock(eta)
	}
	return text
}

// eta extrapolates the rate seen since the first report.
func (p progressInfo) eta() (time.Duration, bool) {
	if p.total <= 0 || p.done >= p.total {
		return 0, false
	}
	el := p.last.Sub(p.first)
	did := p.done - p.firstDone
	if el < time.Second || did <= 0 {
		return 0, false
	}
	rate := float64(did) / el.Seconds()
	return time.Duration(float64(p.total-p.done) / rate * float64(time.Second)), true
}

// hints lists the keys that make sense for the selected step.
func (m *model) hints() string {
	k := m.keys
	s := m.st
	var bs []key.Binding
	switch {
	case len(m.dialogs) > 0:
		return fit(" "+s.keyDesc.Render("answer the form above; esc cancels"), m.width, s.g.ellipsis)
	case m.showHelp:
		return fit(" "+s.keyDesc.Render("? or esc closes the help"), m.width, s.g.ellipsis)
	case m.planV != nil:
		return fit(" "+s.key.Render("enter")+" "+s.keyDesc.Render("run with this plan")+"  "+
			s.key.Render("esc")+" "+s.keyDesc.Render("back to the log"), m.width, s.g.ellipsis)
	}
	if st := m.list.selected(); st != nil {
		ss := m.states[st.ID].Status
		running := ss == runbook.StatusRunning || ss == runbook.StatusUndoing || m.busy[st.ID] != ""
		switch {
		case running:
			bs = append(bs, k.Stop)
		case st.Type == runbook.TypeCheck:
			bs = append(bs, k.Run, k.Phase)
			if ss == runbook.StatusFailed {
				bs = append(bs, k.Waive)
			}
		case ss == runbook.StatusFailed || ss == runbook.StatusInterrupted:
			bs = append(bs, k.Retry, k.Undo, k.Skip)
		case ss == runbook.StatusDone:
			bs = append(bs, k.Undo, k.Retry)
		default:
			bs = append(bs, k.Run, k.Plan, k.Skip)
		}
	}
	bs = append(bs, k.Next, k.Failure, k.Search, k.Note, k.Focus)
	tail := s.key.Render("?") + " " + s.keyDesc.Render("help") + "  " + s.key.Render("q") + " " + s.keyDesc.Render("quit")
	room := m.width - ansi.StringWidth(tail) - 1
	out := ""
	for _, b := range bs {
		h := b.Help()
		item := s.key.Render(h.Key) + " " + s.keyDesc.Render(shortDesc(h.Key)) + "  "
		if ansi.StringWidth(out)+ansi.StringWidth(item) > room {
			break
		}
		out += item
	}
	return fit(" "+out+tail, m.width, s.g.ellipsis)
}

// shortDesc is the hint-line word for a key.
func shortDesc(k string) string {
	switch k {
	case "enter":
		return "run"
	case "n":
		return "next"
	case "p":
		return "plan"
	case "r":
		return "retry"
	case "u":
		return "undo"
	case "s":
		return "skip"
	case "w":
		return "waive"
	case "x":
		return "stop"
	case "c":
		return "phase checks"
	case "f":
		return "first failure"
	case "/":
		return "search"
	case "a":
		return "note"
	case "tab":
		return "log/list"
	}
	return k
}

// helpView lists every key and the meaning of each mark, in two columns
// so that it fits 80x24.
func (m *model) helpView() string {
	s := m.st
	groups := m.keys.helpGroups()
	colW := max((m.width-4)/2, 20)
	col := func(title string, g []key.Binding) []string {
		out := []string{s.bold.Render(title)}
		for _, b := range g {
			h := b.Help()
			out = append(out, fit(" "+fit(s.key.Render(h.Key), 8, "")+" "+h.Desc, colW, s.g.ellipsis))
		}
		return out
	}
	left, right := col("Steps", groups[0]), col("Moving around", groups[1])
	var out []string
	for i := 0; i < max(len(left), len(right)); i++ {
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out = append(out, fit(l, colW, "")+r)
	}
	mk := func(st runbook.StepStatus, name string) string { return s.mark(st, 0) + " " + name + "  " }
	out = append(out, "", s.bold.Render("Marks"),
		" "+mk(runbook.StatusPending, "pending")+mk(runbook.StatusRunning, "running")+
			mk(runbook.StatusPassed, "passed/done")+mk(runbook.StatusWarned, "warned")+mk(runbook.StatusFailed, "failed"),
		" "+mk(runbook.StatusSkipped, "skipped")+mk(runbook.StatusUndone, "undone")+
			mk(runbook.StatusInterrupted, "interrupted")+mk(runbook.StatusWaived, "waived"),
		"",
		"Every event is journaled as it happens: quitting loses nothing and the next",
		"start resumes. Dangerous steps show their plan and ask before they run.")
	return strings.Join(out, "\n")
}
