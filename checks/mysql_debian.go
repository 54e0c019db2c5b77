package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "mysql.debian_sys_maint",
		Check: true,
		Doc:   "on a Debian-family target, log in with /etc/mysql/debian.cnf as Debian's maintenance scripts do (the 1045 debian-sys-maint error after an import)",
		New: func(n ast.Node) (any, error) {
			c := &MySQLDebianSysMaint{Target: "target"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
				return nil, steps.BadParam("path", "must be an absolute path on the target host")
			}
			return c, nil
		},
	})
}

// MySQLDebianSysMaint logs in with the target's debian.cnf. After an
// --all-databases import the target's mysql.user holds the OLD server's
// debian-sys-maint password (or none), so Debian's init and logrotate
// scripts fail with 1045 Access denied: run it before and after the copy.
type MySQLDebianSysMaint struct {
	Target string `yaml:"target"`
	// Path overrides mysql.<target>.debian_cnf and /etc/mysql/debian.cnf.
	Path string `yaml:"path"`
}

// Run reads debian.cnf over the target's host and tries it.
func (c *MySQLDebianSysMaint) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	ep, ok := env.Conn.MySQLEndpoint(c.Target)
	if !ok {
		return nil, fmt.Errorf("no mysql endpoint %q in the runbook", c.Target)
	}
	if c.Path != "" {
		ep.DebianCnf = c.Path
	}
	h, err := env.Host(ctx, ep.Host)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: ep.Host, Message: fmt.Sprintf("cannot reach %s: %v", ep.Host, err)}}, nil
	}
	l, err := mysqlcompat.ReadDebianLogin(ctx, h, ep, env.Secrets)
	if err != nil {
		return nil, err
	}
	subject := l.Path
	if !l.Exists {
		if !l.Debian {
			return []steps.Finding{{Status: steps.Pass, Subject: subject,
				Message: fmt.Sprintf("%s is not a Debian-family host and has no %s: no maintenance account to check", ep.Host, l.Path)}}, nil
		}
		return []steps.Finding{{Status: steps.Warn, Subject: subject,
			Message: fmt.Sprintf("%s is a Debian-family host but has no %s: the package's maintenance scripts (init, logrotate) cannot log in", ep.Host, l.Path),
			Fix:     "reinstall the server package (dpkg-reconfigure mariadb-server or mysql-server) to recreate it, or set mysql." + c.Target + ".debian_cnf"}}, nil
	}
	account := mysqlcompat.AccountName(l.User, "localhost")
	// The fix depends on the target's version and on whether the account
	// exists, which only an administrator's login can tell.
	fixSQL := func() string {
		tdb, err := env.MySQL(ctx, c.Target)
		if err != nil {
			return ""
		}
		v, err := mysqlcompat.ReadVersion(ctx, tdb)
		if err != nil {
			return ""
		}
		var n int
		_ = tdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = 'localhost'", l.User).Scan(&n)
		exists := n > 0
		return strings.Join(mysqlcompat.DebianFixSQL(v, mysqlcompat.Quoter{}, l.User, exists, "<password from "+l.Path+">"), "; ") + ";"
	}
	switch {
	case l.OK && (l.User != "debian-sys-maint" || l.HasAllPrivileges()):
		return []steps.Finding{{Status: steps.Pass, Subject: subject,
			Message: fmt.Sprintf("logged in as %s with %s (%s): Debian's maintenance scripts will work", account, l.Path, l.Via)}}, nil
	case l.OK:
		return []steps.Finding{{Status: steps.Warn, Subject: subject,
			Message: fmt.Sprintf("logged in as %s with %s, but it lacks ALL PRIVILEGES ON *.* WITH GRANT OPTION: Debian's scripts need to shut down, flush and check tables", account, l.Path),
			Fix:     fixSQL(), FixAction: "mysql.fix_debian_sys_maint"}}, nil
	case l.Denied:
		var my *mysql.MySQLError
		reason := l.Err.Error()
		if errors.As(l.Err, &my) {
			reason = my.Error()
		}
		return []steps.Finding{{Status: steps.Fail, Subject: subject,
			Message: fmt.Sprintf("%s cannot log in with %s (%s): %s. This is the classic failure after an --all-databases import, "+
				"which replaces the target's accounts with the old server's (whose %s password is the old one) or leaves the account out: "+
				"the package's init, logrotate and upgrade scripts then fail with error 1045", account, l.Path, l.Via, reason, l.User),
			Fix: fixSQL() + "  -- the password is the one in " + l.Path + " on the target", FixAction: "mysql.fix_debian_sys_maint"}}, nil
	}
	return []steps.Finding{{Status: steps.Fail, Subject: subject,
		Message: fmt.Sprintf("cannot log in with %s (%s): %v", l.Path, l.Via, l.Err),
		Fix:     "check that the server runs and that the socket in " + l.Path + " is its socket"}}, nil
}
