package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// n passes over a failed check to the action that fixes it; once the fix
// has run, the check runs again by itself and passes.
func TestNextRunsTheFixThenRechecks(t *testing.T) {
	dir := t.TempDir()
	oldRoot, newRoot := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	os.MkdirAll(filepath.Join(oldRoot, "srv/app"), 0o755)
	os.MkdirAll(newRoot, 0o755)
	os.WriteFile(filepath.Join(oldRoot, "srv/app/.env"), []byte("APP_KEY=abcdefgh12345678\n"), 0o600)
	rb := filepath.Join(dir, "rb.yaml")
	os.WriteFile(rb, []byte(fmt.Sprintf(`name: fix flow
hosts:
  source: {address: local, root: %q}
  target: {address: local, root: %q}
phases:
  - name: prepare
    steps:
      - check: env.parity
        with: {files: [/srv/app/.env]}
      - action: env.copy
        with: {files: [/srv/app/.env]}
`, oldRoot, newRoot)), 0o600)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitFor("check failed", func(s string) bool { return hasMark(s, "env.parity", "✗") })
	h.keys("n")
	h.waitFor("fixed and rechecked", func(s string) bool {
		return hasMark(s, "env.copy", "✓") && hasMark(s, "env.parity", "✓")
	})
	if st := h.e.State("prepare/env.parity"); st.Attempts != 2 {
		t.Fatalf("env.parity ran %d times, want 2", st.Attempts)
	}
	b, err := os.ReadFile(filepath.Join(newRoot, "srv/app/.env"))
	if err != nil || !strings.Contains(string(b), "APP_KEY") {
		t.Fatalf("env file not copied: %v", err)
	}
}

// U undoes the whole run, newest first, after one confirmation.
func TestUndoAll(t *testing.T) {
	rb, dir := writeRunbook(t, `  - name: p
    steps:
      - {id: one, shell: source, run: 'echo one >> "$TUITEST/log"', undo: 'echo undo-one >> "$TUITEST/log"'}
      - {id: two, shell: source, run: 'echo two >> "$TUITEST/log"', undo: 'echo undo-two >> "$TUITEST/log"'}
`)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitFor("one", func(s string) bool { return hasMark(s, "one", "✓") })
	h.keys("n")
	h.waitFor("two", func(s string) bool { return hasMark(s, "two", "✓") })
	h.keys("U")
	h.waitText("Undo these 2 steps, newest first")
	h.keys("y")
	h.waitFor("all undone", func(s string) bool {
		return hasMark(s, "one", "↶") && hasMark(s, "two", "↶") && strings.Contains(s, "Undid 2 steps")
	})
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	if string(b) != "one\ntwo\nundo-two\nundo-one\n" {
		t.Fatalf("log = %q", b)
	}
}
