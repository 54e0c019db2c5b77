package tui

import (
	"strconv"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/decant-sh/decant/runbook"
)

// eventsMsg is one batch of engine events, merged by the bridge.
type eventsMsg struct {
	// lines holds each step's new log lines, oldest first; at most the
	// ring size per step (older ones are counted in a "not shown" line).
	lines map[string][]logEntry
	// order lists the steps of lines in first-seen order.
	order []string
	// events are the lifecycle events, in journal order; none is dropped.
	events []runbook.Event
	// states are step snapshots taken after the batch's lifecycle events.
	states map[string]runbook.StepState
	// progress is the newest progress report per step.
	progress map[string]runbook.Event
	// count is how many engine events the batch stands for (for figures).
	count int
	// closed means the engine closed its stream.
	closed bool
}

func newBatch() *eventsMsg {
	return &eventsMsg{lines: map[string][]logEntry{}, states: map[string]runbook.StepState{}, progress: map[string]runbook.Event{}}
}

// bridge turns the engine's event stream into few, merged UI messages.
// Program.Send blocks while Update runs, so the bridge owns the buffering:
// one goroutine reads the subscription without ever waiting on the UI and
// folds events into the pending batch, and a sender goroutine hands whole
// batches to the program, at most one per interval. Under a log flood the
// UI gets ~1/interval messages a second whatever the line rate; log lines
// beyond the ring size are counted, not kept (the journal has them);
// lifecycle events are never dropped.
type bridge struct {
	e     *runbook.Engine
	sub   *runbook.Subscription
	send  func(tea.Msg)
	size  int           // per-step line bound, the log ring size
	every time.Duration // minimum time between two batches
}

func (b *bridge) run() {
	out := make(chan *eventsMsg)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for m := range out {
			b.send(m)
		}
	}()
	var (
		cur    *eventsMsg
		last   time.Time
		ready  = true
		timerC <-chan time.Time
		in     = b.sub.C
	)
	for {
		var outC chan *eventsMsg
		if cur != nil && ready {
			outC = out
		}
		select {
		case ev, ok := <-in:
			if !ok {
				if cur == nil {
					cur = newBatch()
				}
				cur.closed = true
				out <- cur
				close(out)
				<-sent
				return
			}
			if cur == nil {
				cur = newBatch()
			}
			b.add(cur, ev)
			if !ready && timerC == nil {
				timerC = time.After(b.every - time.Since(last))
			}
		case outC <- cur:
			cur, last, ready = nil, time.Now(), false
		case <-timerC:
			ready, timerC = true, nil
		}
	}
}

// add folds one event into the batch.
func (b *bridge) add(m *eventsMsg, ev runbook.Event) {
	m.count++
	if ev.Type == runbook.EvProgress {
		m.progress[ev.Step] = ev
		if ev.Dropped == 0 {
			return
		}
	}
	if ev.Lifecycle() {
		m.events = append(m.events, ev)
		if ev.Step != "" {
			// The snapshot is at least as new as the event: the UI never
			// shows a state older than a line it already printed.
			m.states[ev.Step] = b.e.State(ev.Step)
		}
	}
	es := entriesFor(ev)
	if len(es) == 0 {
		return
	}
	lines, seen := m.lines[ev.Step]
	if !seen {
		m.order = append(m.order, ev.Step)
	}
	lines = append(lines, es...)
	if len(lines) >= 2*b.size {
		// Keep the newest size lines; say how many were cut.
		cut := len(lines) - b.size
		kept := append([]logEntry(nil), lines[cut:]...)
		kept[0] = logEntry{seq: kept[0].seq, at: kept[0].at, kind: lkDropped,
			text: "... " + strconv.Itoa(cut+1) + " lines not shown here (the journal has them)"}
		lines = kept
	}
	m.lines[ev.Step] = lines
}
