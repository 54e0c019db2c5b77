package checks

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "mysql.users",
		Check: true,
		Doc:   "every non-system account of the source with its grants: present on the target, to be created, or unable to carry over",
		New: func(n ast.Node) (any, error) {
			c := &MySQLUsers{Source: "source", Target: "target", Expect: "carry"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.Expect != "carry" && c.Expect != "present" {
				return nil, steps.BadParam("expect", "want carry (before mysql.copy_users runs) or present (after), got %q", c.Expect)
			}
			return c, nil
		},
	})
}

// MySQLUsers lists the source's accounts and what becomes of them on the
// target. Before the mysql.copy_users action a missing account is expected;
// after it (expect: present) it is a failure.
type MySQLUsers struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Accounts limits the check to these ("user@host" or "user"); naming
	// a system account (root@%) includes it.
	Accounts []string `yaml:"accounts"`
	Exclude  []string `yaml:"exclude"`
	// Expect is "carry" (default: missing accounts will be created) or
	// "present" (they must exist on the target by now).
	Expect string `yaml:"expect"`
}

// Run plans the accounts and reports each.
func (c *MySQLUsers) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	src, err := env.MySQL(ctx, c.Source)
	if err != nil {
		return []steps.Finding{mysqlPreConnFail(c.Source, err)}, nil
	}
	tgt, err := env.MySQL(ctx, c.Target)
	if err != nil {
		return []steps.Finding{mysqlPreConnFail(c.Target, err)}, nil
	}
	plan, err := mysqlcompat.PlanAccounts(ctx, src, tgt, mysqlcompat.AccountSelection{Accounts: c.Accounts, Exclude: c.Exclude}, env.Secrets)
	if err != nil {
		return nil, err
	}
	own := c.sourceAddresses(ctx, env)
	var out []steps.Finding
	for _, pa := range plan.Accounts {
		a := pa.Account
		f := steps.Finding{Subject: a.Name()}
		what := "account"
		if a.IsRole {
			what = "role"
		}
		grants := fmt.Sprintf("%d grant lines", len(pa.Grants))
		if len(pa.Grants) == 1 {
			grants = "1 grant line"
		}
		switch pa.State {
		case mysqlcompat.AccountPresent:
			f.Status, f.Message = steps.Pass, fmt.Sprintf("%s present on the target with the same authentication (%s) and grants (%s)", what, a.Plugin, grants)
		case mysqlcompat.AccountDiffers:
			f.Status, f.Fix = steps.Warn, pa.Fix
			f.Message = fmt.Sprintf("%s present on the target but different: %s", what, pa.Reason)
		case mysqlcompat.AccountCannot:
			f.Status, f.Fix = steps.Fail, pa.Fix
			f.Message = fmt.Sprintf("%s cannot carry over: %s", what, pa.Reason)
		case mysqlcompat.AccountCreate:
			if c.Expect == "present" {
				f.Status, f.FixAction = steps.Fail, "mysql.copy_users"
				f.Message = fmt.Sprintf("%s missing on the target (%s, %s)", what, a.Plugin, grants)
				f.Fix = "run the mysql.copy_users action (it creates the missing accounts with their password and grants)"
			} else {
				f.Status = steps.Pass
				f.Message = fmt.Sprintf("%s missing on the target: mysql.copy_users will create it with its password (%s) and %s", what, a.Plugin, grants)
			}
			var extra []string
			if len(pa.Notes) > 0 {
				extra = append(extra, strings.Join(pa.Notes, "; "))
			}
			if len(pa.Dropped) > 0 {
				f.Status = mysqlPreWorse(f.Status, steps.Warn)
				extra = append(extra, "left out, unknown on the target: "+strings.Join(pa.Dropped, "; "))
			}
			if len(pa.Deferred) > 0 {
				extra = append(extra, fmt.Sprintf("%d grants wait for their tables (run mysql.copy_users after the copy)", len(pa.Deferred)))
			}
			if len(extra) > 0 {
				f.Message += " (" + strings.Join(extra, "; ") + ")"
			}
		}
		out = append(out, f)
		if a.IsRole {
			continue
		}
		switch mysqlcompat.HostKind(a.Host) {
		case "name":
			if !plan.TargetNameResolve {
				out = append(out, steps.Finding{Status: steps.Warn, Subject: a.Name(),
					Message: fmt.Sprintf("host pattern %q is a host name, but the target runs with skip_name_resolve: it will never match a client there", a.Host),
					Fix:     fmt.Sprintf("RENAME USER %s TO '%s'@'<client IP address>';  -- on the target, after mysql.copy_users", a.Name(), a.User)})
			}
		case "ip":
			if addr := mysqlPreHostMatch(a.Host, own); addr != "" {
				out = append(out, steps.Finding{Status: steps.Warn, Subject: a.Name(),
					Message: fmt.Sprintf("host pattern %q matches the old server's own address %s: an application on the new server connects from the new address and is refused", a.Host, addr),
					Fix:     fmt.Sprintf("RENAME USER %s TO '%s'@'<new server address>';  -- on the target, after mysql.copy_users", a.Name(), a.User)})
			}
		}
	}
	if len(plan.Accounts) == 0 {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: "accounts", Message: "no application accounts on the source (only system accounts)"})
	}
	if len(plan.System) > 0 {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: "system accounts",
			Message: "left alone (the target has its own; name one under accounts: to copy it): " + mysqlPreList(plan.System)})
	}
	return out, nil
}

// sourceAddresses lists the source host's own non-loopback addresses.
func (c *MySQLUsers) sourceAddresses(ctx context.Context, env *steps.Env) []net.IP {
	ep, ok := env.Conn.MySQLEndpoint(c.Source)
	if !ok {
		return nil
	}
	h, err := env.Host(ctx, ep.Host)
	if err != nil {
		return nil
	}
	out, err := h.Output(ctx, "hostname -I 2>/dev/null || true")
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, f := range strings.Fields(string(out)) {
		if ip := net.ParseIP(f); ip != nil && !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	}
	return ips
}

// mysqlPreHostMatch returns the first address that the account host
// pattern (a.b.c.%, a.b.c.d, a.b.c.d/mask) matches.
func mysqlPreHostMatch(pattern string, ips []net.IP) string {
	for _, ip := range ips {
		s := ip.String()
		if ip4 := ip.To4(); ip4 != nil {
			s = ip4.String()
		}
		if ipnet, mask, ok := strings.Cut(pattern, "/"); ok {
			n, m := net.ParseIP(ipnet), net.ParseIP(mask)
			if n != nil && m != nil && n.To4() != nil && m.To4() != nil && ip.To4() != nil &&
				ip.To4().Mask(net.IPMask(m.To4())).Equal(n.To4()) {
				return s
			}
			continue
		}
		if mysqlPreLike(pattern, s) {
			return s
		}
	}
	return ""
}

// mysqlPreLike matches a LIKE pattern (% and _) against s.
func mysqlPreLike(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if mysqlPreLike(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && mysqlPreLike(p[1:], s[1:])
	}
	return s != "" && p[0] == s[0] && mysqlPreLike(p[1:], s[1:])
}

func mysqlPreWorse(a, b steps.Status) steps.Status {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
