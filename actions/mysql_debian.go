package actions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.fix_debian_sys_maint",
		Doc:  "give the target's Debian maintenance account the password from its /etc/mysql/debian.cnf and all privileges, in the syntax the target accepts",
		New: func(n ast.Node) (any, error) {
			a := &MySQLFixDebianSysMaint{Target: "target"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Path != "" && !strings.HasPrefix(a.Path, "/") {
				return nil, steps.BadParam("path", "must be an absolute path on the target host")
			}
			return a, nil
		},
	})
}

// MySQLFixDebianSysMaint repairs the account debian.cnf logs in with
// (classically debian-sys-maint@localhost after an --all-databases import):
// CREATE USER or ALTER USER ... IDENTIFIED BY, then GRANT ALL, or GRANT ...
// IDENTIFIED BY on servers without ALTER USER.
type MySQLFixDebianSysMaint struct {
	Target string `yaml:"target"`
	// Path overrides mysql.<target>.debian_cnf and /etc/mysql/debian.cnf.
	Path string `yaml:"path"`
}

// MySQLDebianReceipt is what the fix journals. The password is never in
// it; the account's previous definition (with its password hash) is in
// the 0600 Backup file under the runbook's state directory.
type MySQLDebianReceipt struct {
	Target  string `json:"target"`
	User    string `json:"user"`
	Host    string `json:"host"`
	Existed bool   `json:"existed"`
	Backup  string `json:"backup,omitempty"`
	// Statements are what ran, with the password replaced by a placeholder.
	Statements []string `json:"statements"`
}

// mysqlDebianBackup is the 0600 backup of the account before the fix.
type mysqlDebianBackup struct {
	Create string   `json:"create,omitempty"` // SHOW CREATE USER (empty on old servers)
	Grants []string `json:"grants"`
}

type mysqlDebianState struct {
	login   *mysqlcompat.DebianLogin
	version mysqlcompat.Version
	exists  bool
	db      *sql.DB
}

func (a *MySQLFixDebianSysMaint) inspect(ctx context.Context, env *steps.Env) (*mysqlDebianState, error) {
	ep, ok := env.Conn.MySQLEndpoint(a.Target)
	if !ok {
		return nil, fmt.Errorf("no mysql endpoint %q in the runbook", a.Target)
	}
	if a.Path != "" {
		ep.DebianCnf = a.Path
	}
	h, err := env.Host(ctx, ep.Host)
	if err != nil {
		return nil, err
	}
	l, err := mysqlcompat.ReadDebianLogin(ctx, h, ep, env.Secrets)
	if err != nil {
		return nil, err
	}
	if !l.Exists {
		return nil, fmt.Errorf("%s does not exist on %s: there is no maintenance login to repair", l.Path, ep.Host)
	}
	st := &mysqlDebianState{login: l}
	if l.OK && l.HasAllPrivileges() {
		return st, nil
	}
	if l.User == "root" {
		return nil, fmt.Errorf("%s logs in as root (%v): decant does not change root's authentication; fix it by hand", l.Path, l.Err)
	}
	if l.Password == "" {
		return nil, fmt.Errorf("%s has no password for %s: decant cannot set one from it", l.Path, l.User)
	}
	if st.db, err = env.MySQL(ctx, a.Target); err != nil {
		return nil, fmt.Errorf("the fix needs an administrator login to the target (mysql.%s.options, e.g. root's ~/.my.cnf): %w", a.Target, err)
	}
	if st.version, err = mysqlcompat.ReadVersion(ctx, st.db); err != nil {
		return nil, err
	}
	var n int
	if err := st.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = 'localhost'", l.User).Scan(&n); err != nil {
		return nil, fmt.Errorf("look up %s on the target: %w", l.User, err)
	}
	st.exists = n > 0
	return st, nil
}

func (a *MySQLFixDebianSysMaint) placeholder(l *mysqlcompat.DebianLogin) string {
	return "<password from " + l.Path + ">"
}

// Plan reads debian.cnf, tries it, and shows the statements for the
// target's version; a login that already works with all privileges is a no-op.
func (a *MySQLFixDebianSysMaint) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	st, err := a.inspect(ctx, env)
	if err != nil {
		return nil, err
	}
	l := st.login
	acct := mysqlcompat.AccountName(l.User, "localhost")
	if st.db == nil {
		return &steps.Plan{Noop: true, Summary: fmt.Sprintf("%s already logs in with %s and has all privileges", acct, l.Path)}, nil
	}
	before := "missing"
	if st.exists {
		before = "exists, but " + l.Path + " cannot log in with it"
		if l.OK {
			before = "logs in, but lacks ALL PRIVILEGES ON *.* WITH GRANT OPTION"
		}
	}
	return &steps.Plan{
		Summary:  fmt.Sprintf("give %s on the target the password from %s and all privileges (%s syntax)", acct, l.Path, st.version),
		Changes:  []steps.Change{{What: "account " + acct, Before: before, After: "password from " + l.Path + ", ALL PRIVILEGES ON *.* WITH GRANT OPTION"}},
		Commands: mysqlcompat.DebianFixSQL(st.version, mysqlcompat.Quoter{}, l.User, st.exists, a.placeholder(l)),
	}, nil
}

