package tui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/runbook"
)

const smallRun = `  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: source, tools: [sh]}
  - name: prepare
    steps:
      - id: marker
        title: write the marker file
        shell: source
        run: echo "writing the marker"; touch "$TUITEST/marker"
        undo: rm "$TUITEST/marker"
      - id: greet
        shell: source
        run: echo hello from the source
`

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// A newcomer presses n three times: the check, then each action, with the
// log of each on screen; the run ends with every step settled.
func TestFullRun(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 100, 30)
	h.waitText("Next: preflight/ssh.reachable. Press n to run it")
	h.golden("start")

	h.keys("n")
	h.waitFor("check passed", func(s string) bool {
		return hasMark(s, "ssh.reachable", "✓") && strings.Contains(s, "preflight/ssh.reachable finished")
	})
	h.keys("n")
	h.waitFor("marker done", func(s string) bool {
		return hasMark(s, "write the marker file", "✓") && strings.Contains(s, "marker finished")
	})
	h.keys("n")
	h.waitFor("greet done", func(s string) bool {
		return hasMark(s, "greet", "✓") && strings.Contains(s, "greet finished. All steps are settled") &&
			strings.Contains(s, "09:30:00 hello from the source") && strings.Contains(s, "09:30:00 done")
	})
	h.golden("end")
	if !exists(filepath.Join(dir, "marker")) {
		t.Error("the marker step did not run")
	}
	for _, id := range []string{"preflight/ssh.reachable", "marker", "greet"} {
		if s := h.e.State(id).Status; !s.Settled() {
			t.Errorf("%s: journal says %s", id, s)
		}
	}
}

