package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession drives the real binary in a detached tmux pane of 100x30,
// as an operator in screen or tmux over SSH would see it.
type tmuxSession struct {
	t    *testing.T
	tmux string
	sock string
	name string
	n    int
}

func newTmux(t *testing.T) *tmuxSession {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatalf("tmux is needed for the TUI end-to-end test (scripts/deps installs it): %v", err)
	}
	s := &tmuxSession{t: t, tmux: bin, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() { _ = exec.Command(s.tmux, "-S", s.sock, "kill-server").Run() })
	return s
}

func (s *tmuxSession) cmd(args ...string) string {
	s.t.Helper()
	c := exec.Command(s.tmux, append([]string{"-u", "-S", s.sock}, args...)...)
	c.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=")
	out, err := c.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs decant in a new session; the pane stays after decant exits
// and shows its exit code. An earlier session is closed only once the new
// one runs: tmux exits with its last session.
func (s *tmuxSession) start(dir string, args ...string) {
	s.t.Helper()
	line := fmt.Sprintf("cd '%s' && '%s' %s; echo EXIT=$?; sleep 600", dir, decant, strings.Join(args, " "))
	old := s.name
	s.n++
	s.name = fmt.Sprintf("decant%d", s.n)
	s.cmd("new-session", "-d", "-x", "100", "-y", "30", "-s", s.name, line)
	if s.n > 1 {
		s.cmd("kill-session", "-t", old)
	}
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	s.cmd(append([]string{"send-keys", "-t", s.name}, keys...)...)
}

func (s *tmuxSession) screen() string { return s.cmd("capture-pane", "-p", "-t", s.name) }

// wait polls the pane until every string is on it.
func (s *tmuxSession) wait(subs ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		scr := s.screen()
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(scr, sub)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %q; pane:\n%s", subs, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A newcomer's run by keys alone in tmux against the lab: trust the
// target's host key when asked, run the SSH check and a shell step on the
// target, undo it after reading the journal's record, quit, start again
// and find the state kept.
func TestTUIInTmux(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	knownHosts := filepath.Join(dir, "known_hosts") // empty: decant must ask
	rb, work := runbookFor(t, knownHosts, fmt.Sprintf(`  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target, tools: [sh, cat]}
  - name: prepare
    steps:
      - id: marker
        title: marker on the target
        shell: target
        run: echo created > %[1]s && echo wrote the marker
        undo: rm %[1]s
`, marker))
	s := newTmux(t)
	s.start(work, "run", rb)
	s.wait("Checklist", "Next: preflight/ssh.reachable. Press n to run it")

	s.keys("n")
	scr := s.wait("Unknown host key", "SHA256:", "Trust this key?")
	if !strings.Contains(scr, knownHosts) {
		t.Errorf("the question does not say where the key goes:\n%s", scr)
	}
	s.keys("y")
	s.wait("preflight/ssh.reachable finished", "tools present: sh, cat", "✓ ssh.reachable")
	if kh, _ := os.ReadFile(knownHosts); !strings.Contains(string(kh), "ssh-") {
		t.Errorf("trusted key not saved in known_hosts: %q", kh)
	}

	s.keys("n")
	s.wait("marker finished", "wrote the marker", "✓ marker on the target")
	if b, err := os.ReadFile(marker); err != nil || string(b) != "created\n" {
		t.Fatalf("the shell step did not run on the target: %q %v", b, err)
	}

	s.keys("u")
	s.wait("Undo: marker", "Undo it now?", `"undo": "rm `+marker)
	s.keys("y")
	s.wait("marker undone.", "↶ marker on the target")
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("undo left the marker: %v", err)
	}

	s.keys("q")
	s.wait("state saved in", "EXIT=0")

	s.start(work, "run", rb)
	scr = s.wait("Resumed from the journal: 1 of 2 steps settled", "✓ ssh.reachable", "↶ marker on the target", "marker: undone")
	if strings.Contains(scr, "Unknown host key") {
		t.Error("asked again for a key already trusted")
	}
	s.keys("q")
	s.wait("EXIT=0")

	var types []string
	for _, ev := range journalLines(t, rb) {
		if ev["step"] == "marker" {
			types = append(types, ev["type"].(string))
		}
	}
	got := strings.Join(types, " ")
	for _, want := range []string{"step.started", "step.finished", "step.undo_started", "step.undone"} {
		if !strings.Contains(got, want) {
			t.Errorf("journal of marker lacks %s: %s", want, got)
		}
	}
}