// Do backs the account up (when it exists), checkpoints, runs the
// statements, and logs in with debian.cnf again to prove the fix.
func (a *MySQLFixDebianSysMaint) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	st, err := a.inspect(ctx, env)
	if err != nil {
		return nil, err
	}
	l := st.login
	if st.db == nil {
		r.Logf("%s already logs in with %s: nothing to do", mysqlcompat.AccountName(l.User, "localhost"), l.Path)
		return nil, nil
	}
	rc := MySQLDebianReceipt{Target: a.Target, User: l.User, Host: "localhost", Existed: st.exists}
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	acct := mysqlcompat.Account{User: l.User, Host: "localhost"}
	if st.exists {
		var b mysqlDebianBackup
		if st.version.HasShowCreateUser() {
			if b.Create, err = mysqlcompat.ShowCreateUser(ctx, conn, acct); err != nil {
				return nil, err
			}
		}
		if b.Grants, err = mysqlcompat.ShowGrants(ctx, conn, acct); err != nil {
			return nil, err
		}
		if rc.Backup, err = mysqlDebianWriteState(env, "debian-sys-maint", b); err != nil {
			return nil, err
		}
		r.Logf("saved the previous definition of %s to %s (0600)", acct.Name(), rc.Backup)
	}
	q, err := mysqlcompat.SessionQuoter(ctx, conn)
	if err != nil {
		return nil, err
	}
	stmts := mysqlcompat.DebianFixSQL(st.version, q, l.User, st.exists, l.Password)
	rc.Statements = mysqlcompat.DebianFixSQL(st.version, mysqlcompat.Quoter{}, l.User, st.exists, a.placeholder(l))
	if err := r.Checkpoint(rc); err != nil {
		return nil, err
	}
	for i, s := range stmts {
		r.Logf("%s", rc.Statements[i])
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return rc, fmt.Errorf("%s: %w", rc.Statements[i], err)
		}
	}
	ep, _ := env.Conn.MySQLEndpoint(a.Target)
	if a.Path != "" {
		ep.DebianCnf = a.Path
	}
	h, err := env.Host(ctx, ep.Host)
	if err != nil {
		return rc, err
	}
	again, err := mysqlcompat.ReadDebianLogin(ctx, h, ep, env.Secrets)
	if err != nil {
		return rc, err
	}
	if !again.OK {
		return rc, fmt.Errorf("after the fix %s still cannot log in: %v", l.Path, again.Err)
	}
	r.Logf("%s now logs in as %s (%s), no restart needed", l.Path, acct.Name(), again.Via)
	return rc, nil
}

// Undo drops the account if the fix created it, else restores its
// previous definition from the backup file.
func (a *MySQLFixDebianSysMaint) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLDebianReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	db, err := env.MySQL(ctx, rc.Target)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	q, err := mysqlcompat.SessionQuoter(ctx, conn)
	if err != nil {
		return err
	}
	acct := mysqlcompat.Account{User: rc.User, Host: rc.Host}
	var b mysqlDebianBackup
	if rc.Existed {
		data, err := os.ReadFile(rc.Backup)
		if err != nil {
			return fmt.Errorf("read the backup of %s: %w", acct.Name(), err)
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return fmt.Errorf("read the backup of %s: %w", acct.Name(), err)
		}
		if b.Create == "" && len(b.Grants) == 0 {
			return errors.New("the backup of " + acct.Name() + " is empty")
		}
	}
	drop := "DROP USER IF EXISTS " + acct.SQL(q)
	r.Logf("%s", drop)
	if _, err := conn.ExecContext(ctx, drop); err != nil {
		return fmt.Errorf("%s: %w", drop, err)
	}
	if !rc.Existed {
		return nil
	}
	stmts := b.Grants
	if b.Create != "" {
		stmts = []string{b.Create}
		for _, g := range b.Grants {
			stmts = append(stmts, mysqlcompat.StripIdentified(g))
		}
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("restore %s: %w", acct.Name(), err)
		}
	}
	r.Logf("restored the previous definition of %s from %s", acct.Name(), rc.Backup)
	return nil
}

// mysqlDebianWriteState writes v as JSON to a new 0600 file under the
// runbook's state directory and returns its path.
func mysqlDebianWriteState(env *steps.Env, name string, v any) (string, error) {
	dir := env.StateDir
	if dir == "" {
		return "", errors.New("no state directory to keep the backup in")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, "mysql-"+name+"-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return filepath.Abs(f.Name())
}