// A step fails (its error and output on screen), f finds it, the operator
// fixes the cause and retries it with r.
func TestFailureThenRetry(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: prepare
    steps:
      - id: flaky
        title: needs the ok file
        shell: source
        run: test -f "$TUITEST/ok" || { echo "not there yet" >&2; exit 1; }; echo "found ok"
        undo: "true"
      - id: after
        shell: source
        run: echo after
`)
	h := startUI(t, rb, dir, 100, 30)
	h.waitText("Next: flaky")
	h.keys("n")
	h.waitFor("failure", func(s string) bool {
		return hasMark(s, "needs the ok file", "✗") && strings.Contains(s, "stderr: not there yet") &&
			strings.Contains(s, "09:30:00 FAILED:") && strings.Contains(s, "flaky: source:")
	})
	h.golden("failed")

	h.keys("down")
	h.waitFor("after selected", func(s string) bool { return strings.Contains(listLine(s, "after"), "›") })
	h.keys("f")
	h.waitFor("back on the failure", func(s string) bool {
		return strings.Contains(listLine(s, "needs the ok file"), "›") && strings.Contains(s, "flaky failed: read its log")
	})

	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.keys("r")
	h.waitFor("retried", func(s string) bool {
		return hasMark(s, "needs the ok file", "✓") && strings.Contains(s, "flaky: done (attempt 2)") &&
			strings.Contains(s, "flaky finished") && strings.Contains(s, "09:30:00 found ok") && strings.Contains(s, "09:30:00 done")
	})
	h.golden("retried")
	if st := h.e.State("flaky"); st.Status != runbook.StatusDone || st.Attempts != 2 {
		t.Errorf("journal: %s after %d attempts", st.Status, st.Attempts)
	}
}

// Undo shows the journal's record of the step first, then reverts it.
func TestUndo(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("down")
	h.waitFor("marker selected", func(s string) bool { return strings.Contains(listLine(s, "write the marker file"), "›") })
	h.keys("enter")
	h.waitFor("marker done", func(s string) bool {
		return hasMark(s, "write the marker file", "✓") && strings.Contains(s, "marker finished")
	})
	if !exists(filepath.Join(dir, "marker")) {
		t.Fatal("marker not written")
	}
	h.keys("u")
	h.waitText("Undo it now?", `"undo": "rm \"$TUITEST/marker\""`)
	h.golden("record")
	h.keys("y")
	h.waitFor("undone", func(s string) bool {
		return hasMark(s, "write the marker file", "↶") && strings.Contains(s, "marker undone.") &&
			strings.Contains(s, "09:30:00 undone")
	})
	h.golden("undone")
	if exists(filepath.Join(dir, "marker")) {
		t.Error("undo did not remove the marker")
	}
	if st := h.e.State("marker").Status; st != runbook.StatusUndone {
		t.Errorf("journal says %s", st)
	}
}

// interruptJournal leaves the journal as a process killed in the middle of
// the marker step leaves it: started, checkpointed, never finished.
func interruptJournal(t *testing.T, rbPath, dir string) {
	t.Helper()
	j, _, err := runbook.OpenJournal(rbPath)
	if err != nil {
		t.Fatal(err)
	}
	receipt, _ := json.Marshal(actions.ShellReceipt{Host: "source",
		Command: `echo "writing the marker"; touch "$TUITEST/marker"`, Undo: `rm "$TUITEST/marker"`})
	for _, ev := range []runbook.Event{
		{Time: t0, Type: runbook.EvRunStarted, Message: "small migration", Session: "earlier"},
		{Time: t0, Type: runbook.EvStarted, Step: "marker", Kind: "shell", Attempt: 1, Session: "earlier"},
		{Time: t0, Type: runbook.EvCheckpoint, Step: "marker", Kind: "shell", Receipt: receipt, Session: "earlier"},
		{Time: t0, Type: runbook.EvLog, Step: "marker", Message: "writing the marker", Session: "earlier"},
	} {
		if err := j.Append(&ev, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A step a dead process left running is offered for retry, undo or mark
// done at start-up, with the journal's record; undo reverts it.
func TestResumeInterrupted(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	interruptJournal(t, rb, dir)
	h := startUI(t, rb, dir, 100, 30)
	h.waitText("Interrupted: marker", "What now?", "Undo it (revert what it recorded)", `"undo": "rm \"$TUITEST/marker\""`)
	h.golden("question")
	h.keys("down", "enter")
	h.waitFor("undone", func(s string) bool {
		return hasMark(s, "write the marker file", "↶") && strings.Contains(s, "marker undone.") &&
			strings.Contains(s, "09:30:00 undone") &&
			strings.Contains(s, "09:30:00 writing the marker") // the earlier session's log
	})
	h.golden("undone")
	if exists(filepath.Join(dir, "marker")) {
		t.Error("undo did not remove the marker")
	}
}

// Mark done settles an interrupted step without running anything.
func TestResumeMarkDone(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	interruptJournal(t, rb, dir)
	h := startUI(t, rb, dir, 100, 30)
	h.waitText("What now?")
	h.keys("down", "down", "enter")
	h.waitFor("marked done", func(s string) bool {
		return hasMark(s, "write the marker file", "✓") && strings.Contains(s, "marker marked done")
	})
	if st := h.e.State("marker"); st.Status != runbook.StatusDone || st.Reason == "" {
		t.Errorf("journal: %+v", st)
	}
}

func TestHelpView(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 80, 24)
	h.waitText("Next: preflight")
	h.keys("?")
	h.waitText("Help: keys and marks", "undo it (record shown first)", "↯ interrupted")
	h.golden("help")
	h.keys("esc")
	h.waitText("Checklist")
}

// The smallest supported terminal, then resizes: every frame is exactly
// the window, line for line and cell for cell.
func TestRender80x24(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 80, 24)
	h.waitText("Next: preflight")
	h.golden("initial")
	for _, sz := range [][2]int{{100, 30}, {132, 43}, {200, 60}, {80, 24}} {
		w, hh := sz[0], sz[1]
		h.tm.Send(tea.WindowSizeMsg{Width: w, Height: hh})
		h.waitFor(fmt.Sprintf("%dx%d frame", w, hh), func(s string) bool {
			lines := strings.Split(s, "\n")
			if len(lines) != hh {
				return false
			}
			for _, l := range lines {
				if ansi.StringWidth(l) != w {
					return false
				}
			}
			return true
		})
	}
	// Below the supported size it stays inside the window, if cramped.
	for _, sz := range [][2]int{{60, 20}, {40, 12}, {20, 6}, {80, 24}} {
		w, hh := sz[0], sz[1]
		h.tm.Send(tea.WindowSizeMsg{Width: w, Height: hh})
		h.waitFor(fmt.Sprintf("%dx%d frame", w, hh), func(s string) bool {
			lines := strings.Split(s, "\n")
			if len(lines) != hh {
				return false
			}
			for _, l := range lines {
				if ansi.StringWidth(l) > w {
					return false
				}
			}
			return true
		})
	}
	h.keys("u") // a message longer than the status line
	h.waitText("it changed nothing")
	h.golden("after-resize")
}

// Without UTF-8 the same screen is drawn in ASCII.
func TestRenderASCII(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 80, 24, func(o *Options) { o.Glyphs = "ascii" })
	h.keys("n")
	h.waitFor("check passed", func(s string) bool {
		return hasMarkASCII(s, "ssh.reachable", "+") && strings.Contains(s, "tools present: sh") &&
			strings.Contains(s, "finished. Next: marker")
	})
	h.golden("ascii")
	for _, r := range h.sm.Screen() {
		if r > 0x7e {
			t.Fatalf("non-ASCII %q on an ASCII screen", r)
		}
	}
}

func hasMarkASCII(screen, label, mark string) bool {
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, mark+" "+label+" ") {
			return true
		}
	}
	return false
}

// Skip asks for a reason; a note goes to the journal; / finds a line.
func TestSkipNoteSearch(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun+`      - id: chatty
        shell: source
        run: for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do echo "line $i"; done; echo needle here; echo "the end"
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("down", "down", "down")
	h.waitFor("chatty selected", func(s string) bool { return strings.Contains(listLine(s, "chatty"), "›") })
	h.keys("enter")
	h.waitText("chatty finished", "the end")
	h.keys("/")
	h.typeText("needle")
	h.keys("enter")
	h.waitText("/needle: 3 lines") // the plan shows the command too

	h.keys("up")
	h.waitFor("greet selected", func(s string) bool { return strings.Contains(listLine(s, "greet"), "›") })
	h.keys("s")
	h.waitText("Why skip it?")
	h.keys("enter") // empty: refused
	h.waitText("please write something")
	h.typeText("done by hand")
	h.keys("enter")
	h.waitFor("skipped", func(s string) bool { return hasMark(s, "greet", "↷") && strings.Contains(s, "skipped: done by hand") })

	h.keys("a")
	h.waitText("Note")
	h.typeText("called the customer")
	h.keys("enter")
	h.waitText("Note added to the journal", "note: called the customer")
	h.close()
	evs, err := runbook.ReadJournal(rb)
	if err != nil {
		t.Fatal(err)
	}
	var skip, note bool
	for _, ev := range evs {
		skip = skip || ev.Type == runbook.EvSkipped && ev.Step == "greet" && ev.Message == "done by hand"
		note = note || ev.Type == runbook.EvNote && ev.Step == "greet" && ev.Message == "called the customer"
	}
	if !skip || !note {
		t.Errorf("journal lacks the skip (%v) or the note (%v)", skip, note)
	}
}

