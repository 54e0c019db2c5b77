package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/internal/svcctl"
)

func init() {
	steps.Register(steps.Kind{
		Name: "service.ctl",
		Doc:  "stop, start, restart, reload, enable or disable a service (systemd, init script or supervisor, found by probing); undo restores the previous state",
		New: func(n ast.Node) (any, error) {
			a := &ServiceCtl{Host: "target"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Service == "" {
				return nil, steps.BadParam("service", "name the service (nginx, php8.2-fpm, shop-queue)")
			}
			ok := false
			for _, v := range svcctl.Verbs {
				ok = ok || v == a.Verb
			}
			if !ok {
				return nil, steps.BadParam("do", "%q: use one of %s", a.Verb, strings.Join(svcctl.Verbs, ", "))
			}
			switch svcctl.Manager(a.Manager) {
			case "", svcctl.Systemd, svcctl.Init, svcctl.Supervisor:
			default:
				return nil, steps.BadParam("manager", "%q: use systemd, init or supervisor (or leave it out to probe)", a.Manager)
			}
			return a, nil
		},
	})
}

// ServiceCtl changes one service's state on one host.
type ServiceCtl struct {
	Host    string `yaml:"host"`
	Service string `yaml:"service"`
	// Do is start, stop, restart, reload, enable or disable.
	Verb string `yaml:"do"`
	// Manager forces systemd, init or supervisor; default: probe.
	Manager string `yaml:"manager"`
	// InitDir holds init scripts (mapped through the host's root, so a lab
	// tree can carry its own); default /etc/init.d.
	InitDir string `yaml:"init_dir"`
	// RCDir holds rc2.d-rc5.d for enable/disable of init scripts; default /etc.
	RCDir string `yaml:"rc_dir"`
	// Supervisorctl is the command (e.g. "supervisorctl -c /etc/supervisor/x.conf").
	Supervisorctl string `yaml:"supervisorctl"`
}

// ServiceCtlReceipt records the service and its state before the change.
type ServiceCtlReceipt struct {
	Host          string       `json:"host"`
	Service       string       `json:"service"`
	Manager       string       `json:"manager"`
	InitDir       string       `json:"init_dir,omitempty"`
	RCDir         string       `json:"rc_dir,omitempty"`
	Supervisorctl string       `json:"supervisorctl,omitempty"`
	Did           string       `json:"did"`
	Before        svcctl.State `json:"before"`
	// RCTimes are the runlevel directories' times, put back when undo
	// renames an init script's links again.
	RCTimes map[string]string `json:"rc_times,omitempty"`
}

func (a *ServiceCtl) service(ctx context.Context, env *steps.Env) (*svcctl.Service, string, error) {
	h, err := env.Host(ctx, a.Host)
	if err != nil {
		return nil, "", err
	}
	s := &svcctl.Service{Host: h, Name: a.Service, Manager: svcctl.Manager(a.Manager), Supervisorctl: a.Supervisorctl,
		InitDir: env.Path(a.Host, orDefault(a.InitDir, "/etc/init.d")), RCDir: env.Path(a.Host, orDefault(a.RCDir, "/etc"))}
	why := "manager " + a.Manager + " (from the runbook)"
	if s.Manager == "" {
		if why, err = s.Detect(ctx); err != nil {
			return nil, "", err
		}
	}
	return s, why, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Plan probes the manager and the current state.
func (a *ServiceCtl) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	s, why, err := a.service(ctx, env)
	if err != nil {
		return nil, err
	}
	st, err := s.State(ctx)
	if err != nil {
		return nil, err
	}
	cmd, err := s.Command(a.Verb)
	if err != nil {
		return nil, err
	}
	p := &steps.Plan{Commands: []string{cmd + "   # on " + a.Host}}
	if svcctl.Satisfied(a.Verb, st) {
		p.Noop = true
		p.Summary = fmt.Sprintf("%s on %s is already %s", a.Service, a.Host, st)
		return p, nil
	}
	p.Summary = fmt.Sprintf("%s %s on %s (%s)", a.Verb, a.Service, a.Host, why)
	p.Changes = []steps.Change{{What: a.Service + " on " + a.Host, Before: st.String(), After: serviceAfter(a.Verb, st).String()}}
	return p, nil
}

// serviceAfter is the state verb leads to.
func serviceAfter(verb string, st svcctl.State) svcctl.State {
	switch verb {
	case "start", "restart":
		st.Running = true
	case "stop":
		st.Running = false
	case "enable":
		st.Enabled = "enabled"
	case "disable":
		st.Enabled = "disabled"
	}
	return st
}

// Do records the state, runs the verb, and confirms the new state.
func (a *ServiceCtl) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	s, why, err := a.service(ctx, env)
	if err != nil {
		return nil, err
	}
	st, err := s.State(ctx)
	if err != nil {
		return nil, err
	}
	rc := ServiceCtlReceipt{Host: a.Host, Service: a.Service, Manager: string(s.Manager), InitDir: s.InitDir, RCDir: s.RCDir,
		Supervisorctl: a.Supervisorctl, Did: a.Verb, Before: st}
	if s.Manager == svcctl.Init && (a.Verb == "enable" || a.Verb == "disable") {
		var dirs []string
		for _, d := range []string{"rc2.d", "rc3.d", "rc4.d", "rc5.d"} {
			dirs = append(dirs, path.Join(s.RCDir, d))
		}
		if rc.RCTimes, err = hostparity.MTimes(ctx, s.Host, append(dirs, s.RCDir)); err != nil {
			return nil, err
		}
	}
	if err := r.Checkpoint(rc); err != nil {
		return rc, err
	}
	r.Logf("%s: %s; state before: %s", a.Service, why, st)
	if err := serviceRun(ctx, s, a.Verb, r); err != nil {
		return rc, err
	}
	after, err := s.State(ctx)
	if err != nil {
		return rc, err
	}
	r.Logf("%s on %s is now %s", a.Service, a.Host, after)
	if want := serviceAfter(a.Verb, st); (a.Verb == "start" || a.Verb == "restart" || a.Verb == "stop") && after.Running != want.Running {
		return rc, fmt.Errorf("%s %s: the service is %s afterwards", a.Verb, a.Service, after)
	}
	return rc, nil
}

