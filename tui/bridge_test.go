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

	"github.com/decant-sh/decant/runbook"
)

// A UI slower than the log: the bridge hands over few, bounded batches,
// says how many lines it left out, and never loses a lifecycle event.
func TestBridgeSlowUI(t *testing.T) {
	rbPath := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(rbPath, []byte(testHeader+`  - name: copy
    steps:
      - id: noisy
        shell: source
        run: seq 1 60000
`), 0o600); err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Load(rbPath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 500
	var (
		mu      sync.Mutex
		batches []*eventsMsg
	)
	send := func(m tea.Msg) {
		mu.Lock()
		batches = append(batches, m.(*eventsMsg))
		mu.Unlock()
		time.Sleep(30 * time.Millisecond) // a busy UI
	}
	b := &bridge{e: e, sub: e.Subscribe(64, true), send: send, size: size, every: 20 * time.Millisecond}
	done := make(chan struct{})
	go func() { b.run(); close(done) }()
	if err := e.Run(context.Background(), "noisy", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	<-done

	var types []string
	var last runbook.StepState
	lines, markers := 0, 0
	for _, m := range batches {
		for _, ev := range m.events {
			if ev.Step == "noisy" {
				types = append(types, string(ev.Type))
			}
		}
		if s, ok := m.states["noisy"]; ok {
			last = s
		}
		if n := len(m.lines["noisy"]); n > 2*size {
			t.Errorf("a batch carried %d lines; the bound is %d", n, 2*size)
		}
		for _, l := range m.lines["noisy"] {
			if l.kind == lkDropped {
				markers++
			} else {
				lines++
			}
		}
	}
	if got := strings.Join(types, " "); got != "step.planned step.started step.checkpoint step.finished" {
		t.Errorf("lifecycle events: %s", got)
	}
	if last.Status != runbook.StatusDone {
		t.Errorf("last snapshot: %s", last.Status)
	}
	if markers == 0 || lines >= 60000 {
		t.Errorf("a slow UI got every line (%d lines, %d markers): nothing was merged", lines, markers)
	}
	if !batches[len(batches)-1].closed {
		t.Error("the last batch does not say the stream closed")
	}
	t.Logf("%d batches, %d lines shown, %d 'not shown' markers", len(batches), lines, markers)
}

func TestRing(t *testing.T) {
	r := newRing(3)
	for i := 1; i <= 5; i++ {
		r.push(logEntry{seq: int64(i), text: string(rune('a' + i - 1))})
	}
	if r.first() != 2 || r.total != 5 || r.at(2).text != "c" || r.at(4).text != "e" {
		t.Errorf("ring: first %d total %d", r.first(), r.total)
	}
	var got []string
	for _, e := range r.entries() {
		got = append(got, e.text)
	}
	if strings.Join(got, "") != "cde" {
		t.Errorf("entries %v", got)
	}
}

// History read from the journal and the live stream overlap; merged, each
// line shows once and in order.
func TestMergeHistory(t *testing.T) {
	v := newLogView(10, time.UTC)
	v.appendLines("s", []logEntry{{seq: 4, text: "4"}, {seq: 5, text: "5"}})
	v.mergeHistory("s", []logEntry{{seq: 2, text: "2"}, {seq: 3, text: "3"}, {seq: 4, text: "4"}, {seq: 5, text: "5"}, {seq: 6, text: "6"}})
	var got []string
	for _, e := range v.rings["s"].entries() {
		got = append(got, e.text)
	}
	if strings.Join(got, ",") != "2,3,4,5,6" {
		t.Errorf("merged: %v", got)
	}
}
