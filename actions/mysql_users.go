package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.copy_users",
		Doc:  "re-create the source's non-system accounts on the target with their password hash, plugin and grants, in the target's syntax",
		New: func(n ast.Node) (any, error) {
			a := &MySQLUsers{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			return a, nil
		},
	})
}

// MySQLUsers copies accounts: read with SHOW CREATE USER / SHOW GRANTS
// (mysql.user on servers without SHOW CREATE USER), created on the target
// with CREATE USER/ROLE and GRANT, which take effect at once. System
// accounts are left alone unless named; accounts already on the target are
// left alone; accounts that cannot carry over are reported.
type MySQLUsers struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Accounts, when set, are the only accounts copied ("user@host" or
	// "user"); naming a system account copies it.
	Accounts []string `yaml:"accounts"`
	Exclude  []string `yaml:"exclude"`
}

// MySQLUsersCreated names one account or role the action created.
type MySQLUsersCreated struct {
	User string `json:"user"`
	Host string `json:"host,omitempty"`
	Role bool   `json:"role,omitempty"`
}

// MySQLUsersReceipt lists what was created (undo drops exactly these) and
// what was not carried over, with why. No password hash is in it.
type MySQLUsersReceipt struct {
	Target  string              `json:"target"`
	Created []MySQLUsersCreated `json:"created"`
	Skipped []string            `json:"skipped,omitempty"`
}

func (a *MySQLUsers) plan(ctx context.Context, env *steps.Env) (*mysqlcompat.AccountPlan, error) {
	src, err := env.MySQL(ctx, a.Source)
	if err != nil {
		return nil, err
	}
	tgt, err := env.MySQL(ctx, a.Target)
	if err != nil {
		return nil, err
	}
	return mysqlcompat.PlanAccounts(ctx, src, tgt, mysqlcompat.AccountSelection{Accounts: a.Accounts, Exclude: a.Exclude}, env.Secrets)
}

// Plan lists the accounts to create with their statements (password
// hashes are redacted by the engine) and those that cannot carry over.
func (a *MySQLUsers) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	ap, err := a.plan(ctx, env)
	if err != nil {
		return nil, err
	}
	p := &steps.Plan{Unit: "accounts"}
	create, other := 0, 0
	for _, pa := range ap.Accounts {
		c := steps.Change{What: mysqlUsersWhat(pa.Account)}
		switch pa.State {
		case mysqlcompat.AccountCreate:
			create++
			c.Before = "missing"
			c.After = fmt.Sprintf("created (%s, %d grant lines)", pa.Account.Plugin, len(pa.Grants))
			if pa.Account.IsRole {
				c.After = fmt.Sprintf("created (%d grant lines)", len(pa.Grants))
			}
			if len(pa.Dropped) > 0 {
				c.After += "; left out: " + strings.Join(pa.Dropped, "; ")
			}
			if len(pa.Deferred) > 0 {
				c.After += fmt.Sprintf("; %d grants wait for their tables", len(pa.Deferred))
			}
			// Hashes stay out of the plan, whoever displays it.
			for _, s := range pa.Statements {
				p.Commands = append(p.Commands, env.Secrets.Redact(s))
			}
		case mysqlcompat.AccountCannot:
			other++
			c.Before, c.After = "missing", "NOT carried over: "+pa.Reason+" (fix: "+pa.Fix+")"
		case mysqlcompat.AccountDiffers:
			other++
			c.Before, c.After = "exists, different: "+pa.Reason, "left alone"
		default:
			continue
		}
		p.Changes = append(p.Changes, c)
	}
	p.Total = int64(create)
	p.Summary = fmt.Sprintf("create %d accounts on the target (%s)", create, ap.Target)
	if other > 0 {
		p.Summary += fmt.Sprintf("; %d reported, not copied", other)
	}
	if len(ap.System) > 0 {
		p.Changes = append(p.Changes, steps.Change{What: "system accounts", Before: strings.Join(ap.System, ", "), After: "left alone"})
	}
	p.Noop = create == 0
	if p.Noop {
		p.Summary = "no account to create on the target"
		if other > 0 {
			p.Summary += fmt.Sprintf(" (%d reported, not copied)", other)
		}
	}
	return p, nil
}

