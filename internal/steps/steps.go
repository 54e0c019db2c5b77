// Package steps holds the contract between the engine and the things it runs:
// checks (read-only, return findings) and actions (Plan, Do, Undo with a
// receipt). Checks and actions register their kinds here; the runbook parser
// looks kinds up to validate parameters before anything runs.
package steps

import (
	"context"
	"encoding/json"
	"sort"
	"sync"

	"github.com/goccy/go-yaml/ast"
)

// Status is the outcome of a check finding.
type Status string

// Check outcomes, ordered pass < warn < fail.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Rank orders statuses so the worst of several findings can be taken.
func (s Status) Rank() int {
	switch s {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

// Worst returns the most severe status among findings (Pass when none).
func Worst(fs []Finding) Status {
	w := Pass
	for _, f := range fs {
		if f.Status.Rank() > w.Rank() {
			w = f.Status
		}
	}
	return w
}

// Finding is one observation of a check: what was found and how to fix it.
type Finding struct {
	Status  Status `json:"status"`
	Subject string `json:"subject,omitempty"` // what the finding is about, e.g. "shop.orders"
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"` // the exact command or SQL to run
	// FixAction names an action kind that applies the fix with undo.
	FixAction string `json:"fix_action,omitempty"`
}

// Check is a read-only preflight test. Run may be called any number of times.
type Check interface {
	Run(ctx context.Context, env *Env) ([]Finding, error)
}

// Change is one thing an action will change, with its state before and after.
type Change struct {
	What   string `json:"what"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Plan is an action's dry run: what it will do, shown before it does it.
type Plan struct {
	Summary  string   `json:"summary"`
	Changes  []Change `json:"changes,omitempty"`
	Commands []string `json:"commands,omitempty"` // commands or SQL, secrets redacted
	Noop     bool     `json:"noop,omitempty"`     // already satisfied: Do has nothing to do
	// Total is the expected amount of work (bytes or rows) for progress and ETA.
	Total int64  `json:"total,omitempty"`
	Unit  string `json:"unit,omitempty"`
	// Data carries what Plan learned for Do (serialisable, journaled).
	Data json.RawMessage `json:"data,omitempty"`
}

// Reporter is how a running action talks to the engine.
type Reporter interface {
	// Logf records one log line (redacted before it is stored).
	Logf(format string, args ...any)
	// Progress reports done out of total units ("bytes", "rows"); total 0 = unknown.
	Progress(done, total int64, unit string)
	// Checkpoint journals the receipt so far, fsynced, before the action makes
	// the change it describes. It is what Undo gets if the process dies.
	Checkpoint(receipt any) error
	// Resume decodes the last checkpoint of an interrupted earlier attempt of
	// this step into v; it reports false when there is none.
	Resume(v any) bool
}

// Action changes something. Plan is read-only and repeatable; Do returns a
// receipt (what it changed and the values before); Undo works from that
// receipt, not from re-reading the world.
type Action interface {
	Plan(ctx context.Context, env *Env) (*Plan, error)
	Do(ctx context.Context, env *Env, plan *Plan, r Reporter) (receipt any, err error)
	Undo(ctx context.Context, env *Env, receipt json.RawMessage, r Reporter) error
}

// Dangerous is implemented by actions that need an explicit confirmation.
// ConfirmText, when non-empty, must be typed by the operator (the cut-over
// asks for the domain).
type Dangerous interface {
	ConfirmText() string
}

// Kind describes a registered check or action kind.
type Kind struct {
	Name  string // stable ID, e.g. "mysql.version"; what --waive takes
	Check bool   // true for checks, false for actions
	Doc   string // one line for `decant runbook kinds` and the README
	// New builds the step from its `with:` parameters. params may be nil.
	// Use DecodeParams so unknown keys are reported with file:line.
	New func(params ast.Node) (any, error)
	// Dangerous marks actions that ask for confirmation before Do.
	Dangerous bool
}

var (
	mu    sync.RWMutex
	kinds = map[string]Kind{}
)

// Register adds a kind; it panics on a duplicate, which is a programming error.
func Register(k Kind) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("steps: duplicate kind " + k.Name)
	}
	kinds[k.Name] = k
}

// Lookup finds a registered kind.
func Lookup(name string) (Kind, bool) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// Kinds lists registered kinds sorted by name.
func Kinds() []Kind {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
