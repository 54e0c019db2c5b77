package runbook

import (
	"encoding/json"
	"time"

	"github.com/decant-sh/decant/internal/steps"
)

// StepStatus is where a step stands.
type StepStatus string

// Step statuses, as the checklist shows them.
const (
	StatusPending     StepStatus = "pending"
	StatusRunning     StepStatus = "running"
	StatusPassed      StepStatus = "passed" // check passed
	StatusWarned      StepStatus = "warned" // check warned
	StatusFailed      StepStatus = "failed" // check failed or action failed
	StatusDone        StepStatus = "done"   // action done
	StatusSkipped     StepStatus = "skipped"
	StatusUndone      StepStatus = "undone"
	StatusInterrupted StepStatus = "interrupted"
	StatusWaived      StepStatus = "waived" // failed check, waived with a reason
	StatusUndoing     StepStatus = "undoing"
)

// Settled reports whether the step lets the run move past it.
func (s StepStatus) Settled() bool {
	switch s {
	case StatusPassed, StatusWarned, StatusDone, StatusSkipped, StatusWaived:
		return true
	}
	return false
}

// StepState is a step's state rebuilt from the journal.
type StepState struct {
	ID       string
	Kind     string
	Status   StepStatus
	Attempts int
	Started  time.Time
	Ended    time.Time
	Findings []steps.Finding
	Plan     *steps.Plan
	// Receipt is the last checkpoint or the finished receipt: what Undo gets.
	Receipt json.RawMessage
	// Checkpoint is the last checkpoint of the latest attempt (for Resume).
	Checkpoint json.RawMessage
	Error      string
	Reason     string // skip or mark-done reason
	Waiver     string // waiver reason: a failing check no longer blocks
	Done       int64
	Total      int64
	Unit       string
	// FinishedSeq orders finished actions for undo (newest first).
	FinishedSeq int64
}

// Duration is how long the last attempt took (so far, when running).
func (s *StepState) Duration(now time.Time) time.Duration {
	if s.Started.IsZero() {
		return 0
	}
	if s.Ended.IsZero() || s.Ended.Before(s.Started) {
		return now.Sub(s.Started)
	}
	return s.Ended.Sub(s.Started)
}

// apply folds one event into the state of its step.
func (s *StepState) apply(ev Event) {
	switch ev.Type {
	case EvPlanned:
		s.Plan = ev.Plan
	case EvStarted:
		s.Status = StatusRunning
		s.Attempts = ev.Attempt
		s.Started, s.Ended = ev.Time, time.Time{}
		s.Error, s.Done, s.Total = "", 0, 0
	case EvProgress:
		s.Done, s.Total, s.Unit = ev.Done, ev.Total, ev.Unit
	case EvCheckpoint:
		s.Receipt, s.Checkpoint = ev.Receipt, ev.Receipt
	case EvCheckResult:
		s.Findings = ev.Findings
		s.Ended = ev.Time
		switch ev.Status {
		case steps.Fail:
			s.Status = StatusFailed
			if s.Waiver != "" {
				s.Status = StatusWaived
			}
		case steps.Warn:
			s.Status = StatusWarned
		default:
			s.Status = StatusPassed
		}
	case EvFinished:
		s.Status, s.Ended, s.FinishedSeq = StatusDone, ev.Time, ev.Seq
		s.Checkpoint = nil
		if len(ev.Receipt) > 0 {
			s.Receipt = ev.Receipt
		}
	case EvFailed:
		s.Status, s.Ended, s.Error = StatusFailed, ev.Time, ev.Message
		if len(ev.Receipt) > 0 {
			s.Receipt = ev.Receipt
		}
	case EvCancelled, EvInterrupted:
		s.Status, s.Ended, s.Error = StatusInterrupted, ev.Time, ev.Message
	case EvUndoStarted:
		s.Status = StatusUndoing
	case EvUndone:
		s.Status, s.Receipt, s.Checkpoint = StatusUndone, nil, nil
	case EvUndoFailed:
		s.Status, s.Error = StatusFailed, "undo: "+ev.Message
	case EvSkipped:
		s.Status, s.Reason, s.Ended = StatusSkipped, ev.Message, ev.Time
	case EvMarkedDone:
		s.Status, s.Reason, s.Ended, s.FinishedSeq = StatusDone, ev.Message, ev.Time, ev.Seq
	case EvWaived:
		s.Waiver = ev.Message
		if s.Status == StatusFailed || s.Status == StatusPending {
			s.Status = StatusWaived
		}
	}
}

// Replay rebuilds step states from events. Steps the journal left running
// or undoing (the process died) are returned in interrupted.
func Replay(events []Event) (states map[string]*StepState, interrupted []string) {
	states = map[string]*StepState{}
	for _, ev := range events {
		if ev.Step == "" {
			continue
		}
		s := states[ev.Step]
		if s == nil {
			s = &StepState{ID: ev.Step, Kind: ev.Kind, Status: StatusPending}
			states[ev.Step] = s
		}
		if ev.Kind != "" {
			s.Kind = ev.Kind
		}
		s.apply(ev)
	}
	for id, s := range states {
		if s.Status == StatusRunning || s.Status == StatusUndoing {
			interrupted = append(interrupted, id)
		}
	}
	return states, interrupted
}
