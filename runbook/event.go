package runbook

import (
	"encoding/json"
	"time"

	"github.com/decant-sh/decant/internal/steps"
)

// EventType names what happened.
type EventType string

// The event stream. Lifecycle events are never dropped by subscribers; log
// and progress events may be merged or dropped for display (the journal
// keeps them all).
const (
	EvRunStarted   EventType = "run.started"
	EvRunEnded     EventType = "run.ended"
	EvPlanned      EventType = "step.planned"
	EvStarted      EventType = "step.started"
	EvLog          EventType = "step.log"
	EvProgress     EventType = "step.progress"
	EvCheckpoint   EventType = "step.checkpoint"
	EvFinished     EventType = "step.finished"
	EvFailed       EventType = "step.failed"
	EvCancelled    EventType = "step.cancelled"
	EvInterrupted  EventType = "step.interrupted"
	EvUndoStarted  EventType = "step.undo_started"
	EvUndone       EventType = "step.undone"
	EvUndoFailed   EventType = "step.undo_failed"
	EvSkipped      EventType = "step.skipped"
	EvMarkedDone   EventType = "step.marked_done"
	EvCheckResult  EventType = "check.result"
	EvWaived       EventType = "check.waived"
	EvNote         EventType = "note"
	EvConfirmation EventType = "step.confirmed"
)

// Event is one record of the run. It is journaled as one JSON line.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Type     EventType       `json:"type"`
	Session  string          `json:"session,omitempty"`
	Step     string          `json:"step,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Message  string          `json:"msg,omitempty"`
	Status   steps.Status    `json:"status,omitempty"`
	Findings []steps.Finding `json:"findings,omitempty"`
	Plan     *steps.Plan     `json:"plan,omitempty"`
	Receipt  json.RawMessage `json:"receipt,omitempty"`
	Done     int64           `json:"done,omitempty"`
	Total    int64           `json:"total,omitempty"`
	Unit     string          `json:"unit,omitempty"`
	Attempt  int             `json:"attempt,omitempty"`
	// Who and where, on run.started.
	User    string `json:"user,omitempty"`
	Host    string `json:"host,omitempty"`
	Version string `json:"version,omitempty"`
	// Dropped counts log lines a lossy subscriber did not see before this one.
	Dropped int `json:"-"`
}

// Lifecycle reports whether the event changes a step's state (and so must
// reach every subscriber and be fsynced).
func (e Event) Lifecycle() bool {
	switch e.Type {
	case EvLog, EvProgress:
		return false
	}
	return true
}