// Do creates each missing account, journaling it before its CREATE.
func (a *MySQLUsers) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	// An interrupted earlier attempt may have created some accounts, maybe
	// without all their grants: they are ours, so drop and re-create them.
	var prev MySQLUsersReceipt
	if r.Resume(&prev) && len(prev.Created) > 0 {
		r.Logf("an interrupted attempt created %d accounts: dropping them to create them whole", len(prev.Created))
		if err := a.Undo(ctx, env, mysqlUsersJSON(prev), r); err != nil {
			return prev, err
		}
	}
	ap, err := a.plan(ctx, env)
	if err != nil {
		return nil, err
	}
	tgt, err := env.MySQL(ctx, a.Target)
	if err != nil {
		return nil, err
	}
	conn, err := tgt.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rc := MySQLUsersReceipt{Target: a.Target}
	total := 0
	for _, pa := range ap.Accounts {
		if pa.State == mysqlcompat.AccountCreate {
			total++
		}
	}
	done := 0
	for _, pa := range ap.Accounts {
		acct := pa.Account
		switch pa.State {
		case mysqlcompat.AccountCannot:
			msg := fmt.Sprintf("%s NOT carried over: %s; fix: %s", acct.Name(), pa.Reason, pa.Fix)
			rc.Skipped = append(rc.Skipped, msg)
			r.Logf("%s", msg)
			continue
		case mysqlcompat.AccountDiffers:
			msg := fmt.Sprintf("%s left alone: it exists on the target with %s", acct.Name(), pa.Reason)
			rc.Skipped = append(rc.Skipped, msg)
			r.Logf("%s", msg)
			continue
		case mysqlcompat.AccountPresent:
			continue
		}
		if !mysqlUsersHas(rc.Created, acct) {
			rc.Created = append(rc.Created, MySQLUsersCreated{User: acct.User, Host: acct.Host, Role: acct.IsRole})
		}
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		for _, s := range pa.Statements {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return rc, fmt.Errorf("create %s: %s: %w", acct.Name(), env.Secrets.Redact(s), err)
			}
		}
		for _, n := range pa.Notes {
			r.Logf("%s: %s", acct.Name(), n)
		}
		for _, d := range pa.Dropped {
			msg := fmt.Sprintf("%s: left out %s", acct.Name(), d)
			rc.Skipped = append(rc.Skipped, msg)
			r.Logf("%s", msg)
		}
		for _, d := range pa.Deferred {
			msg := fmt.Sprintf("%s: not granted yet: %s", acct.Name(), d)
			rc.Skipped = append(rc.Skipped, msg)
			r.Logf("%s", msg)
		}
		done++
		r.Logf("created %s (%s, %d statements)", mysqlUsersWhat(acct), acct.Plugin, len(pa.Statements))
		r.Progress(int64(done), int64(total), "accounts")
	}
	if len(ap.System) > 0 {
		r.Logf("left alone (system accounts): %s", strings.Join(ap.System, ", "))
	}
	return rc, nil
}

// Undo drops the accounts and roles the action created, newest first.
func (a *MySQLUsers) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLUsersReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	tgt, err := env.MySQL(ctx, rc.Target)
	if err != nil {
		return err
	}
	conn, err := tgt.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	q, err := mysqlcompat.SessionQuoter(ctx, conn)
	if err != nil {
		return err
	}
	for i := len(rc.Created) - 1; i >= 0; i-- {
		c := rc.Created[i]
		acct := mysqlcompat.Account{User: c.User, Host: c.Host, IsRole: c.Role}
		stmt := "DROP USER IF EXISTS " + acct.SQL(q)
		if c.Role {
			stmt = "DROP ROLE IF EXISTS " + acct.SQL(q)
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		r.Logf("%s", stmt)
	}
	return nil
}

func mysqlUsersJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func mysqlUsersWhat(a mysqlcompat.Account) string {
	if a.IsRole {
		return "role " + a.Name()
	}
	return "account " + a.Name()
}

func mysqlUsersHas(list []MySQLUsersCreated, a mysqlcompat.Account) bool {
	for _, c := range list {
		if c.User == a.User && c.Host == a.Host && c.Role == a.IsRole {
			return true
		}
	}
	return false
}
