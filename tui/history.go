package tui

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/decant-sh/decant/runbook"
)

// historyMsg carries the log lines of earlier sessions, read from the
// journal, so that a resumed run shows why a step failed last night.
type historyMsg struct {
	lines  map[string][]logEntry
	maxSeq int64
	err    error
}

// loadHistory streams the journal and keeps the last size lines of each
// step. It runs in its own goroutine: a journal of a long flood may be
// gigabytes, and memory stays bounded by the rings.
func loadHistory(path string, size int) historyMsg {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return historyMsg{}
	}
	if err != nil {
		return historyMsg{err: err}
	}
	defer f.Close()
	rings := map[string]*ring{}
	var maxSeq int64
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return historyMsg{err: err}
			}
			break // a torn last line is ignored, as on replay
		}
		var ev runbook.Event
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		maxSeq = max(maxSeq, ev.Seq)
		if ev.Step == "" {
			continue
		}
		es := entriesFor(ev)
		if len(es) == 0 {
			continue
		}
		rg := rings[ev.Step]
		if rg == nil {
			rg = newRing(size)
			rings[ev.Step] = rg
		}
		for _, e := range es {
			rg.push(e)
		}
	}
	out := historyMsg{lines: map[string][]logEntry{}, maxSeq: maxSeq}
	for id, rg := range rings {
		out.lines[id] = rg.entries()
	}
	return out
}