// A step with confirm_text runs only after the exact text is typed, with
// its plan on screen.
func TestTypedConfirmation(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: cutover
    steps:
      - id: switch
        shell: source
        run: echo switched > "$TUITEST/switched"
        undo: rm "$TUITEST/switched"
        confirm_text: shop.example.org
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitText("Confirm: switch", "Type shop.example.org to go on", "plan: run on source: echo switched")
	h.typeText("shop.example.com")
	h.keys("enter")
	h.waitText("type exactly shop.example.org")
	if exists(filepath.Join(dir, "switched")) {
		t.Fatal("ran without the right confirmation")
	}
	for range "shop.example.com" {
		h.tm.Send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	h.typeText("shop.example.org")
	h.keys("enter")
	h.waitFor("switched", func(s string) bool { return hasMark(s, "switch", "✓") })
	if !exists(filepath.Join(dir, "switched")) {
		t.Error("step did not run after the typed confirmation")
	}
}

// A phase's checks run together; the phase shows a summary; a failing
// check blocks the phase's action until waived.
func TestPhaseChecksAndWaive(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: preflight
    steps:
      - id: has-sh
        check: ssh.reachable
        with: {host: source, tools: [sh]}
      - id: has-frobnicate
        check: ssh.reachable
        with: {host: source, tools: [sh, frobnicate-xyz]}
      - id: has-cat
        check: ssh.reachable
        with: {host: source, tools: [cat]}
      - id: act
        shell: source
        run: echo acting
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("c")
	h.waitText("preflight checks: 2 passed, 0 warned, 1 failed", "✓2 !0 ✗1", "PASS source: tools present: sh")
	h.golden("summary")
	h.keys("down", "down", "down")
	h.waitFor("act selected", func(s string) bool { return strings.Contains(listLine(s, "act"), "›") })
	h.keys("enter")
	h.waitText("act waits: check has-frobnicate failed")
	h.keys("f")
	h.waitFor("failure selected", func(s string) bool { return strings.Contains(listLine(s, "has-frobnicate"), "›") })
	h.keys("w")
	h.typeText("installed by hand later")
	h.keys("enter")
	h.waitFor("waived", func(s string) bool { return hasMark(s, "has-frobnicate", "~") })
	h.keys("n")
	h.waitFor("act done", func(s string) bool { return hasMark(s, "act", "✓") })
}

// The host key question comes from an engine goroutine; the UI answers
// it through a channel, and a quit answers no.
func TestHostKeyPrompt(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 100, 30)
	hk := &hosts.HostKeyError{Host: "[127.0.0.1]:2222", KeyType: "ssh-ed25519",
		Fingerprint: "SHA256:7wIqkS0yQ0bq1tC2wq5Tt0d8jGm4q2f0Yx1n3m5p7r9", KnownHosts: "/root/.ssh/known_hosts", Unknown: true}
	answer := make(chan bool)
	go func() { answer <- h.a.hostKeyPrompt(hk) }()
	h.waitText("Unknown host key: [127.0.0.1]:2222", "SHA256:7wIqkS0yQ0bq1tC2wq5Tt0d8jGm4q2f0Yx1n3m5p7r9", "Trust this key?")
	h.golden("question")
	h.keys("y")
	if !<-answer {
		t.Error("accepted key reported as rejected")
	}
	h.waitFor("dialog closed", func(s string) bool { return !strings.Contains(s, "Trust this key?") })
	go func() { answer <- h.a.hostKeyPrompt(hk) }()
	h.waitText("Trust this key?")
	h.keys("n")
	if <-answer {
		t.Error("rejected key reported as accepted")
	}
	h.waitFor("dialog closed", func(s string) bool { return !strings.Contains(s, "Trust this key?") })
	go func() { answer <- h.a.hostKeyPrompt(hk) }()
	h.waitText("Trust this key?")
	h.close()
	if <-answer {
		t.Error("a question left open at quit must answer no")
	}
}

