// Package svcctl starts, stops, reloads, enables and disables a named
// service on a host, whichever way the host manages it: systemd units,
// SysV/LSB init scripts (hosts or containers without systemd), or
// supervisor programs. The manager is found by probing the host.
package svcctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/decant-sh/decant/internal/hosts"
)

// Manager is how a host runs a service.
type Manager string

// Managers decant knows.
const (
	Systemd    Manager = "systemd"
	Init       Manager = "init"
	Supervisor Manager = "supervisor"
)

// Verbs a service accepts.
var Verbs = []string{"start", "stop", "restart", "reload", "enable", "disable"}

// Service is one named service on one host.
type Service struct {
	Host    hosts.Host
	Name    string
	Manager Manager
	// InitDir holds init scripts, as a path on Host (mapped through the
	// host's root); default /etc/init.d.
	InitDir string
	// RCDir holds the rc0.d … rc6.d link directories; default /etc.
	RCDir string
	// Supervisorctl is the supervisorctl command; default "supervisorctl".
	Supervisorctl string
}

func (s *Service) initDir() string {
	if s.InitDir == "" {
		return "/etc/init.d"
	}
	return s.InitDir
}

func (s *Service) rcDir() string {
	if s.RCDir == "" {
		return "/etc"
	}
	return s.RCDir
}

func (s *Service) supervisorctl() string {
	if s.Supervisorctl == "" {
		return "supervisorctl"
	}
	return s.Supervisorctl
}

func (s *Service) script() string { return path.Join(s.initDir(), s.Name) }

// Detect finds how the host manages s.Name: systemd when systemd runs and
// knows the unit, else supervisor when it knows the program, else an init
// script in InitDir. It sets s.Manager and explains what it found.
func (s *Service) Detect(ctx context.Context) (string, error) {
	n := hosts.Quote(s.Name)
	script := `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl cat -- ` + n + ` >/dev/null 2>&1; then echo systemd; exit 0; fi
if command -v ` + firstWord(s.supervisorctl()) + ` >/dev/null 2>&1; then
  out=$(` + s.supervisorctl() + ` status ` + n + ` 2>&1)
  case "$out" in *"no such process"*|*"refused"*|*"no such file"*|*"ERROR"*|"") ;; *) echo supervisor; exit 0;; esac
fi
if [ -x ` + hosts.Quote(s.script()) + ` ]; then echo init; exit 0; fi
if [ -d /run/systemd/system ]; then echo none-systemd; else echo none; fi`
	out, err := s.Host.Output(ctx, script)
	if err != nil {
		return "", fmt.Errorf("probe service %s on %s: %w", s.Name, s.Host.Name(), err)
	}
	switch m := strings.TrimSpace(string(out)); m {
	case "systemd":
		s.Manager = Systemd
		return "systemd runs on " + s.Host.Name() + " and knows the unit " + s.Name, nil
	case "supervisor":
		s.Manager = Supervisor
		return "supervisor knows the program " + s.Name, nil
	case "init":
		s.Manager = Init
		return "no systemd unit or supervisor program; init script " + s.script(), nil
	default:
		return "", fmt.Errorf("no service %q on %s: no systemd unit, no supervisor program, no init script %s", s.Name, s.Host.Name(), s.script())
	}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return hosts.Quote(f[0])
	}
	return s
}

// State is a service's state.
type State struct {
	Running bool `json:"running"`
	// Enabled is "enabled", "disabled", or another systemd word ("static",
	// "masked"); "" when the manager has no such notion (supervisor).
	Enabled string `json:"enabled,omitempty"`
	// Detail is the manager's own words, for logs.
	Detail string `json:"detail,omitempty"`
}

// String reads "running, enabled".
func (st State) String() string {
	s := "stopped"
	if st.Running {
		s = "running"
	}
	if st.Enabled != "" {
		s += ", " + st.Enabled
	}
	return s
}

