package tui

import (
	"charm.land/lipgloss/v2"

	"github.com/decant-sh/decant/runbook"
)

// glyphs are the one-cell status marks of the checklist. The Unicode set
// avoids East Asian "ambiguous width" characters so that screen and tmux
// in any locale agree with us on column counts; the ASCII set is for
// terminals without UTF-8. Each mark differs in shape, not only in colour,
// so the list reads the same with NO_COLOR.
type glyphs struct {
	pending, passed, done, warned, failed, skipped, undone, interrupted, waived string
	spinner                                                                     []string
	cursor                                                                      string
	arrow                                                                       string
	ellipsis                                                                    string
	barFull, barEmpty                                                           string
}

var unicodeGlyphs = glyphs{
	pending: "◦", passed: "✓", done: "✓", warned: "!", failed: "✗", skipped: "↷",
	undone: "↶", interrupted: "↯", waived: "~",
	spinner: []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"},
	cursor:  "›", arrow: "→", ellipsis: "…", barFull: "█", barEmpty: "░",
}

var asciiGlyphs = glyphs{
	pending: ".", passed: "+", done: "+", warned: "!", failed: "x", skipped: ">",
	undone: "<", interrupted: "#", waived: "~",
	spinner: []string{"|", "/", "-", "\\"},
	cursor:  ">", arrow: "->", ellipsis: "~", barFull: "#", barEmpty: "-",
}

// styles are built once per background (tea.BackgroundColorMsg) and shared
// by every pane. Colours are the 16 ANSI ones plus a grey from the 256
// palette, which screen's 256-colour mode renders faithfully; emphasis that
// must survive NO_COLOR uses bold and reverse, never colour alone.
type styles struct {
	g glyphs

	header, headerName, dim, bold, phase, selected, selectedBlur lipgloss.Style
	pass, warn, fail, running, skipped, undone, interrupted      lipgloss.Style
	pane, paneFocus                                              lipgloss.Style
	paneTitle                                                    lipgloss.Style
	key, keyDesc                                                 lipgloss.Style
	info, errMsg                                                 lipgloss.Style
	logTime, logEvent, logFail, logWarn, logPass, logDropped     lipgloss.Style
	match, matchCurrent                                          lipgloss.Style
	barFull, barEmpty                                            lipgloss.Style
	dialogTitle                                                  lipgloss.Style
}

func newStyles(isDark, ascii bool) *styles {
	ld := lipgloss.LightDark(isDark)
	grey := ld(lipgloss.Color("244"), lipgloss.Color("245"))
	red, green, yellow := lipgloss.Color("1"), lipgloss.Color("2"), lipgloss.Color("3")
	blue, magenta, cyan := lipgloss.Color("4"), lipgloss.Color("5"), lipgloss.Color("6")
	s := &styles{g: unicodeGlyphs}
	border := lipgloss.RoundedBorder()
	if ascii {
		s.g = asciiGlyphs
		border = lipgloss.ASCIIBorder()
	}
	base := lipgloss.NewStyle()
	s.header = base.Bold(true)
	s.headerName = base.Bold(true).Foreground(cyan)
	s.dim = base.Foreground(grey)
	s.bold = base.Bold(true)
	s.phase = base.Bold(true).Underline(true)
	s.selected = base.Reverse(true)
	s.selectedBlur = base.Bold(true)
	s.pass = base.Foreground(green)
	s.warn = base.Foreground(yellow).Bold(true)
	s.fail = base.Foreground(red).Bold(true)
	s.running = base.Foreground(cyan)
	s.skipped = base.Foreground(grey)
	s.undone = base.Foreground(magenta)
	s.interrupted = base.Foreground(red)
	s.pane = base.Border(border).BorderForeground(grey)
	s.paneFocus = base.Border(border).BorderForeground(blue)
	s.paneTitle = base.Bold(true)
	s.key = base.Bold(true)
	s.keyDesc = base.Foreground(grey)
	s.info = base.Foreground(cyan)
	s.errMsg = base.Foreground(red).Bold(true)
	s.logTime = base.Foreground(grey)
	s.logEvent = base.Bold(true)
	s.logFail = base.Foreground(red).Bold(true)
	s.logWarn = base.Foreground(yellow)
	s.logPass = base.Foreground(green)
	s.logDropped = base.Foreground(grey).Italic(true)
	s.match = base.Reverse(true)
	s.matchCurrent = base.Reverse(true).Bold(true).Underline(true)
	s.barFull = base.Foreground(cyan)
	s.barEmpty = base.Foreground(grey)
	s.dialogTitle = base.Bold(true).Reverse(true).Padding(0, 1)
	return s
}

// mark returns the styled status glyph of a step; frame animates running
// and undoing steps.
func (s *styles) mark(st runbook.StepStatus, frame int) string {
	switch st {
	case runbook.StatusRunning, runbook.StatusUndoing:
		return s.running.Render(s.g.spinner[frame%len(s.g.spinner)])
	case runbook.StatusPassed:
		return s.pass.Render(s.g.passed)
	case runbook.StatusDone:
		return s.pass.Render(s.g.done)
	case runbook.StatusWarned:
		return s.warn.Render(s.g.warned)
	case runbook.StatusFailed:
		return s.fail.Render(s.g.failed)
	case runbook.StatusSkipped:
		return s.skipped.Render(s.g.skipped)
	case runbook.StatusUndone:
		return s.undone.Render(s.g.undone)
	case runbook.StatusInterrupted:
		return s.interrupted.Render(s.g.interrupted)
	case runbook.StatusWaived:
		return s.warn.Render(s.g.waived)
	}
	return s.dim.Render(s.g.pending)
}