// Quitting while a step runs asks first, stops the step, and the journal
// records it as interrupted: the next start offers it again.
func TestQuitWhileRunning(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: prepare
    steps:
      - id: slow
        shell: source
        run: echo started; sleep 60
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitText("slow: running", "started")
	h.keys("q")
	h.waitText("Quit while a step runs?", "Running: slow")
	h.keys("y")
	h.close()
	if st := h.e.State("slow").Status; st != runbook.StatusInterrupted {
		t.Errorf("after quit the journal says %s", st)
	}
	h2 := startUI(t, rb, dir, 100, 30)
	h2.waitText("Interrupted: slow", "What now?")
}

// Every status has its own mark, so the list reads without colour.
func TestMarksDistinct(t *testing.T) {
	for _, ascii := range []bool{false, true} {
		s := newStyles(true, ascii)
		seen := map[string]runbook.StepStatus{}
		for _, st := range []runbook.StepStatus{runbook.StatusPending, runbook.StatusRunning, runbook.StatusPassed,
			runbook.StatusWarned, runbook.StatusFailed, runbook.StatusSkipped, runbook.StatusUndone,
			runbook.StatusInterrupted, runbook.StatusWaived} {
			m := ansi.Strip(s.mark(st, 0))
			if ansi.StringWidth(m) != 1 {
				t.Errorf("ascii=%v %s: mark %q is not one cell", ascii, st, m)
			}
			if o, dup := seen[m]; dup {
				t.Errorf("ascii=%v: %s and %s share the mark %q", ascii, st, o, m)
			}
			seen[m] = st
		}
	}
}

