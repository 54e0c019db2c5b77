package runbook_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/runbook"
)

func load(t *testing.T, phases string) *runbook.Runbook {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rb.yaml")
	src := "name: engine test\nhosts:\n  source: {address: local}\nphases:\n" + phases
	os.WriteFile(path, []byte(src), 0o600)
	rb, err := runbook.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// Undo runs from the journal record, newest first, and a cancelled action
// ends as interrupted with its checkpoint kept for undo.
func TestEngineUndoOrderAndCancel(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	rb := load(t, `  - name: p
    steps:
      - {id: one, shell: source, run: "echo one >> `+log+`", undo: "echo undo-one >> `+log+`"}
      - {id: two, shell: source, run: "echo two >> `+log+`", undo: "echo undo-two >> `+log+`"}
      - {id: slow, shell: source, run: "sleep 30"}
`)
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"one", "two"} {
		if err := e.Run(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	sub := e.Subscribe(64, false)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, "slow", nil) }()
	for ev := range sub.C {
		if ev.Type == runbook.EvStarted && ev.Step == "slow" {
			break
		}
	}
	e.Cancel("slow")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("cancelled run returned %v", err)
	}
	if s := e.State("slow"); s.Status != runbook.StatusInterrupted {
		t.Fatalf("slow = %s", s.Status)
	}
	if got := strings.Join(e.Undoable(), ","); got != "slow,two,one" {
		t.Fatalf("undoable = %s", got)
	}
	// The runbook changes after the run: undo still uses the journaled command.
	rb.Step("one").Impl = &actions.Shell{Host: "source", Command: "true", UndoCmd: "echo WRONG >> " + log}
	for _, id := range []string{"two", "one"} {
		if err := e.Undo(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(log)
	if string(b) != "one\ntwo\nundo-two\nundo-one\n" {
		t.Fatalf("log = %q", b)
	}
	if err := e.Undo(ctx, "one"); err == nil {
		t.Fatal("second undo of the same step succeeded")
	}
	e.Close()
}

func TestEngineRedactsSecrets(t *testing.T) {
	rb := load(t, "  - name: p\n    steps:\n      - {id: leak, shell: source, run: 'echo the password is hunter2hunter2'}\n")
	sec := secret.NewSet()
	sec.Add("hunter2hunter2")
	e, err := runbook.Open(rb, runbook.Options{Secrets: sec})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background(), "leak", nil); err != nil {
		t.Fatal(err)
	}
	e.Close()
	b, _ := os.ReadFile(runbook.JournalPath(rb.Path))
	if bytes.Contains(b, []byte("hunter2hunter2")) || !bytes.Contains(b, []byte("the password is [REDACTED]")) {
		t.Fatalf("journal not redacted:\n%s", b)
	}
}
