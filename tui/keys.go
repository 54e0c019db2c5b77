package tui

import (
	"charm.land/bubbles/v2/key"
)

// keyMap is every key of the main screen; the help view (?) lists them
// all, the hint line the ones that apply to the selected step.
type keyMap struct {
	Up, Down, Top, Bottom, Focus  key.Binding
	Run, Next, Plan, Retry, Undo  key.Binding
	UndoAll                       key.Binding
	Skip, Note, Waive, Stop       key.Binding
	Phase, Failure, Follow        key.Binding
	Search, SearchNext, SearchPrv key.Binding
	PageUp, PageDown              key.Binding
	Help, Quit                    key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		Up:         b([]string{"up", "k"}, "↑/k", "select above / scroll up"),
		Down:       b([]string{"down", "j"}, "↓/j", "select below / scroll down"),
		Top:        b([]string{"home", "g"}, "g", "first step / top of log"),
		Bottom:     b([]string{"end", "G"}, "G", "last step / follow the log"),
		Focus:      b([]string{"tab"}, "tab", "arrows move list or log"),
		Run:        b([]string{"enter"}, "enter", "run the selected step"),
		Next:       b([]string{"n"}, "n", "run the next step"),
		Plan:       b([]string{"p"}, "p", "show its plan (dry run)"),
		Retry:      b([]string{"r"}, "r", "run it again (retry)"),
		Undo:       b([]string{"u"}, "u", "undo it (record shown first)"),
		UndoAll:    b([]string{"U"}, "U", "undo the whole run"),
		Skip:       b([]string{"s"}, "s", "skip it, with a reason"),
		Note:       b([]string{"a"}, "a", "add a note to the journal"),
		Waive:      b([]string{"w"}, "w", "waive a failed check"),
		Stop:       b([]string{"x"}, "x", "stop a step or a refresh"),
		Phase:      b([]string{"c"}, "c", "run the phase's checks"),
		Failure:    b([]string{"f"}, "f", "jump to the first failure"),
		Follow:     b([]string{"F"}, "F", "follow running steps on/off"),
		Search:     b([]string{"/"}, "/", "search the log"),
		SearchNext: b([]string{"ctrl+n"}, "ctrl+n/p", "next / previous match"),
		SearchPrv:  b([]string{"ctrl+p"}, "ctrl+p", "previous match"),
		PageUp:     b([]string{"pgup", "ctrl+u"}, "pgup/dn", "scroll the log"),
		PageDown:   b([]string{"pgdown", "ctrl+d"}, "pgdn", "scroll the log down"),
		Help:       b([]string{"?"}, "?", "this help"),
		Quit:       b([]string{"q", "ctrl+c"}, "q", "quit (nothing is lost)"),
	}
}

// helpGroups is the layout of the help view.
func (k keyMap) helpGroups() [][]key.Binding {
	return [][]key.Binding{
		{k.Run, k.Next, k.Plan, k.Retry, k.Undo, k.UndoAll, k.Skip, k.Waive, k.Stop, k.Phase, k.Note, k.Help},
		{k.Up, k.Down, k.Top, k.Bottom, k.Focus, k.PageUp, k.Failure, k.Follow, k.Search, k.SearchNext, k.Quit},
	}
}