// State reads the service's current state.
func (s *Service) State(ctx context.Context) (State, error) {
	n := hosts.Quote(s.Name)
	var st State
	switch s.Manager {
	case Systemd:
		out, _ := s.Host.Output(ctx, "systemctl is-active -- "+n+"; systemctl is-enabled -- "+n+" 2>/dev/null || true")
		f := strings.Fields(string(out))
		if len(f) == 0 {
			return st, fmt.Errorf("systemctl gave no state for %s", s.Name)
		}
		st.Detail = f[0]
		st.Running = f[0] == "active" || f[0] == "activating" || f[0] == "reloading"
		if len(f) > 1 {
			st.Enabled = f[1]
		}
		return st, nil
	case Init:
		out, err := s.Host.Output(ctx, hosts.Quote(s.script())+" status >/dev/null 2>&1; echo $?")
		if err != nil {
			return st, fmt.Errorf("status of %s: %w", s.Name, err)
		}
		code := strings.TrimSpace(string(out))
		st.Running = code == "0"
		st.Detail = "status exit " + code
		st.Enabled, err = s.rcEnabled(ctx)
		return st, err
	case Supervisor:
		var buf bytes.Buffer
		_ = s.Host.Run(ctx, s.supervisorctl()+" status "+n, nil, &buf, &buf)
		f := strings.Fields(buf.String())
		if len(f) < 2 {
			return st, fmt.Errorf("supervisorctl status %s: %q", s.Name, strings.TrimSpace(buf.String()))
		}
		st.Detail = f[1]
		st.Running = f[1] == "RUNNING" || f[1] == "STARTING"
		return st, nil
	}
	return st, fmt.Errorf("service %s: unknown manager %q", s.Name, s.Manager)
}

// rcEnabled reads the runlevel links: an S link in rc2.d-rc5.d means the
// service starts at boot.
func (s *Service) rcEnabled(ctx context.Context) (string, error) {
	out, err := s.Host.Output(ctx, "cd "+hosts.Quote(s.rcDir())+" 2>/dev/null && ls -1 rc2.d rc3.d rc4.d rc5.d 2>/dev/null; true")
	if err != nil {
		return "", fmt.Errorf("read runlevel links: %w", err)
	}
	state := "disabled"
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) > 3 && l[0] == 'S' && l[3:] == s.Name {
			state = "enabled"
		}
	}
	return state, nil
}

// Command returns the shell command for verb, for plans and for Do.
func (s *Service) Command(verb string) (string, error) {
	n := hosts.Quote(s.Name)
	switch s.Manager {
	case Systemd:
		return "systemctl " + verb + " -- " + n, nil
	case Init:
		switch verb {
		case "enable", "disable":
			return s.rcCommand(verb), nil
		case "reload":
			// LSB scripts answer 3 (unimplemented) when they cannot reload.
			sc := hosts.Quote(s.script())
			return sc + " reload || { rc=$?; [ $rc -eq 3 ] && " + sc + " force-reload; }", nil
		}
		return hosts.Quote(s.script()) + " " + verb, nil
	case Supervisor:
		switch verb {
		case "enable", "disable":
			return "", errors.New("supervisor programs have no enable/disable: set autostart= in the program's config")
		case "reload":
			return s.supervisorctl() + " signal HUP " + n, nil
		}
		return s.supervisorctl() + " " + verb + " " + n, nil
	}
	return "", fmt.Errorf("service %s: unknown manager %q", s.Name, s.Manager)
}

// rcCommand renames S and K links the way `update-rc.d NAME enable|disable`
// does (runlevels 2-5), creating default links when there are none; it
// works the same under a lab root, where update-rc.d cannot reach.
func (s *Service) rcCommand(verb string) string {
	from, to := "K", "S"
	if verb == "disable" {
		from, to = "S", "K"
	}
	n := hosts.Quote(s.Name)
	script := hosts.Quote(s.script())
	return "cd " + hosts.Quote(s.rcDir()) + " && n=" + n + " && " +
		`found=; for d in rc2.d rc3.d rc4.d rc5.d; do for l in "$d"/[SK][0-9][0-9]"$n"; do [ -e "$l" ] || [ -L "$l" ] || continue; found=1; b=${l#"$d"/}; ` +
		`case "$b" in ` + from + `*) mv -f -- "$l" "$d/` + to + `${b#?}";; esac; done; done; ` +
		`if [ -z "$found" ]; then for d in rc2.d rc3.d rc4.d rc5.d; do mkdir -p "$d" && ln -sf ` + script + ` "$d/` + to + `01$n"; done; fi`
}

// Do runs verb, writing the manager's output to out.
func (s *Service) Do(ctx context.Context, verb string, out io.Writer) error {
	cmd, err := s.Command(verb)
	if err != nil {
		return err
	}
	if err := s.Host.Run(ctx, cmd, nil, out, out); err != nil {
		return fmt.Errorf("%s %s on %s: %w", verb, s.Name, s.Host.Name(), err)
	}
	return nil
}

// Satisfied reports whether verb would change nothing given st.
func Satisfied(verb string, st State) bool {
	switch verb {
	case "start":
		return st.Running
	case "stop":
		return !st.Running
	case "enable":
		return st.Enabled == "enabled"
	case "disable":
		return st.Enabled == "disabled" || st.Enabled == "masked"
	}
	return false
}