func serviceRun(ctx context.Context, s *svcctl.Service, verb string, r steps.Reporter) error {
	w := steps.NewLineWriter(r, "")
	err := s.Do(ctx, verb, w)
	w.Flush()
	return err
}

// Undo brings the service back to the recorded state: a stopped service
// is started again and vice versa, enablement is put back; a restart or
// reload of a running service has nothing to undo.
func (a *ServiceCtl) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc ServiceCtlReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read service.ctl receipt: %w", err)
	}
	h, err := env.Host(ctx, rc.Host)
	if err != nil {
		return err
	}
	s := &svcctl.Service{Host: h, Name: rc.Service, Manager: svcctl.Manager(rc.Manager), InitDir: rc.InitDir, RCDir: rc.RCDir, Supervisorctl: rc.Supervisorctl}
	now, err := s.State(ctx)
	if err != nil {
		return err
	}
	var verbs []string
	switch rc.Did {
	case "start", "stop", "restart", "reload":
		if now.Running != rc.Before.Running {
			if rc.Before.Running {
				verbs = append(verbs, "start")
			} else {
				verbs = append(verbs, "stop")
			}
		}
	case "enable", "disable":
		if now.Enabled != rc.Before.Enabled {
			if rc.Before.Enabled == "enabled" {
				verbs = append(verbs, "enable")
			} else {
				verbs = append(verbs, "disable")
			}
		}
	}
	if len(verbs) == 0 {
		r.Logf("%s on %s is %s, as before the %s: nothing to undo", rc.Service, rc.Host, now, rc.Did)
		return nil
	}
	for _, v := range verbs {
		r.Logf("%s %s on %s to return to %s", v, rc.Service, rc.Host, rc.Before)
		if err := serviceRun(ctx, s, v, r); err != nil {
			return err
		}
	}
	return hostparity.SetMTimes(ctx, h, rc.RCTimes)
}
