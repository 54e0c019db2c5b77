package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

// Shell is a runbook `shell` step: a command on a named host with an
// optional undo command. The receipt carries the undo command so undo runs
// what was planned when the step ran, even if the runbook changed since.
type Shell struct {
	Host    string
	Command string
	UndoCmd string
}

// ShellReceipt is what a shell step journals.
type ShellReceipt struct {
	Host    string `json:"host"`
	Command string `json:"run"`
	Undo    string `json:"undo,omitempty"`
}

// Plan shows the command; a shell step is never a no-op.
func (s *Shell) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	p := &steps.Plan{
		Summary:  fmt.Sprintf("run on %s: %s", s.Host, s.Command),
		Commands: []string{s.Command},
	}
	if s.UndoCmd != "" {
		p.Changes = []steps.Change{{What: "undo runs on " + s.Host, After: s.UndoCmd}}
	} else {
		p.Changes = []steps.Change{{What: "no undo command: this step cannot be undone"}}
	}
	return p, nil
}

// Do runs the command, streaming its output as log lines.
func (s *Shell) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	h, err := env.Host(ctx, s.Host)
	if err != nil {
		return nil, err
	}
	rc := ShellReceipt{Host: s.Host, Command: s.Command, Undo: s.UndoCmd}
	if err := r.Checkpoint(rc); err != nil {
		return nil, err
	}
	if err := runLogged(ctx, h, s.Command, r); err != nil {
		return rc, err
	}
	return rc, nil
}

// Undo runs the journaled undo command.
func (s *Shell) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc ShellReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read shell receipt: %w", err)
	}
	if rc.Undo == "" {
		return errors.New("this shell step has no undo: command; revert it by hand")
	}
	h, err := env.Host(ctx, rc.Host)
	if err != nil {
		return err
	}
	return runLogged(ctx, h, rc.Undo, r)
}

// runLogged runs cmd on h with stdout and stderr as log lines.
func runLogged(ctx context.Context, h hosts.Host, cmd string, r steps.Reporter) error {
	out := steps.NewLineWriter(r, "")
	errw := steps.NewLineWriter(r, "stderr: ")
	err := h.Run(ctx, cmd, nil, out, errw)
	out.Flush()
	errw.Flush()
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name(), err)
	}
	return nil
}
