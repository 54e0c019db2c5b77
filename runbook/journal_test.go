package runbook

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/steps"
)

func TestJournalTornTailAndLock(t *testing.T) {
	rb := filepath.Join(t.TempDir(), "rb.yaml")
	j, ev, err := OpenJournal(rb)
	if err != nil || len(ev) != 0 {
		t.Fatal(err, ev)
	}
	for i := 0; i < 3; i++ {
		if err := j.Append(&Event{Type: EvNote, Message: "n"}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := OpenJournal(rb); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	j.Close()
	// A crash in the middle of a write leaves a torn last line.
	f, _ := os.OpenFile(JournalPath(rb), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"type":"no`)
	f.Close()
	j, ev, err = OpenJournal(rb)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 3 || ev[2].Seq != 3 {
		t.Fatalf("replayed %d events", len(ev))
	}
	if err := j.Append(&Event{Type: EvNote}, true); err != nil {
		t.Fatal(err)
	}
	j.Close()
	b, _ := os.ReadFile(JournalPath(rb))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], `"seq":4`) {
		t.Fatalf("journal after torn tail:\n%s", b)
	}
	if fi, _ := os.Stat(JournalPath(rb)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// Damage in the middle is not silently skipped.
	os.WriteFile(JournalPath(rb), []byte("{\"seq\":1}\ngarbage\n{\"seq\":3}\n"), 0o600)
	if _, _, err := OpenJournal(rb); err == nil || !strings.Contains(err.Error(), "corrupt line") {
		t.Fatalf("corrupt journal: %v", err)
	}
}

func TestReplayStates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := json.RawMessage(`{"x":1}`)
	evs := []Event{
		{Seq: 1, Type: EvStarted, Step: "a", Attempt: 1, Time: t0},
		{Seq: 2, Type: EvCheckpoint, Step: "a", Receipt: rc},
		{Seq: 3, Type: EvFinished, Step: "a", Time: t0.Add(time.Second)},
		{Seq: 4, Type: EvStarted, Step: "b", Attempt: 1},
		{Seq: 5, Type: EvCheckpoint, Step: "b", Receipt: rc},
		{Seq: 6, Type: EvStarted, Step: "c", Attempt: 1},
		{Seq: 7, Type: EvCheckResult, Step: "c", Status: steps.Fail},
		{Seq: 8, Type: EvWaived, Step: "c", Message: "known"},
		{Seq: 9, Type: EvStarted, Step: "d", Attempt: 1},
		{Seq: 10, Type: EvUndoStarted, Step: "d"},
	}
	st, interrupted := Replay(evs)
	if st["a"].Status != StatusDone || string(st["a"].Receipt) != `{"x":1}` || st["a"].Duration(t0) != time.Second {
		t.Fatalf("a = %+v", st["a"])
	}
	if st["c"].Status != StatusWaived || st["c"].Waiver != "known" {
		t.Fatalf("c = %+v", st["c"])
	}
	if strings.Join(interrupted, ",") != "b,d" && strings.Join(interrupted, ",") != "d,b" {
		t.Fatalf("interrupted = %v", interrupted)
	}
	if string(st["b"].Checkpoint) != `{"x":1}` {
		t.Fatal("interrupted step lost its checkpoint")
	}
}