func TestCleanLine(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[31mred\x1b[0m text":      "red text",
		"10%\r50%\r100%":               "100%",
		"a\tb":                         "a    b",
		"bell\a and \x1b]0;title\x07x": "bell and x",
	} {
		if got := cleanLine(in); got != want {
			t.Errorf("cleanLine(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", 3*maxLineBytes)
	if got := cleanLine(long); len(got) > maxLineBytes+64 {
		t.Errorf("long line kept %d bytes", len(got))
	}
}

// A value the runbook leaves open (the TSIG key of a DNS action) is asked
// in a form, checked, and kept for the run.
func TestOpenValueTSIGKey(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: prepare
    steps:
      - id: ttl
        action: dns.set_ttl
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitText("A value the runbook leaves open", "TSIG key file")
	h.typeText(filepath.Join(dir, "missing.key"))
	h.keys("enter")
	h.waitText("TSIG key file: stat")

	key := filepath.Join(dir, "update.key")
	if err := os.WriteFile(key, []byte("update-key hmac-sha256 c2VjcmV0c2VjcmV0c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.keys("n")
	h.waitText("A value the runbook leaves open")
	h.typeText(key)
	h.keys("enter")
	// The key passed; the plan went on and stopped at the next open value.
	h.waitText("dns.zone is not set")
	if got := h.e.Env.DNS.TSIGKey; got != key {
		t.Errorf("engine TSIG key %q, want %q", got, key)
	}
}

// A step reporting bytes gets a bar, the amounts and an ETA from the rate
// seen so far. (Progress events as the bridge delivers them: shell steps
// do not report progress, copies do.)
func TestProgressAndETA(t *testing.T) {
	rb, dir := writeRunbook(t, smallRun)
	h := startUI(t, rb, dir, 100, 30)
	h.waitText("Next: preflight")
	const mib = int64(1 << 20)
	running := runbook.StepState{ID: "marker", Kind: "shell", Status: runbook.StatusRunning, Attempts: 1, Started: t0}
	prog := func(done int64, at time.Time) runbook.Event {
		return runbook.Event{Type: runbook.EvProgress, Step: "marker", Done: done, Total: 100 * mib, Unit: "bytes", Time: at}
	}
	h.tm.Send(&eventsMsg{states: map[string]runbook.StepState{"marker": running},
		progress: map[string]runbook.Event{"marker": prog(25*mib, t0)}})
	h.tm.Send(&eventsMsg{progress: map[string]runbook.Event{"marker": prog(50*mib, t0.Add(10*time.Second))}})
	h.waitText("⠋ marker 0.0s ██████████░░░░░░░░░░ 50.0 MiB / 100.0 MiB (50%) ETA 0:00:20")
	h.golden("progress")
}
