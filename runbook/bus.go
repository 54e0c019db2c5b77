package runbook

import (
	"sync"
)

// Subscription receives the engine's events. A lossy subscription may drop
// log and progress events when its buffer is full (Event.Dropped on the next
// delivered event says how many); lifecycle events always arrive.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	lossy   bool
	dropped int
	closed  bool
}

type bus struct {
	mu   sync.Mutex
	subs []*Subscription
}

// subscribe adds a subscriber with a buffer of n events.
func (b *bus) subscribe(n int, lossy bool) *Subscription {
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, lossy: lossy}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// publish delivers ev to every subscriber. It holds the lock while a
// lossless send blocks, which keeps every subscriber's order equal to the
// journal's order.
func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if s.closed {
			continue
		}
		if s.lossy && !ev.Lifecycle() {
			e := ev
			e.Dropped = s.dropped
			select {
			case s.c <- e:
				s.dropped = 0
			default:
				s.dropped++
			}
			continue
		}
		e := ev
		e.Dropped = s.dropped
		s.dropped = 0
		s.c <- e
	}
}

func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		if !s.closed {
			s.closed = true
			close(s.c)
		}
	}
}
