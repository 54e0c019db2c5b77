package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/decant-sh/decant/runbook"
)

func TestMain(m *testing.M) {
	// The flood benchmark runs this test binary as the noisy action.
	if spec := os.Getenv("DECANT_TUI_FLOOD"); spec != "" {
		os.Exit(floodMain(spec))
	}
	os.Exit(m.Run())
}

// t0 is the fixed clock of the golden screens.
var t0 = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// screenModel wraps the root model to keep the last frame as plain text,
// so tests wait on what the operator would see (not on the renderer's
// escape stream, which only carries differences).
type screenModel struct {
	m      *model
	mu     sync.Mutex
	screen string
	stable bool // no log flush pending and no engine call in flight
}

func (s *screenModel) Init() tea.Cmd { return s.m.Init() }

func (s *screenModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := s.m.Update(msg)
	return s, cmd
}

func (s *screenModel) View() tea.View {
	v := s.m.View()
	plain := ansi.Strip(v.Content)
	stable := !s.m.flushPending && !s.m.logs.dirty && len(s.m.busy) == 0
	s.mu.Lock()
	s.screen, s.stable = plain, stable
	s.mu.Unlock()
	return v
}

func (s *screenModel) Screen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.screen
}

// harness runs the real UI (teatest's program) over a real engine and
// journal, with local shell steps: no lab needed.
type harness struct {
	t      *testing.T
	dir    string // $TUITEST: where steps write their files
	rbPath string
	e      *runbook.Engine
	a      *app
	sm     *screenModel
	tm     *teatest.TestModel
	cancel context.CancelFunc
	closed bool
}

const testHeader = `name: small migration
hosts:
  source: {address: local}
phases:
`

// writeRunbook writes a runbook with the given phases; steps find their
// scratch directory in $TUITEST, so the screens do not depend on it.
func writeRunbook(t *testing.T, phases string) (rbPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("TUITEST", dir)
	rbPath = filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(rbPath, []byte(testHeader+phases), 0o600); err != nil {
		t.Fatal(err)
	}
	return rbPath, dir
}

func startUI(t *testing.T, rbPath, dir string, w, h int, tweak ...func(*Options)) *harness {
	t.Helper()
	rb, err := runbook.Load(rbPath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := runbook.Open(rb, runbook.Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := e.Env.Conn.(*runbook.Connector)
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{Now: fixedNow, Static: true, Glyphs: "unicode", UTC: true}
	for _, f := range tweak {
		f(&opts)
	}
	a := newApp(ctx, e, conn, opts)
	sm := &screenModel{m: a.model}
	tm := teatest.NewTestModel(t, sm, teatest.WithInitialTermSize(w, h))
	a.start(tm.Send)
	hs := &harness{t: t, dir: dir, rbPath: rbPath, e: e, a: a, sm: sm, tm: tm, cancel: cancel}
	t.Cleanup(hs.close)
	return hs
}

// close quits the program, lets running steps record their end and
// closes the engine (as tui.Run and runTUI do).
func (h *harness) close() {
	if h.closed {
		return
	}
	h.closed = true
	_ = h.tm.Quit()
	h.tm.WaitFinished(h.t, teatest.WithFinalTimeout(10*time.Second))
	h.a.stop(h.cancel, 10*time.Second)
	if err := h.e.Close(); err != nil {
		h.t.Errorf("engine close: %v", err)
	}
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	}
	if c, ok := strings.CutPrefix(k, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: rune(c[0]), Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

func (h *harness) keys(ks ...string) {
	for _, k := range ks {
		h.tm.Send(keyMsg(k))
	}
}

func (h *harness) typeText(s string) { h.tm.Type(s) }

// waitFor polls the screen until cond holds (the box is slow and shared:
// a generous deadline, no fixed sleeps).
func (h *harness) waitFor(what string, cond func(screen string) bool) string {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := h.sm.Screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitText waits until every string is on screen.
func (h *harness) waitText(subs ...string) string {
	h.t.Helper()
	return h.waitFor(strings.Join(subs, " + "), func(s string) bool {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	})
}

// golden compares the screen, once stable, with
// testdata/<test>/<name>.golden.
func (h *harness) golden(name string) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.sm.mu.Lock()
		ok := h.sm.stable
		h.sm.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("screen never settled:\n%s", h.sm.Screen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	screen := h.sm.Screen()
	h.t.Run(name, func(t *testing.T) { golden.RequireEqual(t, screen) })
}

// listLine returns the checklist row of a step label.
func listLine(screen, label string) string {
	for _, l := range strings.Split(screen, "\n") {
		if i := strings.Index(l, "│"); i >= 0 {
			left := l[i:]
			if j := strings.Index(left[len("│"):], "│"); j >= 0 {
				left = left[:j+len("│")]
			}
			if strings.Contains(left, " "+label+" ") {
				return left
			}
		}
	}
	return ""
}

// hasMark reports whether the checklist row of label shows mark.
func hasMark(screen, label, mark string) bool {
	return strings.Contains(listLine(screen, label), mark+" "+label)
}
