package tui

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

// dialogKind says what a dialog asks and so what its answer does.
type dialogKind int

const (
	dlgConfirmRun  dialogKind = iota // a dangerous step: yes/no with the plan shown
	dlgTyped                         // the cut-over: type the domain
	dlgUndo                          // undo, with the journal's record shown
	dlgSkip                          // a reason to skip
	dlgNote                          // an operator note
	dlgWaive                         // a reason to waive a failing check
	dlgInterrupted                   // retry / undo / mark done
	dlgHostKey                       // trust an unknown SSH host key
	dlgQuit                          // quit while steps run
	dlgStop                          // stop a running step
	dlgTSIG                          // a value the runbook left open
	dlgUndoAll                       // undo every recorded change, newest first
)

// hostKeyReq is a host key question from an engine goroutine; the answer
// goes back on reply (buffered, so Update never blocks on it).
type hostKeyReq struct {
	err   *hosts.HostKeyError
	reply chan bool
}

// dialog is a modal form (huh) over the body, with a scrollable text above
// it: the plan, the undo record, the host key. Values are bound to its own
// fields; the root model reads them when the form completes.
type dialog struct {
	kind  dialogKind
	step  string
	title string
	body  []string
	form  *huh.Form

	plan    *steps.Plan
	ids     []string // dlgUndoAll: the steps to undo, newest first
	hostKey hostKeyReq

	ok     bool
	text   string
	choice string

	offset int // body scroll
	width  int
	height int
}

func dialogKeyMap() *huh.KeyMap {
	km := huh.NewDefaultKeyMap()
	km.Quit = key.NewBinding(key.WithKeys("esc", "ctrl+c"), key.WithHelp("esc", "cancel"))
	return km
}

// dialogTheme is huh's Charm theme with buttons told apart by reverse
// video rather than by background colour alone, so that yes and no stay
// distinct with NO_COLOR.
func dialogTheme(isDark bool) *huh.Styles {
	t := huh.ThemeCharm(isDark)
	button := lipgloss.NewStyle().Padding(0, 2).MarginRight(1)
	t.Focused.FocusedButton = button.Reverse(true).Bold(true)
	t.Focused.BlurredButton = button
	t.Focused.Next = t.Focused.FocusedButton
	t.Blurred.FocusedButton = t.Focused.FocusedButton
	t.Blurred.BlurredButton = button
	return t
}

func newDialog(kind dialogKind, step, title string, body []string) *dialog {
	return &dialog{kind: kind, step: step, title: title, body: body}
}

// withForm attaches the form built from fields bound to d.
func (d *dialog) withForm(fields ...huh.Field) *dialog {
	d.form = huh.NewForm(huh.NewGroup(fields...)).
		WithKeyMap(dialogKeyMap()).
		WithShowHelp(true).
		WithTheme(huh.ThemeFunc(dialogTheme))
	return d
}

// confirmField asks yes or no.
func (d *dialog) confirmField(question, yes, no string) huh.Field {
	return huh.NewConfirm().Title(question).Affirmative(yes).Negative(no).Value(&d.ok)
}

// reasonField asks for a required line of text.
func (d *dialog) reasonField(title, placeholder string) huh.Field {
	return huh.NewInput().Title(title).Placeholder(placeholder).Value(&d.text).
		Validate(func(s string) error {
			if strings.TrimSpace(s) == "" {
				return errors.New("please write something (esc cancels)")
			}
			return nil
		})
}

// typedField asks for an exact text, the cut-over's domain.
func (d *dialog) typedField(want string) huh.Field {
	return huh.NewInput().Title(fmt.Sprintf("Type %s to go on (esc cancels)", want)).Value(&d.text).
		Validate(func(s string) error {
			if strings.TrimSpace(s) != want {
				return fmt.Errorf("type exactly %s", want)
			}
			return nil
		})
}

func (d *dialog) selectField(title string, opts ...huh.Option[string]) huh.Field {
	return huh.NewSelect[string]().Title(title).Options(opts...).Value(&d.choice)
}

func (d *dialog) init() tea.Cmd { return d.form.Init() }

// done reports whether the form was submitted or cancelled.
func (d *dialog) done() bool { return d.form.State != huh.StateNormal }

// submitted reports whether the form was completed (not cancelled).
func (d *dialog) submitted() bool { return d.form.State == huh.StateCompleted }

func (d *dialog) setSize(w, h int) {
	if d.width != w {
		d.form = d.form.WithWidth(max(w, 20))
	}
	d.width, d.height = w, h
}

// Update forwards to the form, except the keys that scroll the body.
func (d *dialog) Update(msg tea.Msg) (*dialog, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "pgup":
			d.offset = max(0, d.offset-max(1, d.bodyRoom()-1))
			return d, nil
		case "pgdown":
			d.offset = min(max(0, len(d.wrapped())-d.bodyRoom()), d.offset+max(1, d.bodyRoom()-1))
			return d, nil
		}
	}
	m, cmd := d.form.Update(msg)
	if f, ok := m.(*huh.Form); ok {
		d.form = f
	}
	return d, cmd
}

func (d *dialog) wrapped() []string {
	var out []string
	w := max(d.width, 10)
	for _, l := range d.body {
		out = append(out, strings.Split(ansi.Wrap(l, w, " /"), "\n")...)
	}
	return out
}

func (d *dialog) formView() string { return strings.TrimRight(d.form.View(), "\n") }

func (d *dialog) bodyRoom() int {
	return max(1, d.height-lineCount(d.formView())-2)
}

// View draws the body (scrolled) above the form, in width x height.
func (d *dialog) View(s *styles) string {
	form := d.formView()
	lines := d.wrapped()
	room := d.bodyRoom()
	var b []string
	if len(lines) > room {
		room-- // a line to say there is more
		off := min(d.offset, len(lines)-room)
		b = append(b, lines[off:off+room]...)
		b = append(b, s.dim.Render(fmt.Sprintf("lines %d-%d of %d: pgup/pgdown scroll", off+1, off+room, len(lines))))
	} else {
		b = append(b, lines...)
	}
	b = append(b, "")
	return strings.Join(b, "\n") + "\n" + form
}

func lineCount(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}
