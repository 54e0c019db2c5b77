package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "ssh.reachable",
		Check: true,
		Doc:   "the host answers over SSH, its host key matches known_hosts, and the tools the actions need are installed",
		New: func(n ast.Node) (any, error) {
			c := &SSHReachable{Host: "target", Tools: []string{"sh", "rsync", "crontab", "mysql|mariadb"}}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.Host == "" {
				return nil, steps.BadParam("host", "must name a host")
			}
			return c, nil
		},
	})
}

// SSHReachable checks that a host answers, that its key is the known one,
// and that the login user can run the tools the actions need.
type SSHReachable struct {
	Host string `yaml:"host"`
	// Tools are command names; "a|b" accepts either (mysql or mariadb).
	Tools []string `yaml:"tools"`
}

// Run dials the host (host key verified by the connector) and looks for
// each tool with `command -v`.
func (c *SSHReachable) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	h, err := env.Host(ctx, c.Host)
	if err != nil {
		var hk *hosts.HostKeyError
		if errors.As(err, &hk) {
			fix := "ssh-keygen -R '" + hk.Host + "' -f " + hk.KnownHosts + "  # only if the server was reinstalled"
			if hk.Unknown {
				fix = "verify the fingerprint with the provider's console, then accept it when decant asks (or ssh to it once)"
			}
			return []steps.Finding{{Status: steps.Fail, Subject: c.Host, Message: hk.Error(), Fix: fix}}, nil
		}
		return []steps.Finding{{Status: steps.Fail, Subject: c.Host, Message: fmt.Sprintf("cannot reach %s: %v", c.Host, err),
			Fix: "check the address, port, key and that sshd runs on the host"}}, nil
	}
	out := []steps.Finding{{Status: steps.Pass, Subject: c.Host, Message: fmt.Sprintf("reachable as %s; host key verified", h)}}
	var script strings.Builder
	for _, t := range c.Tools {
		for _, alt := range strings.Split(t, "|") {
			fmt.Fprintf(&script, "command -v %s >/dev/null 2>&1 && echo 'ok %s' || echo 'no %s';", hosts.Quote(alt), alt, alt)
		}
	}
	res, err := h.Output(ctx, script.String())
	if err != nil {
		return append(out, steps.Finding{Status: steps.Fail, Subject: c.Host, Message: fmt.Sprintf("cannot run commands: %v", err)}), nil
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(res), "\n") {
		if name, ok := strings.CutPrefix(line, "ok "); ok {
			have[name] = true
		}
	}
	var missing []string
	for _, t := range c.Tools {
		found := false
		for _, alt := range strings.Split(t, "|") {
			found = found || have[alt]
		}
		if !found {
			missing = append(missing, strings.Split(t, "|")[0])
		}
	}
	if len(missing) > 0 {
		out = append(out, steps.Finding{Status: steps.Fail, Subject: c.Host,
			Message: "missing tools: " + strings.Join(missing, ", "),
			Fix:     "apt-get install " + debPackages(missing)})
	} else {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: c.Host, Message: "tools present: " + strings.Join(c.Tools, ", ")})
	}
	return out, nil
}

func debPackages(tools []string) string {
	pkg := map[string]string{"mysql": "mariadb-client", "mariadb": "mariadb-client", "crontab": "cron", "mysqldump": "mariadb-client"}
	var out []string
	for _, t := range tools {
		if p, ok := pkg[t]; ok {
			out = append(out, p)
		} else {
			out = append(out, t)
		}
	}
	return strings.Join(out, " ")
}
