// Package runbook holds the runbook model (parse, validate, templates), the
// engine that runs its steps and emits events, the journal that makes a run
// resumable, and the transcript built from that journal.
package runbook

import (
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/steps"
)

// Runbook is a parsed, validated runbook file.
type Runbook struct {
	Path     string
	Name     string
	Notes    string
	Hosts    map[string]HostSpec
	MySQL    map[string]steps.MySQLEndpoint
	DNS      steps.DNSConfig
	Settings steps.Settings
	Phases   []*Phase
}

// HostSpec says how to reach one host.
type HostSpec struct {
	Name string `yaml:"-"`
	// Address is "local", "ssh://user@host:port", "user@host", or a Host
	// alias from ~/.ssh/config.
	Address    string `yaml:"address"`
	Key        string `yaml:"key"`         // private key file; default ssh-agent
	KnownHosts string `yaml:"known_hosts"` // default ~/.ssh/known_hosts
	SSHConfig  string `yaml:"ssh_config"`  // default ~/.ssh/config
	// Root prefixes absolute paths the actions touch on this host; labs use
	// it to keep an "old" and a "new" tree on one machine.
	Root string `yaml:"root"`
}

// IsLocal reports whether the host is this machine.
func (h HostSpec) IsLocal() bool { return h.Address == "" || h.Address == "local" }

// Phase is a named, ordered group of steps.
type Phase struct {
	Name  string
	Steps []*Step
}

// StepType says what a step is.
type StepType string

// Step types.
const (
	TypeCheck  StepType = "check"
	TypeAction StepType = "action"
	TypeShell  StepType = "shell"
)

// Step is one line of the checklist.
type Step struct {
	ID    string
	Title string
	Type  StepType
	Kind  string // check or action kind; "shell" for shell steps
	Phase string
	// Shell steps: the host and commands.
	Host string
	Run  string
	Undo string
	// Confirm asks before Do; ConfirmText must be typed when set.
	Confirm     bool
	ConfirmText string
	Timeout     time.Duration
	Line        int
	// Impl is the built check (steps.Check) or action (steps.Action).
	Impl   any
	params ast.Node
}

// Check returns the step's check, or nil.
func (s *Step) Check() steps.Check {
	c, _ := s.Impl.(steps.Check)
	return c
}

// Action returns the step's action, or nil.
func (s *Step) Action() steps.Action {
	a, _ := s.Impl.(steps.Action)
	return a
}

// Label is how renderers name the step: its title or its kind.
func (s *Step) Label() string {
	if s.Title != "" {
		return s.Title
	}
	return s.Kind
}

// Steps returns every step in order.
func (rb *Runbook) Steps() []*Step {
	var out []*Step
	for _, p := range rb.Phases {
		out = append(out, p.Steps...)
	}
	return out
}

// Step finds a step by ID.
func (rb *Runbook) Step(id string) *Step {
	for _, s := range rb.Steps() {
		if s.ID == id {
			return s
		}
	}
	return nil
}
